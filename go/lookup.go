package main

// Reading messages over the admin client without a consumer group: the
// lookup by key or message id, and the pulls of the Python Reader.

/*
#include "rmq_native.h"
*/
import "C"
import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
)

// exportMessages hands messages to the caller in the record layout of
// rmq_consumer_poll (delivery id 0).
func (st *adminState) exportMessages(msgs []*primitive.MessageExt, out **C.uint8_t, outLen *C.int64_t, outCount *C.int32_t) {
	var buf []byte
	for _, m := range msgs {
		m.Topic = st.shortName(m.Topic)
		buf = encodeMessageRecord(buf, 0, m)
	}
	export(buf, out, outLen)
	*outCount = C.int32_t(len(msgs))
}

// hasKey tells whether key is one of the message's keys.
func hasKey(m *primitive.MessageExt, key string) bool {
	for _, k := range strings.Fields(m.GetKeys()) {
		if k == key {
			return true
		}
	}
	return false
}

// queryIndex asks every broker of the topic's route for messages by key
// (or by client message id) through the broker's index.
func (st *adminState) queryIndex(full string, rt *topicRoute, key string, unique bool, beginMs, endMs int64, limit int) ([]*primitive.MessageExt, error) {
	var found []*primitive.MessageExt
	for _, q := range rt.queues {
		ext := map[string]string{
			"topic": full, "key": key, "maxNum": strconv.Itoa(limit),
			"beginTimestamp": strconv.FormatInt(beginMs, 10), "endTimestamp": strconv.FormatInt(endMs, 10),
		}
		if unique {
			ext[uniqueKeyFlag] = "true"
		}
		r, err := st.exchange("broker", rt.addrs[q.BrokerName], reqQueryMessage, ext)
		if err != nil {
			return nil, err
		}
		if r.code == respQueryNotFound {
			continue
		}
		if r.code != 0 {
			return nil, r.refusal("broker "+q.BrokerName, "the message query")
		}
		for _, m := range primitive.DecodeMessage(r.body) {
			// the index is a hash: keep only real matches
			if m.Topic != full || (unique && m.MsgId != key) || (!unique && !hasKey(m, key)) {
				continue
			}
			m.Queue.Topic, m.Queue.BrokerName = full, q.BrokerName
			found = append(found, m)
		}
	}
	return found, nil
}

// viewByOffsetID reads a message by its broker-side (offset) id: the
// broker's address and the commit log offset, in hex.
func (st *adminState) viewByOffsetID(full string, rt *topicRoute, id string) ([]*primitive.MessageExt, error) {
	raw, err := hex.DecodeString(id)
	if err != nil || len(raw) != 16 {
		return nil, nil
	}
	addr := fmt.Sprintf("%d.%d.%d.%d:%d", raw[0], raw[1], raw[2], raw[3], binary.BigEndian.Uint32(raw[4:8]))
	name := ""
	for n, a := range rt.addrs {
		if a == addr {
			name = n
		}
	}
	if name == "" {
		return nil, nil
	}
	r, err := st.exchange("broker", addr, reqViewMessageByID, map[string]string{
		"offset": strconv.FormatUint(binary.BigEndian.Uint64(raw[8:]), 10),
	})
	if err != nil || r.code != 0 {
		return nil, err
	}
	var found []*primitive.MessageExt
	for _, m := range primitive.DecodeMessage(r.body) {
		if m.Topic == full {
			m.Queue.Topic, m.Queue.BrokerName = full, name
			found = append(found, m)
		}
	}
	return found, nil
}

// rmq_admin_find_messages: see rmq_native.h.
//
//export rmq_admin_find_messages
func rmq_admin_find_messages(h C.uint64_t, topicP *C.char, topicLen C.int64_t, keyP *C.char, keyLen C.int64_t, idP *C.char, idLen C.int64_t, beginMs C.int64_t, endMs C.int64_t, limit C.int32_t, out **C.uint8_t, outLen *C.int64_t, outCount *C.int32_t) C.int32_t {
	return withAdmin(h, func(st *adminState) error {
		if out == nil || outLen == nil || outCount == nil {
			return errf(C.RMQ_ERR_INVALID_ARGUMENT, "output pointers must not be NULL")
		}
		*out, *outLen, *outCount = nil, 0, 0
		topic, err := nameArg("topic", topicP, topicLen)
		if err != nil {
			return err
		}
		key, err := textArg("key", keyP, keyLen)
		if err != nil {
			return err
		}
		id, err := textArg("msg_id", idP, idLen)
		if err != nil {
			return err
		}
		if (key == "") == (id == "") {
			return errf(C.RMQ_ERR_INVALID_ARGUMENT, "give exactly one of key and msg_id")
		}
		if limit < 1 || limit > 64*1024 {
			return errf(C.RMQ_ERR_INVALID_ARGUMENT, "limit must be 1..65536, not %d", int32(limit))
		}
		end := int64(endMs)
		if end <= 0 {
			end = time.Now().Add(24 * time.Hour).UnixMilli()
		}
		if beginMs < 0 || int64(beginMs) > end {
			return errf(C.RMQ_ERR_INVALID_ARGUMENT, "begin must be >= 0 and not after end")
		}
		full := st.fullTopic(topic)
		rt, err := st.route(full)
		if err != nil {
			return err
		}
		var found []*primitive.MessageExt
		if key != "" {
			found, err = st.queryIndex(full, rt, key, false, int64(beginMs), end, int(limit))
		} else if found, err = st.queryIndex(full, rt, id, true, int64(beginMs), end, int(limit)); err == nil && len(found) == 0 {
			found, err = st.viewByOffsetID(full, rt, id)
		}
		if err != nil {
			return err
		}
		sort.SliceStable(found, func(i, j int) bool { return found[i].StoreTimestamp < found[j].StoreTimestamp })
		if len(found) > int(limit) {
			found = found[:limit]
		}
		st.exportMessages(found, out, outLen, outCount)
		return nil
	})
}

// tagSet is the exact tags of a tag expression (nil for "*"): the broker
// filters by the tags' hash codes, the client must check the tags.
func tagSet(expr string) map[string]bool {
	expr = strings.TrimSpace(expr)
	if expr == "" || expr == "*" {
		return nil
	}
	set := map[string]bool{}
	for _, t := range strings.Split(expr, "||") {
		if t = strings.TrimSpace(t); t != "" {
			set[t] = true
		}
	}
	return set
}

// readerGroup is the group named in the Reader's pull requests: the broker
// requires one (and creates its subscription config when
// autoCreateSubscriptionGroup is on), but no offset is ever committed.
const readerGroup = "rmq_native_reader"

// rmq_admin_pull: see rmq_native.h.
//
//export rmq_admin_pull
func rmq_admin_pull(h C.uint64_t, topicP *C.char, topicLen C.int64_t, brokerP *C.char, brokerLen C.int64_t, queueID C.int32_t, offset C.int64_t, maxMessages C.int32_t, selectorP *C.char, selectorLen C.int64_t, exprP *C.char, exprLen C.int64_t, out **C.uint8_t, outLen *C.int64_t, outCount *C.int32_t, outNext *C.int64_t) C.int32_t {
	return withAdmin(h, func(st *adminState) error {
		if out == nil || outLen == nil || outCount == nil || outNext == nil {
			return errf(C.RMQ_ERR_INVALID_ARGUMENT, "output pointers must not be NULL")
		}
		*out, *outLen, *outCount, *outNext = nil, 0, 0, offset
		topic, err := nameArg("topic", topicP, topicLen)
		if err != nil {
			return err
		}
		broker, err := textArg("broker_name", brokerP, brokerLen)
		if err != nil {
			return err
		}
		selector, err := textArg("selector", selectorP, selectorLen)
		if err != nil {
			return err
		}
		expr, err := textArg("expression", exprP, exprLen)
		if err != nil {
			return err
		}
		exprType := "TAG"
		switch strings.ToLower(selector) {
		case "", "tag":
			if expr == "" {
				expr = "*"
			}
		case "sql92":
			exprType = "SQL92"
			if strings.TrimSpace(expr) == "" {
				return errf(C.RMQ_ERR_INVALID_ARGUMENT, "an sql92 expression must not be empty")
			}
		default:
			return errf(C.RMQ_ERR_INVALID_ARGUMENT, "selector must be \"tag\" or \"sql92\", not %q", selector)
		}
		if queueID < 0 || offset < 0 || maxMessages < 1 || maxMessages > 1024 {
			return errf(C.RMQ_ERR_INVALID_ARGUMENT, "queue_id and offset must be >= 0 and max_messages 1..1024")
		}
		full := st.fullTopic(topic)
		rt, err := st.cachedRoute(full, false)
		if err != nil {
			return err
		}
		addr, ok := rt.addrs[broker]
		if !ok {
			if rt, err = st.cachedRoute(full, true); err != nil {
				return err
			}
			if addr, ok = rt.addrs[broker]; !ok {
				return errf(C.RMQ_ERR_NO_ROUTE, "topic %q has no broker %q", topic, broker)
			}
		}
		r, err := st.exchange("broker", addr, reqPullMessage, map[string]string{
			"consumerGroup": st.fullTopic(readerGroup), "topic": full, "queueId": strconv.Itoa(int(queueID)),
			"queueOffset": strconv.FormatInt(int64(offset), 10), "maxMsgNums": strconv.Itoa(int(maxMessages)),
			"sysFlag":      "4", // FLAG_SUBSCRIPTION only: no offset committed, no long polling
			"commitOffset": "0", "suspendTimeoutMillis": "0", "subscription": expr, "subVersion": "0",
			"expressionType": exprType,
		})
		if err != nil {
			return err
		}
		switch r.code {
		case 0, respPullNotFound, respPullRetry, respPullOffsetMoved:
		default:
			return r.refusal("broker "+broker, fmt.Sprintf("the pull of %s queue %d", topic, int(queueID)))
		}
		next, err := strconv.ParseInt(r.ext["nextBeginOffset"], 10, 64)
		if err != nil {
			return errf(C.RMQ_ERR_BROKER, "broker %s answered the pull without nextBeginOffset", broker)
		}
		var msgs []*primitive.MessageExt
		if r.code == 0 {
			tags := tagSet(expr)
			for _, m := range primitive.DecodeMessage(r.body) {
				if m.QueueOffset < int64(offset) || (exprType == "TAG" && tags != nil && !tags[m.GetTags()]) {
					continue
				}
				m.Queue.Topic, m.Queue.BrokerName = full, broker
				msgs = append(msgs, m)
			}
		}
		st.exportMessages(msgs, out, outLen, outCount)
		*outNext = C.int64_t(next)
		return nil
	})
}
