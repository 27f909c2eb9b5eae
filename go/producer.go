package main

/*
#include "rmq_native.h"
*/
import "C"

import (
	"bytes"
	"compress/zlib"
	"context"
	"math"
	"regexp"
	"strings"
	"sync"
	"time"
	"unsafe"

	rocketmq "github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
)

// producerConfig is the JSON configuration of rmq_producer_new.
type producerConfig struct {
	NameServer     string `json:"name_server"`
	Group          string `json:"group"`
	InstanceName   string `json:"instance_name"`
	SendTimeoutMs  int    `json:"send_timeout_ms"`
	Retries        *int   `json:"retries"`
	Namespace      string `json:"namespace"`
	AccessKey      string `json:"access_key"`
	SecretKey      string `json:"secret_key"`
	CompressOver   *int   `json:"compress_over"`
	CompressLevel  *int   `json:"compress_level"`
	MaxMessageSize int    `json:"max_message_size"`
}

type producerState struct {
	mu          sync.RWMutex // read-held by sends, write-held by close
	closed      bool
	p           rocketmq.Producer
	nameServers []string
	timeout     time.Duration
	maxSize     int
	compressAt  int // bodies of at least this many bytes are compressed
	level       int
}

// compress zlib-compresses a body for the wire when that makes it smaller.
// The library compresses instead of the SDK, which (v2.1.2) keeps a
// compressed body even when it grew, pushing incompressible bodies near the
// size limit over it.
func (st *producerState) compress(msg *primitive.Message) {
	if st.compressAt <= 0 || len(msg.Body) < st.compressAt {
		return
	}
	var buf bytes.Buffer
	w, err := zlib.NewWriterLevel(&buf, st.level)
	if err != nil {
		return
	}
	if _, err := w.Write(msg.Body); err != nil || w.Close() != nil {
		return
	}
	if buf.Len() < len(msg.Body) {
		msg.CompressedBody = buf.Bytes()
		msg.Compress = true
	}
}

const defaultMaxMessageSize = 4 * 1024 * 1024

var topicRe = regexp.MustCompile(`^[%|a-zA-Z0-9_-]{1,127}$`)

// validTopic checks a topic name the way the broker does.
func validTopic(t string) error {
	if !topicRe.MatchString(t) {
		return errf(C.RMQ_ERR_INVALID_ARGUMENT,
			"invalid topic name %q: 1 to 127 characters from letters, digits, '%%', '|', '_' and '-'", t)
	}
	return nil
}

// validText rejects characters that corrupt RocketMQ's property encoding.
func validText(what, s string) error {
	if strings.ContainsAny(s, "\x00\x01\x02") {
		return errf(C.RMQ_ERR_INVALID_ARGUMENT, "%s must not contain the control characters \\x00, \\x01 or \\x02: %q", what, s)
	}
	return nil
}

func credentials(ak, sk string) (primitive.Credentials, error) {
	if (ak == "") != (sk == "") {
		return primitive.Credentials{}, errf(C.RMQ_ERR_INVALID_ARGUMENT, "access_key and secret_key must be given together")
	}
	return primitive.Credentials{AccessKey: ak, SecretKey: sk}, nil
}

//export rmq_producer_new
func rmq_producer_new(config *C.char, configLen C.int64_t, outHandle *C.uint64_t) (rc C.int32_t) {
	defer guard(&rc)
	if outHandle == nil {
		return fail(errf(C.RMQ_ERR_INVALID_ARGUMENT, "out_handle must not be NULL"))
	}
	var cfg producerConfig
	if err := decodeConfig(config, configLen, &cfg); err != nil {
		return fail(err)
	}
	addrs, err := nameServers(cfg.NameServer)
	if err != nil {
		return fail(err)
	}
	if cfg.SendTimeoutMs < 0 {
		return fail(errf(C.RMQ_ERR_INVALID_ARGUMENT, "send_timeout_ms must be >= 0"))
	}
	timeout := 3 * time.Second
	if cfg.SendTimeoutMs > 0 {
		timeout = time.Duration(cfg.SendTimeoutMs) * time.Millisecond
	}
	group := cfg.Group
	if group == "" {
		group = "rmq_native_producer"
	}
	if err := validText("group", group); err != nil {
		return fail(err)
	}
	maxSize := cfg.MaxMessageSize
	if maxSize <= 0 {
		maxSize = defaultMaxMessageSize
	}
	opts := []producer.Option{
		producer.WithNameServer(addrs),
		producer.WithGroupName(group),
		producer.WithInstanceName(uniqueInstance(cfg.InstanceName)),
		producer.WithSendMsgTimeout(timeout),
	}
	if cfg.Retries != nil {
		if *cfg.Retries < 0 {
			return fail(errf(C.RMQ_ERR_INVALID_ARGUMENT, "retries must be >= 0"))
		}
		opts = append(opts, producer.WithRetry(*cfg.Retries))
	}
	if cfg.Namespace != "" {
		opts = append(opts, producer.WithNamespace(cfg.Namespace))
	}
	if cfg.AccessKey != "" || cfg.SecretKey != "" {
		cr, err := credentials(cfg.AccessKey, cfg.SecretKey)
		if err != nil {
			return fail(err)
		}
		opts = append(opts, producer.WithCredentials(cr))
	}
	// The library compresses (see compress); the SDK never does.
	opts = append(opts, producer.WithCompressMsgBodyOverHowmuch(math.MaxInt32))
	compressAt, level := 4096, 5
	if cfg.CompressOver != nil {
		compressAt = *cfg.CompressOver // 0 disables compression
	}
	if cfg.CompressLevel != nil {
		level = *cfg.CompressLevel
	}
	if compressAt < 0 || level < 1 || level > 9 {
		return fail(errf(C.RMQ_ERR_INVALID_ARGUMENT, "compress_over must be >= 0 and compress_level 1..9"))
	}
	if !anyReachable(addrs, timeout) {
		return fail(errf(C.RMQ_ERR_UNREACHABLE, "name server %s unreachable", strings.Join(addrs, ";")))
	}
	p, err := rocketmq.NewProducer(opts...)
	if err != nil {
		return fail(errf(C.RMQ_ERR_STATE, "cannot create producer: %v", err))
	}
	if err := p.Start(); err != nil {
		_ = p.Shutdown()
		return fail(errf(C.RMQ_ERR_STATE, "cannot start producer: %v", err))
	}
	*outHandle = C.uint64_t(newHandle(&producerState{p: p, nameServers: addrs, timeout: timeout, maxSize: maxSize,
		compressAt: compressAt, level: level}))
	return C.RMQ_OK
}

// buildMessage converts and validates a C rmq_message.
func buildMessage(m *C.rmq_message, maxSize int) (*primitive.Message, error) {
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
	body, err := goBytes(m.body, m.body_len)
	if err != nil {
		return nil, err
	}
	msg := primitive.NewMessage(topic, body)
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
	if m.delay_level < 0 || m.delay_level > 18 {
		return nil, errf(C.RMQ_ERR_INVALID_ARGUMENT, "delay_level must be 0..18, not %d", int32(m.delay_level))
	}
	if m.delay_level > 0 {
		msg.WithDelayTimeLevel(int(m.delay_level))
	}
	return msg, nil
}

// sendError refines SDK errors: a missing route caused by unreachable
// name servers is reported as such.
func sendError(err error, st *producerState, topic string, timeout time.Duration) error {
	code := classify(err)
	switch code {
	case C.RMQ_ERR_NO_ROUTE:
		if !anyReachable(st.nameServers, 500*time.Millisecond) {
			return errf(C.RMQ_ERR_UNREACHABLE, "name server %s unreachable", strings.Join(st.nameServers, ";"))
		}
		return errf(C.RMQ_ERR_NO_ROUTE, "topic %q has no route: create it (Admin.create_topic) or enable autoCreateTopicEnable on the broker (%v)", topic, err)
	case C.RMQ_ERR_TIMEOUT:
		return errf(C.RMQ_ERR_TIMEOUT, "send to topic %q timed out after %v: %v", topic, timeout, err)
	}
	return &rmqError{code: code, msg: "rmq_native: send to topic " + topic + " failed: " + err.Error()}
}

func fillResult(out *C.rmq_send_result, r *primitive.SendResult) {
	out.status = C.int32_t(r.Status)
	if r.MessageQueue != nil {
		out.queue_id = C.int32_t(r.MessageQueue.QueueId)
		copyCString(unsafe.Slice(&out.broker_name[0], len(out.broker_name)), r.MessageQueue.BrokerName)
	}
	out.queue_offset = C.int64_t(r.QueueOffset)
	copyCString(unsafe.Slice(&out.msg_id[0], len(out.msg_id)), r.MsgID)
	copyCString(unsafe.Slice(&out.offset_msg_id[0], len(out.offset_msg_id)), r.OffsetMsgID)
	copyCString(unsafe.Slice(&out.transaction_id[0], len(out.transaction_id)), r.TransactionID)
}

// producerFor returns the open producer of a handle.
func producerFor(h C.uint64_t) (*producerState, error) {
	v, ok := lookup(h)
	st, isProducer := v.(*producerState)
	if !ok || !isProducer {
		return nil, errf(C.RMQ_ERR_CLOSED, "producer handle %d is closed or unknown", uint64(h))
	}
	return st, nil
}

//export rmq_producer_send
func rmq_producer_send(h C.uint64_t, m *C.rmq_message, timeoutMs C.int32_t, out *C.rmq_send_result) (rc C.int32_t) {
	defer guard(&rc)
	st, err := producerFor(h)
	if err != nil {
		return fail(err)
	}
	if out == nil {
		return fail(errf(C.RMQ_ERR_INVALID_ARGUMENT, "result must not be NULL"))
	}
	msg, err := buildMessage(m, st.maxSize)
	if err != nil {
		return fail(err)
	}
	st.compress(msg)
	timeout := st.timeout
	if timeoutMs > 0 {
		timeout = time.Duration(timeoutMs) * time.Millisecond
	}
	st.mu.RLock()
	defer st.mu.RUnlock()
	if st.closed {
		return fail(errf(C.RMQ_ERR_CLOSED, "producer is closed"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	res, err := st.p.SendSync(ctx, msg)
	if err == nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	if err != nil {
		return fail(sendError(err, st, msg.Topic, timeout))
	}
	fillResult(out, res)
	return C.RMQ_OK
}

//export rmq_producer_close
func rmq_producer_close(h C.uint64_t) (rc C.int32_t) {
	defer guard(&rc)
	v, _ := lookup(h)
	st, ok := v.(*producerState)
	if !ok {
		return C.RMQ_OK // idempotent: unknown or already closed
	}
	takeHandle(h)
	st.mu.Lock()
	defer st.mu.Unlock()
	if !st.closed {
		st.closed = true
		if err := st.p.Shutdown(); err != nil {
			return fail(errf(C.RMQ_ERR_STATE, "producer shutdown: %v", err))
		}
	}
	return C.RMQ_OK
}
