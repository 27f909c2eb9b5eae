package main

/*
#include "rmq_native.h"
*/
import "C"

import (
	"bytes"
	"compress/zlib"
	"context"
	"encoding/binary"
	"errors"
	"hash/fnv"
	"math"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	rocketmq "github.com/apache/rocketmq-client-go/v2"
	rmqerrors "github.com/apache/rocketmq-client-go/v2/errors"
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
	traceOptions          // "trace", "trace_topic" (trace.go)
}

type producerState struct {
	mu          sync.RWMutex                 // read-held by sends, write-held by close
	closing     bool                         // no new sends (set first by close)
	closed      bool                         // shut down
	retries     int                          // library retries of a failed send
	p           rocketmq.Producer            // a plain producer, or
	tp          rocketmq.TransactionProducer // a transaction producer
	start       func() error
	shutdown    func() error
	inflight    sync.WaitGroup  // asynchronous sends
	qmu         sync.Mutex      // guards queue and senders
	queue       []asyncJob      // asynchronous sends waiting for a sender
	senders     int             // running sender goroutines
	completions completionQueue // finished asynchronous sends
	tx          *txState        // transaction producers only
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

// newProducer validates a configuration and starts a producer, or a
// transaction producer when listener is not nil.
func newProducer(config *C.char, configLen C.int64_t, listener primitive.TransactionListener) (*producerState, error) {
	var cfg producerConfig
	if err := decodeConfig(config, configLen, &cfg); err != nil {
		return nil, err
	}
	addrs, err := nameServers(cfg.NameServer)
	if err != nil {
		return nil, err
	}
	if cfg.SendTimeoutMs < 0 {
		return nil, errf(C.RMQ_ERR_INVALID_ARGUMENT, "send_timeout_ms must be >= 0")
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
		return nil, err
	}
	maxSize := cfg.MaxMessageSize
	if maxSize <= 0 {
		maxSize = defaultMaxMessageSize
	}
	instance, err := uniqueInstance(cfg.InstanceName)
	if err != nil {
		return nil, err
	}
	opts := []producer.Option{
		producer.WithNameServer(addrs),
		producer.WithGroupName(group),
		producer.WithInstanceName(instance),
		producer.WithSendMsgTimeout(timeout),
		producer.WithQueueSelector(&shardingSelector{rr: producer.NewRoundRobinQueueSelector()}),
		// The library compresses (see compress); the SDK never does.
		producer.WithCompressMsgBodyOverHowmuch(math.MaxInt32),
	}
	// The library retries (sendWithRetries): the SDK's own retries start
	// after the caller's deadline (v2.1.2), storing copies of a message the
	// caller was told had timed out.
	opts = append(opts, producer.WithRetry(0))
	retries := 2
	if cfg.Retries != nil {
		if *cfg.Retries < 0 {
			return nil, errf(C.RMQ_ERR_INVALID_ARGUMENT, "retries must be >= 0")
		}
		retries = *cfg.Retries
	}
	if cfg.Namespace != "" {
		opts = append(opts, producer.WithNamespace(cfg.Namespace))
	}
	if cfg.AccessKey != "" || cfg.SecretKey != "" {
		cr, err := credentials(cfg.AccessKey, cfg.SecretKey)
		if err != nil {
			return nil, err
		}
		opts = append(opts, producer.WithCredentials(cr))
	}
	if tr, err := cfg.traceConfig(addrs, group, cfg.AccessKey, cfg.SecretKey); err != nil { // message trace (trace.go)
		return nil, err
	} else if tr != nil {
		opts = append(opts, producer.WithTrace(tr))
	}
	compressAt, level := 4096, 5
	if cfg.CompressOver != nil {
		compressAt = *cfg.CompressOver // 0 disables compression
	}
	if cfg.CompressLevel != nil {
		level = *cfg.CompressLevel
	}
	if compressAt < 0 || level < 1 || level > 9 {
		return nil, errf(C.RMQ_ERR_INVALID_ARGUMENT, "compress_over must be >= 0 and compress_level 1..9")
	}
	if !anyReachable(addrs, timeout) {
		return nil, errf(C.RMQ_ERR_UNREACHABLE, "name server %s unreachable", strings.Join(addrs, ";"))
	}
	st := &producerState{nameServers: addrs, timeout: timeout, maxSize: maxSize, compressAt: compressAt,
		level: level, retries: retries, completions: newCompletionQueue()}
	if listener == nil {
		p, release, err := sharedProducer(cfg, opts) // pool.go: started, shared
		if err != nil {
			return nil, err
		}
		st.p, st.start, st.shutdown = p, func() error { return nil }, release
	} else {
		tp, err := rocketmq.NewTransactionProducer(listener, opts...)
		if err != nil {
			return nil, errf(C.RMQ_ERR_STATE, "cannot create transaction producer: %v", err)
		}
		st.tp, st.start, st.shutdown = tp, tp.Start, reaped(tp, tp.Shutdown) // reap.go
	}
	if err := st.start(); err != nil {
		_ = st.shutdown()
		return nil, errf(C.RMQ_ERR_STATE, "cannot start producer: %v", err)
	}
	return st, nil
}

// rmq_producer_new: see rmq_native.h.
//
//export rmq_producer_new
func rmq_producer_new(config *C.char, configLen C.int64_t, outHandle *C.uint64_t) C.int32_t {
	return call(func() error {
		if outHandle == nil {
			return errf(C.RMQ_ERR_INVALID_ARGUMENT, "out_handle must not be NULL")
		}
		st, err := newProducer(config, configLen, nil)
		if err != nil {
			return err
		}
		*outHandle = C.uint64_t(newHandle(st))
		return nil
	})
}

// shardingSelector sends messages with a sharding key to the queue its hash
// picks (so a key's messages stay in order) and the others round-robin.
type shardingSelector struct {
	rr producer.QueueSelector
}

func (s *shardingSelector) Select(msg *primitive.Message, mqs []*primitive.MessageQueue, lastBroker string) *primitive.MessageQueue {
	key := msg.GetShardingKey()
	if key == "" || len(mqs) == 0 {
		return s.rr.Select(msg, mqs, lastBroker)
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	return mqs[h.Sum32()%uint32(len(mqs))]
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
	// The SDK (v2.1.2) gives messages of a batch no id: give every message
	// its unique id here.
	msg.WithProperty(primitive.PropertyUniqueClientMessageIdKeyIndex, primitive.CreateUniqID())
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

// canSend tells whether a plain send may start. The caller holds st.mu
// for reading.
func (st *producerState) canSend() error {
	if st.closing {
		return errf(C.RMQ_ERR_CLOSED, "producer is closed")
	}
	if st.p == nil {
		return errf(C.RMQ_ERR_INVALID_ARGUMENT, "a transaction producer sends with rmq_tx_send")
	}
	return nil
}

// preparedSend looks up the producer of a handle and validates and
// compresses the message it is to send.
func preparedSend(h C.uint64_t, m *C.rmq_message) (*producerState, *primitive.Message, error) {
	st, err := handleOf[*producerState](h, "producer")
	if err != nil {
		return nil, nil, err
	}
	msg, err := st.prepare(m)
	return st, msg, err
}

// prepare validates a message for this producer and compresses it.
func (st *producerState) prepare(m *C.rmq_message) (*primitive.Message, error) {
	msg, err := buildMessage(m, st.maxSize)
	if err != nil {
		return nil, err
	}
	st.compress(msg)
	return msg, nil
}

func (st *producerState) timeoutFor(timeoutMs C.int32_t) time.Duration {
	if timeoutMs > 0 {
		return time.Duration(timeoutMs) * time.Millisecond
	}
	return st.timeout
}

// sendSync sends msgs (one, or a batch) and waits at most timeout. The
// caller holds st.mu for reading and checked canSend.
func (st *producerState) sendSync(timeout time.Duration, msgs ...*primitive.Message) (*primitive.SendResult, error) {
	if st.closed {
		return nil, errf(C.RMQ_ERR_CLOSED, "producer is closed")
	}
	var res *primitive.SendResult
	err := st.sendWithRetries(timeout, msgs, func(ctx context.Context) (err error) {
		res, err = st.p.SendSync(ctx, msgs...)
		return err
	})
	return res, err
}

// sendWithRetries runs attempt (one SDK send of msgs, with no SDK retry)
// until it succeeds, fails for good, st.retries retries are used, or the
// deadline passes: no attempt starts after it. Every attempt sends the
// same messages, so a message keeps its msg_id (UNIQ_KEY) across attempts
// and consumers can deduplicate. An attempt written but not answered in
// time makes the outcome unknown: RMQ_ERR_SEND_UNKNOWN, naming the msg_id.
func (st *producerState) sendWithRetries(timeout time.Duration, msgs []*primitive.Message,
	attempt func(ctx context.Context) error) error {
	deadline := time.Now().Add(timeout)
	topics := make([]string, len(msgs))
	for i, m := range msgs {
		topics[i] = m.Topic
	}
	var err error
	maybeStored := false
	for try := 0; try <= st.retries && time.Now().Before(deadline); try++ {
		for i, m := range msgs {
			m.Topic = topics[i] // the SDK prefixes the namespace on every call
		}
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		err = attempt(ctx)
		cancel()
		if err == nil {
			return nil // stored, even if the answer came at the deadline
		}
		if errors.Is(err, rmqerrors.ErrRequestTimeout) {
			maybeStored = true // written, not answered before the deadline
			break
		}
		code := classify(err)
		if code == C.RMQ_ERR_REJECTED || code == C.RMQ_ERR_AUTH || code == C.RMQ_ERR_INVALID_ARGUMENT ||
			code == C.RMQ_ERR_TIMEOUT {
			break
		}
		if code == C.RMQ_ERR_NO_ROUTE && try < st.retries {
			// a topic created a moment ago reaches the name server shortly
			pause := time.Duration(try+1) * 100 * time.Millisecond
			if left := time.Until(deadline); left < pause {
				pause = left
			}
			time.Sleep(pause)
		}
	}
	for i, m := range msgs {
		m.Topic = topics[i]
	}
	if err == nil {
		err = context.DeadlineExceeded // the deadline passed before a first attempt
	}
	if maybeStored {
		ids := make([]string, len(msgs))
		for i, m := range msgs {
			ids[i] = m.GetProperty(primitive.PropertyUniqueClientMessageIdKeyIndex)
		}
		return errf(C.RMQ_ERR_SEND_UNKNOWN, "send to topic %q: no answer within %v, the message may have been stored "+
			"(msg_id %s); sending it again may duplicate it: %v", topics[0], timeout, strings.Join(ids, ","), err)
	}
	return sendError(err, st, topics[0], timeout)
}

// rmq_producer_send: see rmq_native.h.
//
//export rmq_producer_send
func rmq_producer_send(h C.uint64_t, m *C.rmq_message, timeoutMs C.int32_t, out *C.rmq_send_result) C.int32_t {
	return call(func() error {
		if out == nil {
			return errf(C.RMQ_ERR_INVALID_ARGUMENT, "result must not be NULL")
		}
		st, msg, err := preparedSend(h, m)
		if err != nil {
			return err
		}
		st.mu.RLock()
		defer st.mu.RUnlock()
		if err := st.canSend(); err != nil {
			return err
		}
		res, err := st.sendSync(st.timeoutFor(timeoutMs), msg)
		if err != nil {
			return err
		}
		fillResult(out, res)
		return nil
	})
}

// rmq_producer_send_batch: see rmq_native.h.
//
//export rmq_producer_send_batch
func rmq_producer_send_batch(h C.uint64_t, msgs *C.rmq_message, count C.int32_t, timeoutMs C.int32_t,
	out *C.rmq_send_result, outIds **C.uint8_t, outIdsLen *C.int64_t) C.int32_t {
	return call(func() error {
		st, err := handleOf[*producerState](h, "producer")
		if err != nil {
			return err
		}
		if out == nil || outIds == nil || outIdsLen == nil {
			return errf(C.RMQ_ERR_INVALID_ARGUMENT, "output pointers must not be NULL")
		}
		*outIds, *outIdsLen = nil, 0
		if count <= 0 || msgs == nil {
			return errf(C.RMQ_ERR_INVALID_ARGUMENT, "a batch needs at least one message")
		}
		batch := make([]*primitive.Message, 0, int(count))
		total := 0
		for i, m := range unsafe.Slice(msgs, int(count)) {
			if m.delay_level != 0 || m.deliver_at_ms != 0 || m.sharding_key_len != 0 {
				return errf(C.RMQ_ERR_INVALID_ARGUMENT, "batch message %d: no delay, delivery time or sharding key in a batch", i)
			}
			msg, err := buildMessage(&m, st.maxSize)
			if err != nil {
				return errf(classify(err), "batch message %d: %v", i, strings.TrimPrefix(err.Error(), "rmq_native: "))
			}
			if i > 0 && msg.Topic != batch[0].Topic {
				return errf(C.RMQ_ERR_INVALID_ARGUMENT, "all messages of a batch must have the same topic")
			}
			total += len(msg.Body)
			batch = append(batch, msg)
		}
		if total > st.maxSize {
			return errf(C.RMQ_ERR_INVALID_ARGUMENT, "batch of %d bytes exceeds the maximum message size of %d bytes", total, st.maxSize)
		}
		st.mu.RLock()
		defer st.mu.RUnlock()
		if err := st.canSend(); err != nil {
			return err
		}
		res, err := st.sendSync(st.timeoutFor(timeoutMs), batch...)
		if err != nil {
			return err
		}
		ids := make([]string, len(batch))
		for i, m := range batch {
			ids[i] = m.GetProperty(primitive.PropertyUniqueClientMessageIdKeyIndex)
		}
		res.MsgID = ids[0]
		fillResult(out, res)
		export([]byte(strings.Join(ids, ",")), outIds, outIdsLen)
		return nil
	})
}

// rmq_producer_send_oneway: see rmq_native.h.
//
//export rmq_producer_send_oneway
func rmq_producer_send_oneway(h C.uint64_t, m *C.rmq_message) C.int32_t {
	return call(func() error {
		st, msg, err := preparedSend(h, m)
		if err != nil {
			return err
		}
		st.mu.RLock()
		defer st.mu.RUnlock()
		if err := st.canSend(); err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), st.timeout)
		defer cancel()
		if err := st.p.SendOneWay(ctx, msg); err != nil {
			return sendError(err, st, msg.Topic, st.timeout)
		}
		return nil
	})
}

// completion is the outcome of one asynchronous send.
type completion struct {
	token uint64
	msgID string
	res   *primitive.SendResult
	err   error
}

// completionQueue holds finished asynchronous sends until the caller polls
// them. It is unbounded, so a sender (or close) never waits for the caller.
type completionQueue struct {
	mu    sync.Mutex
	items []completion
	ready chan struct{} // signalled when items were added
}

func newCompletionQueue() completionQueue {
	return completionQueue{ready: make(chan struct{}, 1)}
}

func (q *completionQueue) push(c completion) {
	q.mu.Lock()
	q.items = append(q.items, c)
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// take returns up to max completions, waiting at most timeout for a first.
func (q *completionQueue) take(max int, timeout time.Duration) []completion {
	var timer *time.Timer
	for {
		q.mu.Lock()
		if n := len(q.items); n > 0 {
			if n > max {
				n = max
			}
			out := append([]completion(nil), q.items[:n]...)
			q.items = q.items[n:]
			if len(q.items) == 0 {
				q.items = nil // release the backing array
			} else {
				select { // more for another poller
				case q.ready <- struct{}{}:
				default:
				}
			}
			q.mu.Unlock()
			return out
		}
		q.mu.Unlock()
		if timeout <= 0 {
			return nil
		}
		if timer == nil {
			timer = time.NewTimer(timeout)
			defer timer.Stop()
		}
		select {
		case <-q.ready:
		case <-timer.C:
			return nil
		}
	}
}

func (q *completionQueue) empty() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items) == 0
}

// rmq_producer_send_async: see rmq_native.h.
//
//export rmq_producer_send_async
func rmq_producer_send_async(h C.uint64_t, m *C.rmq_message, timeoutMs C.int32_t, token C.uint64_t) C.int32_t {
	return call(func() error {
		st, msg, err := preparedSend(h, m)
		if err != nil {
			return err
		}
		st.mu.RLock()
		defer st.mu.RUnlock()
		if err := st.canSend(); err != nil {
			return err
		}
		st.inflight.Add(1)
		st.enqueue(asyncJob{token: uint64(token), msg: msg, timeout: st.timeoutFor(timeoutMs)})
		return nil
	})
}

// asyncJob is an asynchronous send waiting for a sender.
type asyncJob struct {
	token   uint64
	msg     *primitive.Message
	timeout time.Duration
}

// maxAsyncSenders bounds the sends of one producer running at once; the
// others wait in an unbounded queue (the caller never blocks), and each
// send's timeout starts when a sender takes it.
const maxAsyncSenders = 128

// enqueue queues an asynchronous send and starts a sender if fewer than
// maxAsyncSenders run. The SDK's own SendAsync never retries (upstream
// issue 1157): senders use synchronous sends.
func (st *producerState) enqueue(j asyncJob) {
	st.qmu.Lock()
	st.queue = append(st.queue, j)
	start := st.senders < maxAsyncSenders
	if start {
		st.senders++
	}
	st.qmu.Unlock()
	if start {
		goSafe("asynchronous sender", st.sender)
	}
}

// sender sends queued jobs until the queue is empty.
func (st *producerState) sender() {
	for {
		st.qmu.Lock()
		if len(st.queue) == 0 {
			st.senders--
			st.queue = nil // release the backing array
			st.qmu.Unlock()
			return
		}
		j := st.queue[0]
		st.queue[0] = asyncJob{}
		st.queue = st.queue[1:]
		st.qmu.Unlock()
		st.completeAsync(j)
	}
}

func (st *producerState) completeAsync(j asyncJob) {
	defer st.inflight.Done()
	c := completion{token: j.token, msgID: j.msg.GetProperty(primitive.PropertyUniqueClientMessageIdKeyIndex)}
	func() {
		defer func() {
			if r := recover(); r != nil {
				c.err = errf(C.RMQ_ERR_INTERNAL, "internal error (recovered panic): %v", r)
			}
		}()
		st.mu.RLock()
		defer st.mu.RUnlock()
		c.res, c.err = st.sendSync(j.timeout, j.msg)
	}()
	st.completions.push(c)
}

// rmq_producer_poll_completions: see rmq_native.h.
//
//export rmq_producer_poll_completions
func rmq_producer_poll_completions(h C.uint64_t, maxCompletions C.int32_t, timeoutMs C.int32_t,
	out **C.uint8_t, outLen *C.int64_t, outCount *C.int32_t) (rc C.int32_t) {
	defer guard(&rc)
	if out == nil || outLen == nil || outCount == nil {
		return fail(errf(C.RMQ_ERR_INVALID_ARGUMENT, "output pointers must not be NULL"))
	}
	*out, *outLen, *outCount = nil, 0, 0
	st, err := handleOf[*producerState](h, "producer")
	if err != nil {
		return fail(err)
	}
	if maxCompletions <= 0 || timeoutMs < 0 {
		return fail(errf(C.RMQ_ERR_INVALID_ARGUMENT, "max_completions must be > 0 and timeout_ms >= 0"))
	}
	st.mu.RLock()
	closed := st.closed
	st.mu.RUnlock()
	if closed {
		timeoutMs = 0 // nothing more will come
	}
	done := st.completions.take(int(maxCompletions), time.Duration(timeoutMs)*time.Millisecond)
	if len(done) == 0 {
		if closed {
			takeHandle(h) // closed and every outcome taken: release the handle
			return fail(errf(C.RMQ_ERR_CLOSED, "producer is closed"))
		}
		return C.RMQ_OK
	}
	var buf []byte
	for _, c := range done {
		buf = binary.LittleEndian.AppendUint64(buf, c.token)
		var code int32
		var errText string
		r := &primitive.SendResult{MessageQueue: &primitive.MessageQueue{}, MsgID: c.msgID}
		if c.err != nil {
			code = classify(c.err)
			errText = c.err.Error()
		} else {
			r = c.res
		}
		queueID, brokerName := 0, ""
		if r.MessageQueue != nil {
			queueID, brokerName = r.MessageQueue.QueueId, r.MessageQueue.BrokerName
		}
		buf = binary.LittleEndian.AppendUint32(buf, uint32(code))
		buf = binary.LittleEndian.AppendUint32(buf, uint32(queueID))
		buf = binary.LittleEndian.AppendUint64(buf, uint64(r.QueueOffset))
		buf = binary.LittleEndian.AppendUint32(buf, uint32(r.Status))
		for _, f := range []string{r.MsgID, r.OffsetMsgID, brokerName, r.TransactionID, errText} {
			buf = appendField(buf, f)
		}
	}
	export(buf, out, outLen)
	*outCount = C.int32_t(len(done))
	return C.RMQ_OK
}

// rmq_producer_close: see rmq_native.h.
//
//export rmq_producer_close
func rmq_producer_close(h C.uint64_t) C.int32_t {
	return call(func() error {
		v, _ := lookup(h)
		st, ok := v.(*producerState)
		if !ok {
			return nil // idempotent: unknown or already closed
		}
		st.mu.Lock()
		again := st.closing
		st.closing = true // from now on no send starts
		st.mu.Unlock()
		if again {
			return nil
		}
		endRequests(st) // request/reply (request.go)
		if st.tx != nil {
			st.tx.close() // transactions still waiting end as UNKNOWN
		}
		// Asynchronous sends not started yet are not sent: they complete with
		// RMQ_ERR_CLOSED. Sends already written are waited for (each bounded by
		// its timeout) and report their real outcome.
		st.qmu.Lock()
		queued := st.queue
		st.queue = nil
		st.qmu.Unlock()
		for _, j := range queued {
			st.completions.push(completion{token: j.token, msgID: j.msg.GetProperty(primitive.PropertyUniqueClientMessageIdKeyIndex),
				err: errf(C.RMQ_ERR_CLOSED, "producer closed before the send started: not sent")})
			st.inflight.Done()
		}
		st.inflight.Wait()
		st.mu.Lock()
		st.closed = true
		err := st.shutdown()
		st.mu.Unlock()
		if st.completions.empty() {
			takeHandle(h) // else the poll that takes the last outcome releases it
		}
		if err != nil {
			return errf(C.RMQ_ERR_STATE, "producer shutdown: %v", err)
		}
		return nil
	})
}
