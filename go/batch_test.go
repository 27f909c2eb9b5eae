package main

import (
	"encoding/binary"
	"maps"
	"strings"
	"testing"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
)

// batchEntry is one message of a batch body, decoded the way the broker
// decodes it (MessageDecoder.decodeMessages of the Java code base).
type batchEntry struct {
	magic, crc, flag int32
	body             string
	props            map[string]string
}

func decodeBatch(t *testing.T, b []byte) []batchEntry {
	t.Helper()
	var out []batchEntry
	for len(b) > 0 {
		size := int(binary.BigEndian.Uint32(b))
		if size > len(b) || size < batchHeaderLen {
			t.Fatalf("entry of %d bytes in %d left", size, len(b))
		}
		e, entry := batchEntry{props: map[string]string{}}, b[:size]
		e.magic = int32(binary.BigEndian.Uint32(entry[4:]))
		e.crc = int32(binary.BigEndian.Uint32(entry[8:]))
		e.flag = int32(binary.BigEndian.Uint32(entry[12:]))
		n := int(binary.BigEndian.Uint32(entry[16:]))
		e.body = string(entry[20 : 20+n])
		rest := entry[20+n:]
		pn := int(binary.BigEndian.Uint16(rest))
		if pn != len(rest)-2 {
			t.Fatalf("properties of %d bytes, entry leaves %d", pn, len(rest)-2)
		}
		for _, pair := range strings.Split(string(rest[2:]), "\x02") {
			if pair == "" {
				continue
			}
			k, v, ok := strings.Cut(pair, "\x01")
			if !ok {
				t.Fatalf("property without a value separator: %q", pair)
			}
			e.props[k] = v
		}
		out = append(out, e)
		b = b[size:]
	}
	return out
}

// TestBatchEncodingMatchesTheSDK encodes messages with the library's batch
// encoder and with the SDK's MarshalMessageBatch (built the way
// buildMessage builds them) and compares what the broker decodes from each.
func TestBatchEncodingMatchesTheSDK(t *testing.T) {
	fields := []checkedMessage{
		{topic: "T", body: []byte("plain")},
		{topic: "T", body: []byte("with texts"), tags: "TagA", keys: "k1 k2", props: []string{"a", "1", "trace", "x-y"}},
		{topic: "T", body: []byte("ünïcode \x00\x01\x02 bytes"), tags: "标签", props: []string{"empty", "", "name", "värde"}},
		{topic: "T", body: []byte(strings.Repeat("z", 70000))},
	}
	ids := make([]string, len(fields))
	msgs := make([]*primitive.Message, len(fields))
	size := 0
	for i, f := range fields {
		ids[i] = newMessageID()
		m := primitive.NewMessage(f.topic, f.body)
		m.WithProperty(primitive.PropertyUniqueClientMessageIdKeyIndex, ids[i])
		m.WithProperty(primitive.PropertyTags, f.tags)
		m.WithProperty(primitive.PropertyKeys, f.keys)
		for j := 0; j < len(f.props); j += 2 {
			m.WithProperty(f.props[j], f.props[j+1])
		}
		msgs[i] = m
		size += batchHeaderLen + len(f.body) + f.batchPropertiesLen(ids[i])
	}
	ours := marshalBatch(make([]byte, 0, size), fields, ids)
	if len(ours) != size || cap(ours) != size {
		t.Fatalf("batch of %d bytes (capacity %d), sized %d", len(ours), cap(ours), size)
	}
	theirs := producer.MarshalMessageBatch(msgs...)
	if len(ours) != len(theirs) {
		t.Fatalf("batch of %d bytes, the SDK's %d", len(ours), len(theirs))
	}
	got, want := decodeBatch(t, ours), decodeBatch(t, theirs)
	if len(got) != len(fields) || len(want) != len(fields) {
		t.Fatalf("%d and %d entries, want %d", len(got), len(want), len(fields))
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.magic != w.magic || g.crc != w.crc || g.flag != w.flag || g.body != w.body || !maps.Equal(g.props, w.props) {
			t.Errorf("message %d: got %+v, the SDK's %+v", i, g, w)
		}
		if g.props[primitive.PropertyUniqueClientMessageIdKeyIndex] != ids[i] {
			t.Errorf("message %d: id %q, want %q", i, g.props[primitive.PropertyUniqueClientMessageIdKeyIndex], ids[i])
		}
		if _, ok := g.props["empty"]; ok {
			t.Errorf("message %d: a property with an empty value was written", i)
		}
	}
	if got[1].props[primitive.PropertyKeys] != "k1 k2" || got[2].props["name"] != "värde" {
		t.Errorf("texts lost: %+v, %+v", got[1].props, got[2].props)
	}
}
