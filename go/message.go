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

// buildMessage converts and validates a C rmq_message. With borrow, the
// message's body is the caller's memory, not a copy (a large body's copy,
// its allocation and its garbage were a tenth of a 64 KiB send's CPU): only
// a send that ends before its export returns may borrow, and nothing may
// keep the message after it.
func buildMessage(m *C.rmq_message, maxSize int, borrow bool) (*primitive.Message, error) {
	if m == nil {
		return nil, errf(C.RMQ_ERR_INVALID_ARGUMENT, "message must not be NULL")
	}
	topic, err := goString(m.topic, m.topic_len)
	if err != nil {
		return nil, err
	}
	if err := validTopic(topic); err != nil {
		return nil, err
	}
	if m.body_len == 0 {
		return nil, errf(C.RMQ_ERR_INVALID_ARGUMENT, "message body must not be empty")
	}
	if int64(m.body_len) > int64(maxSize) {
		return nil, errf(C.RMQ_ERR_INVALID_ARGUMENT, "message body of %d bytes exceeds the maximum message size of %d bytes", int64(m.body_len), maxSize)
	}
	read := goBytes
	if borrow {
		read = cBytes
	}
	body, err := read(m.body, m.body_len)
	if err != nil {
		return nil, err
	}
	msg := primitive.NewMessage(topic, body)
	// The SDK (v2.1.2) gives messages of a batch no id: give every message
	// its unique id here.
	msg.WithProperty(primitive.PropertyUniqueClientMessageIdKeyIndex, newMessageID()) // msgid.go
	tags, err := goString(m.tags, m.tags_len)
	if err != nil {
		return nil, err
	}
	if tags != "" {
		if err := validText("tags", tags); err != nil {
			return nil, err
		}
		msg.WithTag(tags)
	}
	keys, err := goString(m.keys, m.keys_len)
	if err != nil {
		return nil, err
	}
	if keys != "" {
		if err := validText("keys", keys); err != nil {
			return nil, err
		}
		msg.WithKeys(strings.Split(keys, " "))
	}
	props, err := goString(m.properties, m.properties_len)
	if err != nil {
		return nil, err
	}
	if props != "" {
		if !strings.HasSuffix(props, "\x00") {
			return nil, errf(C.RMQ_ERR_INVALID_ARGUMENT, "properties must be NUL-terminated key/value pairs")
		}
		parts := strings.Split(props[:len(props)-1], "\x00")
		if len(parts)%2 != 0 {
			return nil, errf(C.RMQ_ERR_INVALID_ARGUMENT, "properties must be key/value pairs")
		}
		for i := 0; i < len(parts); i += 2 {
			k, v := parts[i], parts[i+1]
			if k == "" {
				return nil, errf(C.RMQ_ERR_INVALID_ARGUMENT, "property names must not be empty")
			}
			if err := validText("property "+k, k+v); err != nil {
				return nil, err
			}
			if isSystemProperty(k) {
				return nil, errf(C.RMQ_ERR_INVALID_ARGUMENT, "property name %q is reserved by RocketMQ", k)
			}
			msg.WithProperty(k, v)
		}
	}
	shardingKey, err := goString(m.sharding_key, m.sharding_key_len)
	if err != nil {
		return nil, err
	}
	if shardingKey != "" {
		if err := validText("sharding_key", shardingKey); err != nil {
			return nil, err
		}
		msg.WithShardingKey(shardingKey)
	}
	if m.reserved != 0 {
		return nil, errf(C.RMQ_ERR_INVALID_ARGUMENT, "rmq_message.reserved must be 0")
	}
	if m.deliver_at_ms < 0 {
		return nil, errf(C.RMQ_ERR_INVALID_ARGUMENT, "deliver_at_ms must be >= 0")
	}
	if m.deliver_at_ms > 0 {
		if m.delay_level != 0 {
			return nil, errf(C.RMQ_ERR_INVALID_ARGUMENT, "give either a delay level or a delivery time, not both")
		}
		msg.WithProperty("TIMER_DELIVER_MS", strconv.FormatInt(int64(m.deliver_at_ms), 10))
	}
	if m.delay_level < 0 || m.delay_level > 18 {
		return nil, errf(C.RMQ_ERR_INVALID_ARGUMENT, "delay_level must be 0..18, not %d", int32(m.delay_level))
	}
	if m.delay_level > 0 {
		msg.WithDelayTimeLevel(int(m.delay_level))
	}
	return msg, nil
}
