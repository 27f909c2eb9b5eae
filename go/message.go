package main

// A C rmq_message becomes an SDK message, checked the way the broker
// checks it.

/*
#include "rmq_native.h"
*/
import "C"

import (
	"strconv"
	"strings"

	"github.com/apache/rocketmq-client-go/v2/primitive"
)

// defaultMaxMessageSize is the broker's default limit of a message body.
const defaultMaxMessageSize = 4 * 1024 * 1024

// checkedMessage is a C rmq_message read and checked the way the broker
// checks it: its texts as Go strings, its body the caller's memory or a
// copy (borrow: see buildMessage).
type checkedMessage struct {
	topic, tags, keys, shardingKey string
	body                           []byte
	props                          []string // user properties: name, value, name, value, ...
	deliverAtMs                    int64
	delayLevel                     int
}

// buildMessage converts and validates a C rmq_message. With borrow, the
// message's body is the caller's memory, not a copy (a large body's copy,
// its allocation and its garbage were a tenth of a 64 KiB send's CPU): only
// a send that ends before its export returns may borrow, and nothing may
// keep the message after it.
func buildMessage(m *C.rmq_message, maxSize int, borrow bool) (*primitive.Message, error) {
	f, err := readMessage(m, maxSize, borrow)
	if err != nil {
		return nil, err
	}
	msg := primitive.NewMessage(f.topic, f.body)
	// The message's unique id, given before the SDK sees it: the library's
	// retries resend the message under it, and a failed send reports it.
	msg.WithProperty(primitive.PropertyUniqueClientMessageIdKeyIndex, newMessageID()) // msgid.go
	msg.WithProperty(primitive.PropertyTags, f.tags)                                  // WithProperty skips ""
	msg.WithProperty(primitive.PropertyKeys, f.keys)
	for i := 0; i < len(f.props); i += 2 {
		msg.WithProperty(f.props[i], f.props[i+1])
	}
	msg.WithProperty(primitive.PropertyShardingKey, f.shardingKey)
	if f.deliverAtMs > 0 {
		msg.WithProperty("TIMER_DELIVER_MS", strconv.FormatInt(f.deliverAtMs, 10))
	}
	if f.delayLevel > 0 {
		msg.WithDelayTimeLevel(f.delayLevel)
	}
	return msg, nil
}

// readMessage reads and checks a C rmq_message (borrow: see buildMessage).
func readMessage(m *C.rmq_message, maxSize int, borrow bool) (f checkedMessage, err error) {
	if m == nil {
		return f, errf(C.RMQ_ERR_INVALID_ARGUMENT, "message must not be NULL")
	}
	if f.topic, err = goString(m.topic, m.topic_len); err != nil {
		return f, err
	}
	if err := validTopic(f.topic); err != nil {
		return f, err
	}
	return f, f.readRest(m, maxSize, borrow)
}

// readRest reads and checks what follows the topic in a C rmq_message.
func (f *checkedMessage) readRest(m *C.rmq_message, maxSize int, borrow bool) (err error) {
	if m.body_len == 0 {
		return errf(C.RMQ_ERR_INVALID_ARGUMENT, "message body must not be empty")
	}
	if int64(m.body_len) > int64(maxSize) {
		return errf(C.RMQ_ERR_INVALID_ARGUMENT, "message body of %d bytes exceeds the maximum message size of %d bytes", int64(m.body_len), maxSize)
	}
	read := goBytes
	if borrow {
		read = cBytes
	}
	if f.body, err = read(m.body, m.body_len); err != nil {
		return err
	}
	if f.tags, err = goString(m.tags, m.tags_len); err != nil {
		return err
	}
	if f.tags != "" {
		if err := validText("tags", f.tags); err != nil {
			return err
		}
	}
	if f.keys, err = goString(m.keys, m.keys_len); err != nil {
		return err
	}
	if f.keys != "" {
		if err := validText("keys", f.keys); err != nil {
			return err
		}
	}
	props, err := goString(m.properties, m.properties_len)
	if err != nil {
		return err
	}
	if props != "" {
		if !strings.HasSuffix(props, "\x00") {
			return errf(C.RMQ_ERR_INVALID_ARGUMENT, "properties must be NUL-terminated key/value pairs")
		}
		f.props = strings.Split(props[:len(props)-1], "\x00")
		if len(f.props)%2 != 0 {
			return errf(C.RMQ_ERR_INVALID_ARGUMENT, "properties must be key/value pairs")
		}
		for i := 0; i < len(f.props); i += 2 {
			k, v := f.props[i], f.props[i+1]
			if k == "" {
				return errf(C.RMQ_ERR_INVALID_ARGUMENT, "property names must not be empty")
			}
			if err := validText("property "+k, k+v); err != nil {
				return err
			}
			if isSystemProperty(k) {
				return errf(C.RMQ_ERR_INVALID_ARGUMENT, "property name %q is reserved by RocketMQ", k)
			}
		}
	}
	if f.shardingKey, err = goString(m.sharding_key, m.sharding_key_len); err != nil {
		return err
	}
	if f.shardingKey != "" {
		if err := validText("sharding_key", f.shardingKey); err != nil {
			return err
		}
	}
	if m.reserved != 0 {
		return errf(C.RMQ_ERR_INVALID_ARGUMENT, "rmq_message.reserved must be 0")
	}
	if m.deliver_at_ms < 0 {
		return errf(C.RMQ_ERR_INVALID_ARGUMENT, "deliver_at_ms must be >= 0")
	}
	if m.deliver_at_ms > 0 && m.delay_level != 0 {
		return errf(C.RMQ_ERR_INVALID_ARGUMENT, "give either a delay level or a delivery time, not both")
	}
	f.deliverAtMs = int64(m.deliver_at_ms)
	if m.delay_level < 0 || m.delay_level > 18 {
		return errf(C.RMQ_ERR_INVALID_ARGUMENT, "delay_level must be 0..18, not %d", int32(m.delay_level))
	}
	f.delayLevel = int(m.delay_level)
	return nil
}
