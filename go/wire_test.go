package main

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"flag"
	"maps"
	"os"
	"path/filepath"
	"testing"

	"github.com/apache/rocketmq-client-go/v2/primitive"
)

// The wire fixtures are shared with tests/test_wire.py: this test encodes
// known values and compares the bytes with the file; the Python test
// decodes the same bytes and compares them with the same values, so the two
// sides cannot drift. After a deliberate layout change (and the header's
// text), rewrite the file with: go test -run TestWire -update
var updateFixtures = flag.Bool("update", false, "rewrite tests/wire_fixtures.json")

const fixturePath = "../tests/wire_fixtures.json"

// wireMessage is a decoded record of the rmq_consumer_poll layout, as
// the Python side's Message sees it (user properties only).
type wireMessage struct {
	ID             uint64            `json:"id"`
	QueueID        int32             `json:"queue_id"`
	ReconsumeTimes int32             `json:"reconsume_times"`
	QueueOffset    int64             `json:"queue_offset"`
	BornTimestamp  int64             `json:"born_timestamp"`
	StoreTimestamp int64             `json:"store_timestamp"`
	Topic          string            `json:"topic"`
	Tags           string            `json:"tags"`
	Keys           string            `json:"keys"`
	MsgID          string            `json:"msg_id"`
	OffsetMsgID    string            `json:"offset_msg_id"`
	BrokerName     string            `json:"broker_name"`
	Properties     map[string]string `json:"properties"`
	BodyHex        string            `json:"body_hex"`
}

type wireCompletion struct {
	Token         uint64 `json:"token"`
	Status        int32  `json:"status"`
	QueueID       int32  `json:"queue_id"`
	QueueOffset   int64  `json:"queue_offset"`
	SendStatus    int32  `json:"send_status"`
	MsgID         string `json:"msg_id"`
	OffsetMsgID   string `json:"offset_msg_id"`
	BrokerName    string `json:"broker_name"`
	TransactionID string `json:"transaction_id"`
	Error         string `json:"error"`
}

type wireReply struct {
	Token   uint64       `json:"token"`
	Status  int32        `json:"status"`
	Error   string       `json:"error"`
	Message *wireMessage `json:"message"`
}

type wireLog struct {
	Level int32  `json:"level"`
	Text  string `json:"text"`
}

type wireCase struct {
	Name    string      `json:"name"`
	Layout  string      `json:"layout"` // message, completion, reply, log
	Count   int         `json:"count"`
	Hex     string      `json:"hex"`
	Records interface{} `json:"records"`
}

type wireFile struct {
	Comment string     `json:"comment"`
	Cases   []wireCase `json:"cases"`
}

// fullMessage has every field, system properties among the user ones.
func fullMessage() *primitive.MessageExt {
	m := &primitive.MessageExt{
		Message: primitive.Message{Topic: "orders", Body: []byte("hello\x00\xff")},
		MsgId:   "7F000001000000000000000000000001", OffsetMsgId: "7F00000100002A9F0000000000001234",
		ReconsumeTimes: 2, QueueOffset: 12345, BornTimestamp: 1700000000000, StoreTimestamp: 1700000000123,
	}
	m.Queue = &primitive.MessageQueue{Topic: "orders", BrokerName: "broker-a", QueueId: 3}
	m.WithProperties(map[string]string{"color": "blue", "TAGS": "tagA", "KEYS": "k1 k2", "UNIQ_KEY": "X"})
	return m
}

var fullDecoded = wireMessage{
	ID: 7, QueueID: 3, ReconsumeTimes: 2, QueueOffset: 12345, BornTimestamp: 1700000000000,
	StoreTimestamp: 1700000000123, Topic: "orders", Tags: "tagA", Keys: "k1 k2",
	MsgID: "7F000001000000000000000000000001", OffsetMsgID: "7F00000100002A9F0000000000001234",
	BrokerName: "broker-a", Properties: map[string]string{"color": "blue"}, BodyHex: hex.EncodeToString([]byte("hello\x00\xff")),
}

func wireCases() []wireCase {
	var cases []wireCase
	add := func(name, layout string, buf []byte, records interface{}, count int) {
		cases = append(cases, wireCase{name, layout, count, hex.EncodeToString(buf), records})
	}

	// consumed messages: a delivery with everything, then one with nothing
	// (no queue, tags, keys, properties or body; UTF-8 topic and negative offset)
	bare := &primitive.MessageExt{Message: primitive.Message{Topic: "caf\u00e9"}, QueueOffset: -1}
	bareDecoded := wireMessage{ID: 0, QueueOffset: -1, Topic: "caf\u00e9", Properties: map[string]string{}}
	buf := encodeMessageRecord(nil, 7, fullMessage())
	buf = encodeMessageRecord(buf, 0, bare)
	add("messages", "message", buf, []wireMessage{fullDecoded, bareDecoded}, 2)

	// a transaction check: the id is the check id, here the largest uint64
	check := fullDecoded
	check.ID = ^uint64(0)
	check.Tags = "gr\u00fcn"
	msg := fullMessage()
	msg.WithTag("gr\u00fcn")
	add("transaction_check", "message", encodeMessageRecord(nil, ^uint64(0), msg), []wireMessage{check}, 1)

	// send completions: a success, then a failure that carries its msg_id only
	ok := &primitive.SendResult{
		Status: primitive.SendFlushSlaveTimeout, MsgID: "MSG1", OffsetMsgID: "OFF1", TransactionID: "TX1",
		QueueOffset: 99, MessageQueue: &primitive.MessageQueue{Topic: "orders", BrokerName: "broker-b", QueueId: 5},
	}
	buf = encodeCompletion(nil, 1<<63+5, 0, "", ok)
	buf = encodeCompletion(buf, 2, 8, "rmq_native: timeout \u2013 unknown outcome", &primitive.SendResult{MsgID: "MSG2"})
	add("completions", "completion", buf, []wireCompletion{
		{Token: 1<<63 + 5, QueueID: 5, QueueOffset: 99, SendStatus: 2, MsgID: "MSG1", OffsetMsgID: "OFF1",
			BrokerName: "broker-b", TransactionID: "TX1"},
		{Token: 2, Status: 8, MsgID: "MSG2", Error: "rmq_native: timeout \u2013 unknown outcome"},
	}, 2)

	// replies: one answered (the reply in the message layout, id 0), one failed
	reply := fullDecoded
	reply.ID = 0
	buf = encodeReply(nil, 41, 0, "", fullMessage())
	buf = encodeReply(buf, 42, 3, "rmq_native: no reply within 1000 ms", nil)
	add("replies", "reply", buf, []wireReply{
		{Token: 41, Message: &reply},
		{Token: 42, Status: 3, Error: "rmq_native: no reply within 1000 ms"},
	}, 2)

	// log records
	buf = encodeLogRecord(nil, levelInfo, "client started \u2713")
	buf = encodeLogRecord(buf, levelError, "")
	add("log_records", "log", buf, []wireLog{{levelInfo, "client started \u2713"}, {levelError, ""}}, 2)
	return cases
}

func TestWireFixtures(t *testing.T) {
	want, err := json.MarshalIndent(wireFile{
		Comment: "Records of rmq_native.h's layouts: written by go/wire_test.go (go test -run TestWire -update), " +
			"decoded by tests/test_wire.py",
		Cases: wireCases(),
	}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, '\n')
	if *updateFixtures {
		if err := os.WriteFile(fixturePath, want, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(filepath.FromSlash(fixturePath))
	if err != nil {
		t.Fatalf("%v (write it with: go test -run TestWire -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("the encoders no longer write %s; if the layout change is deliberate (rmq_native.h and "+
			"_wire.py updated too), run: go test -run TestWire -update", fixturePath)
	}
}

// The record of rmq_consumer_poll has the header's fixed part: 40 bytes of
// integers and 8 lengths, then the fields.
func TestWireMessageHeaderSize(t *testing.T) {
	buf := encodeMessageRecord(nil, 1, &primitive.MessageExt{})
	if len(buf) != 8+4+4+8+8+8+8*4 {
		t.Fatalf("an empty message record has %d bytes, want 72", len(buf))
	}
}

// BenchmarkMessageFields takes the text fields of a message with the
// properties a broker delivers (a 1 KiB body, tags, keys, one user property).
func BenchmarkMessageFields(b *testing.B) {
	m := fullMessage()
	m.WithProperties(map[string]string{"MIN_OFFSET": "0", "MAX_OFFSET": "12346", "CLUSTER": "DefaultCluster",
		"CONSUME_START_TIME": "1700000000200", "WAIT": "true", "UNIQ_KEY": "7F000001000000000000000000000001"})
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		_ = messageFields(m)
	}
}

// TestMessagePropertiesFindsTheSDKsMap fails when the SDK's Message no
// longer has the layout withProperties reads (it then copies the map with
// GetProperties); both ways yield the message's properties.
func TestMessagePropertiesFindsTheSDKsMap(t *testing.T) {
	if !sdkProps.ok {
		t.Fatal("primitive.Message has no properties map and mutex: withProperties falls back to GetProperties")
	}
	m := fullMessage()
	want := m.GetProperties()
	for _, inPlace := range []bool{true, false} {
		saved := sdkProps.ok
		sdkProps.ok = inPlace
		var got map[string]string
		withProperties(&m.Message, func(all map[string]string) { got = maps.Clone(all) })
		sdkProps.ok = saved
		if !maps.Equal(got, want) {
			t.Errorf("in place %v: properties %v, want %v", inPlace, got, want)
		}
	}
	if f := messageFields(m); f[1] != "tagA" || f[2] != "k1 k2" || f[6] != "color\x00blue\x00" {
		t.Errorf("fields %q", f)
	}
}
