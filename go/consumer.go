package main

/*
#include <stdlib.h>
#include "rmq_native.h"
*/
import "C"

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	rocketmq "github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
)

type subscription struct {
	Topic      string `json:"topic"`
	Type       string `json:"type"`
	Expression string `json:"expression"`
}

// consumerConfig is the JSON configuration of rmq_consumer_new.
type consumerConfig struct {
	NameServer        string         `json:"name_server"`
	Group             string         `json:"group"`
	Subscriptions     []subscription `json:"subscriptions"`
	InstanceName      string         `json:"instance_name"`
	Model             string         `json:"model"`
	FromWhere         string         `json:"from_where"`
	Timestamp         string         `json:"timestamp"`
	MaxReconsumeTimes *int32         `json:"max_reconsume_times"`
	MaxInflight       int            `json:"max_inflight"`
	PullBatchSize     int32          `json:"pull_batch_size"`
	MaxPrefetchMiB    int            `json:"max_prefetch_mib"`
	Namespace         string         `json:"namespace"`
	AccessKey         string         `json:"access_key"`
	SecretKey         string         `json:"secret_key"`
	Orderly           bool           `json:"orderly"`
	traceOptions                     // "trace", "trace_topic" (trace.go)
}

// settlement is the caller's verdict on one delivery.
type settlement struct {
	kind  int32
	delay int
}

// delivery is one message waiting for the caller, or handed to it and
// waiting for its settlement.
type delivery struct {
	id        uint64
	msg       *primitive.MessageExt
	fullTopic string    // the topic with the namespace (send-backs)
	h         *handover // the SDK callback the message came with
}

// handover is one SDK callback's messages (one, or up to batchMax in
// concurrent mode): the callback returns once every one is settled.
type handover struct {
	left atomic.Int32  // messages not settled yet
	all  chan struct{} // buffered: signalled when left reaches 0
}

// prefetchPerQueue is the most messages the SDK keeps pulled and not yet
// committed per queue (its default is 1,024). During a backlog drain the
// queues stay full, so this sets the drain's memory: ~2 KB of Go heap per
// message, twice that before a GC. Over the threshold the SDK pauses the
// queue's pulls for 50 ms, so the queues together must hold more than 50 ms
// of consumption: 4 queues x 768 is 75-150 ms at 20-40k msg/s (measured on
// 30k x 1 KiB: peak RSS -2 to -6 MiB, drain rate unchanged; 512 lost 20-30 %
// of the rate).
const prefetchPerQueue = 768

// defaultPrefetchMiB is the most MiB of message bodies the SDK keeps pulled
// and not yet committed per queue, unless the caller sets
// "max_prefetch_mib". The SDK's default is 512 MiB per queue, so only the
// message count above bounded a slow consumer's prefetch: a backlog of
// 300 x 1 MiB on 8 queues took a consumer holding one message to 413 MiB
// of RSS, and a backlog of large messages could take gigabytes. The SDK
// stops a queue's pulls while its bodies exceed this many whole MiB, so a
// consumer holds at most about queues x (this + 1) MiB of bodies, plus one
// pull's answer per queue.
const defaultPrefetchMiB = 8

// defaultInflight is the window (max_inflight) unless the caller sets one:
// messages waiting for rmq_consumer_poll or handed to the caller and not
// settled. Besides bounding what the caller may hold unsettled, it is the
// hand-over's buffer: while the caller works through one poll's batch, the
// callbacks woken by its last acks refill the rest of the window. With 128
// (the default before), a backlog drain found it empty often enough that
// the polling thread parked and woke instead of taking its next batch, and
// the SDK's queues filled to prefetchPerQueue behind it (the Go heap's live
// peak 13-14 MB; 3-5 MB with 1024). Drain of 100,000 x 1 KiB on 8 queues,
// 8 rounds: 123k -> 144k msg/s (the Go driver 174k), 9.5 -> 8.8 us of CPU
// per message, peak RSS 55 -> 38 MiB; p99 at 1,000 msg/s unchanged
// (benchmarks/PROFILE.md 6.18). NATS JetStream's MaxAckPending and Pulsar's
// receiver queue default to about as many.
const defaultInflight = 1024

// maxCallbacks bounds the SDK callbacks in flight per topic in concurrent
// mode. In a backlog each carries batchMax messages, so 32 fill the default
// window; at low rates each carries a message or two and fewer messages are
// handed out, until a backlog builds and pulls return full batches again.
// More only cost memory: 30 consumers started and closed in turn on a
// 2,000-message backlog grew the process by 21-25 MiB with 256 callbacks (a
// quarter of the default window) against 20-21 MiB with 32, the number the
// window of 128 had before; the drain was no faster with 256
// (benchmarks/PROFILE.md 6.18).
const maxCallbacks = 32

// batchMax is the most messages one SDK callback hands over in concurrent
// mode (the SDK's pull batch). Orderly mode hands over one at a time, so a
// message nacked is redelivered before the next of its queue is handed out.
const batchMax = 32

type consumerState struct {
	c               rocketmq.PushConsumer
	orderly         bool
	broadcasting    bool
	namespace       string
	group           string // with the namespace, as the broker knows it
	instance        string
	topics          []string // subscribed, without the namespace
	creds           primitive.Credentials
	maxReconsumeSet int32                    // max_reconsume_times, -1 when not given
	fault           atomic.Pointer[rmqError] // a persistent pull problem (see watch)
	ready           chan *delivery           // bounded: messages waiting for rmq_consumer_poll
	window          *window                  // messages handed out and not settled (max_inflight)
	done            chan struct{}            // closed when the consumer is closed
	closing         atomic.Bool
	closeOnce       sync.Once
	startMu         sync.Mutex // orders refreshRoutes and close
	nextID          atomic.Uint64
	lastSettle      atomic.Int64 // unix nanos of the last settlement
	finishing       atomic.Int32 // callbacks whose messages are all settled, not yet returned (commit.go)

	touchedMu sync.Mutex
	touched   map[primitive.MessageQueue]string // queues delivered from -> broker address (commit.go)

	mu      sync.Mutex
	pending map[uint64]*delivery // handed to the caller, not yet settled
}

// settle applies the caller's verdict to a delivery it was handed. An ack
// settles the message; a nack is worked out on a goroutine of its own (see
// nacked), so that the caller never waits.
// The caller returns the delivery's room in the window (window.give), once
// for all the deliveries it settles at a time.
func (st *consumerState) settle(d *delivery, s settlement) {
	if s.kind == C.RMQ_ACK {
		d.h.settled(&st.finishing)
		return
	}
	goSafe("nack", func() { st.nacked(d, s) })
}

// settled counts one message of the handover as settled; the last one
// counts the callback in finishing (the consumer's count of callbacks
// whose messages are all settled and that are still to return).
func (h *handover) settled(finishing *atomic.Int32) {
	if h.left.Add(-1) == 0 {
		finishing.Add(1)
		h.all <- struct{}{}
	}
}

// consume is the SDK callback: it hands each message to the caller through
// the bounded ready channel (each one a delivery of its own, settled on its
// own) and blocks until the caller settled every one (see settle), or the
// consumer closes (then the messages are redelivered: their offsets are
// never committed). It returns ConsumeSuccess only when every message is
// settled, so the SDK commits no offset past an unsettled message and its
// own unchecked send-back never runs.
func (st *consumerState) consume(ctx context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
	h := &handover{all: make(chan struct{}, 1)}
	h.left.Store(int32(len(msgs)))
	if len(msgs) > 0 {
		st.touch(msgs[0]) // one queue per callback
	}
	for i := 0; i < len(msgs); {
		n := st.handOut(msgs[i:], h)
		if n == 0 {
			<-st.done
			return st.handBack(msgs), nil
		}
		i += n
	}
	select {
	case <-h.all:
		st.finishing.Add(-1) // the SDK moves the queue's offset right after this return
		return consumer.ConsumeSuccess, nil
	case <-st.done:
		return st.handBack(msgs), nil
	}
}

// delayLevelMillis is the broker's default delay for a level (1s 5s 10s
// 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h).
func delayLevelMillis(level int) int64 {
	secs := []int64{1, 5, 10, 30, 60, 120, 180, 240, 300, 360, 420, 480, 540, 600, 1200, 1800, 3600, 7200}
	if level < 1 {
		level = 1
	}
	if level > len(secs) {
		level = len(secs)
	}
	return secs[level-1] * 1000
}

// rmq_consumer_new: see rmq_native.h.
//
//export rmq_consumer_new
func rmq_consumer_new(config *C.char, configLen C.int64_t, outHandle *C.uint64_t) C.int32_t {
	return call(func() error {
		if outHandle == nil {
			return errf(C.RMQ_ERR_INVALID_ARGUMENT, "out_handle must not be NULL")
		}
		var cfg consumerConfig
		if err := decodeConfig(config, configLen, &cfg); err != nil {
			return err
		}
		st, err := newConsumer(&cfg)
		if err != nil {
			return err
		}
		*outHandle = C.uint64_t(newHandle(st))
		return nil
	})
}

// newConsumer creates and starts a consumer (rmq_consumer_new without the
// C types, so that Go tests can use it).
func newConsumer(cfgp *consumerConfig) (*consumerState, error) {
	cfg := *cfgp
	addrs, err := nameServers(cfg.NameServer)
	if err != nil {
		return nil, err
	}
	if cfg.Group == "" {
		return nil, errf(C.RMQ_ERR_INVALID_ARGUMENT, "group is required")
	}
	if err := validTopic(cfg.Group); err != nil {
		return nil, errf(C.RMQ_ERR_INVALID_ARGUMENT, "invalid group name %q: 1 to 127 characters from letters, digits, '%%', '|', '_' and '-'", cfg.Group)
	}
	if len(cfg.Subscriptions) == 0 {
		return nil, errf(C.RMQ_ERR_INVALID_ARGUMENT, "at least one subscription is required")
	}
	if !anyReachable(addrs, 2*time.Second) {
		return nil, errf(C.RMQ_ERR_UNREACHABLE, "name server %s unreachable", strings.Join(addrs, ";"))
	}
	inflight := cfg.MaxInflight
	if inflight <= 0 {
		inflight = defaultInflight
	}
	prefetchMiB := cfg.MaxPrefetchMiB
	if prefetchMiB == 0 {
		prefetchMiB = defaultPrefetchMiB
	} else if prefetchMiB < 1 || prefetchMiB > 1024 {
		return nil, errf(C.RMQ_ERR_INVALID_ARGUMENT, "max_prefetch_mib must be 1 to 1024, not %d", prefetchMiB)
	}
	instance, err := uniqueInstance(cfg.InstanceName)
	if err != nil {
		return nil, err
	}
	// Callbacks in flight per topic: each holds up to batchMax messages the
	// SDK has taken off its queues, so max_inflight of them would keep up to
	// batchMax times the window in memory. A quarter of the window still
	// fills it when pulls return a message or two (measured: drain and p99
	// unchanged, peak RSS of a consumer on a 2,000-message backlog -7 to -10
	// MiB; benchmarks/PROFILE.md 6.1), up to maxCallbacks.
	batchSize, callbacks := batchMax, min(max(inflight/4, 8), maxCallbacks)
	if cfg.Orderly {
		batchSize, callbacks = 1, inflight
	}
	opts := []consumer.Option{
		consumer.WithNameServer(addrs),
		consumer.WithGroupName(cfg.Group),
		consumer.WithInstance(instance),
		consumer.WithConsumeMessageBatchMaxSize(batchSize),
		consumer.WithConsumeGoroutineNums(callbacks),
		consumer.WithConsumerOrder(cfg.Orderly),
		consumer.WithPullThresholdForQueue(prefetchPerQueue),
		consumer.WithPullThresholdSizeForQueue(prefetchMiB),
	}
	switch cfg.Model {
	case "", "clustering":
		opts = append(opts, consumer.WithConsumerModel(consumer.Clustering))
	case "broadcasting":
		opts = append(opts, consumer.WithConsumerModel(consumer.BroadCasting))
	default:
		return nil, errf(C.RMQ_ERR_INVALID_ARGUMENT, "model must be \"clustering\" or \"broadcasting\", not %q", cfg.Model)
	}
	switch cfg.FromWhere {
	case "", "last":
		opts = append(opts, consumer.WithConsumeFromWhere(consumer.ConsumeFromLastOffset))
	case "first":
		opts = append(opts, consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
	case "timestamp":
		if _, err := time.Parse("20060102150405", cfg.Timestamp); err != nil {
			return nil, errf(C.RMQ_ERR_INVALID_ARGUMENT, "timestamp must be yyyyMMddHHmmss, not %q", cfg.Timestamp)
		}
		opts = append(opts, consumer.WithConsumeFromWhere(consumer.ConsumeFromTimestamp),
			consumer.WithConsumeTimestamp(cfg.Timestamp))
	default:
		return nil, errf(C.RMQ_ERR_INVALID_ARGUMENT, "from_where must be \"last\", \"first\" or \"timestamp\", not %q", cfg.FromWhere)
	}
	if cfg.MaxReconsumeTimes != nil {
		opts = append(opts, consumer.WithMaxReconsumeTimes(*cfg.MaxReconsumeTimes))
	}
	var creds primitive.Credentials
	if cfg.PullBatchSize > 0 {
		opts = append(opts, consumer.WithPullBatchSize(cfg.PullBatchSize))
	}
	if cfg.Namespace != "" {
		opts = append(opts, consumer.WithNamespace(cfg.Namespace))
	}
	if cfg.AccessKey != "" || cfg.SecretKey != "" {
		cr, err := credentials(cfg.AccessKey, cfg.SecretKey)
		if err != nil {
			return nil, err
		}
		opts = append(opts, consumer.WithCredentials(cr))
		creds = cr
	}
	if tr, err := cfg.traceConfig(addrs, cfg.Group, cfg.AccessKey, cfg.SecretKey); err != nil { // message trace (trace.go)
		return nil, err
	} else if tr != nil {
		opts = append(opts, consumer.WithTrace(tr))
	}
	st := &consumerState{
		orderly:         cfg.Orderly,
		broadcasting:    cfg.Model == "broadcasting",
		namespace:       cfg.Namespace,
		group:           cfg.Group,
		maxReconsumeSet: -1,
		ready:           make(chan *delivery, inflight),
		window:          &window{free: inflight},
		done:            make(chan struct{}),
		pending:         map[uint64]*delivery{},
		touched:         map[primitive.MessageQueue]string{},
		creds:           creds,
		instance:        instance,
	}
	if cfg.Namespace != "" && !strings.HasPrefix(cfg.Group, cfg.Namespace+"%") {
		st.group = cfg.Namespace + "%" + cfg.Group // as the SDK names it
	}
	if cfg.MaxReconsumeTimes != nil {
		st.maxReconsumeSet = *cfg.MaxReconsumeTimes
	}
	if st.broadcasting {
		if err := prepareOffsetFiles(st.group, instance); err != nil {
			return nil, err
		}
	}
	type sub struct {
		topic string
		sel   consumer.MessageSelector
	}
	var subs []sub
	seen := map[string]bool{}
	for _, s := range cfg.Subscriptions {
		if err := validTopic(s.Topic); err != nil {
			return nil, err
		}
		if seen[s.Topic] {
			return nil, errf(C.RMQ_ERR_INVALID_ARGUMENT, "topic %q is subscribed twice", s.Topic)
		}
		seen[s.Topic] = true
		sel := consumer.MessageSelector{Type: consumer.TAG, Expression: s.Expression}
		switch strings.ToLower(s.Type) {
		case "", "tag":
			if sel.Expression == "" {
				sel.Expression = "*"
			}
		case "sql92":
			sel.Type = consumer.SQL92
			if strings.TrimSpace(sel.Expression) == "" {
				return nil, errf(C.RMQ_ERR_INVALID_ARGUMENT, "an sql92 expression must not be empty")
			}
		default:
			return nil, errf(C.RMQ_ERR_INVALID_ARGUMENT, "selector type must be \"tag\" or \"sql92\", not %q", s.Type)
		}
		if err := validText("expression", sel.Expression); err != nil {
			return nil, err
		}
		subs = append(subs, sub{s.Topic, sel})
	}
	fullTopic := func(t string) string {
		if cfg.Namespace == "" {
			return t
		}
		return cfg.Namespace + "%" + t
	}
	if err := checkSubscriptions(addrs, st.group, creds, cfg.Subscriptions, fullTopic); err != nil {
		return nil, err
	}
	c, err := consumer.NewPushConsumer(opts...)
	if err != nil {
		return nil, errf(C.RMQ_ERR_STATE, "cannot create consumer: %v", err)
	}
	st.c = c
	for _, s := range subs {
		if err := c.Subscribe(s.topic, s.sel, st.consume); err != nil {
			_ = c.Shutdown()
			return nil, errf(C.RMQ_ERR_INVALID_ARGUMENT, "cannot subscribe to %q: %v", s.topic, err)
		}
	}
	if err := c.Start(); err != nil {
		close(st.done)
		_ = c.Shutdown()
		closeNameServerConn(c) // reap.go
		return nil, errf(classify(err), "cannot start consumer: %v", err)
	}
	goSafe("route refresh", st.refreshRoutes)
	topics := make([]string, len(subs))
	for i, s := range subs {
		topics[i] = s.topic
	}
	st.topics = topics
	goSafe("route watch", func() { st.watch(addrs, topics) })
	return st, nil
}

// refreshRoutes repeats the SDK's start-up route update shortly after the
// start. A new group's retry topic (%RETRY%group) is created by the broker
// when the first heartbeat arrives, after the SDK looked up its routes;
// without this the SDK would only learn of it 30 s later, delaying the
// redelivery of nacked messages. Start is idempotent apart from that update.
func (st *consumerState) refreshRoutes() {
	for _, d := range []time.Duration{time.Second, 2 * time.Second} {
		select {
		case <-st.done:
			return
		case <-time.After(d):
		}
		st.startMu.Lock()
		if !st.closing.Load() {
			_ = st.c.Start()
		}
		st.startMu.Unlock()
	}
}

// rmq_consumer_poll: see rmq_native.h.
//
//export rmq_consumer_poll
func rmq_consumer_poll(h C.uint64_t, maxMessages C.int32_t, timeoutMs C.int32_t, out **C.uint8_t, outLen *C.int64_t, outCount *C.int32_t) C.int32_t {
	return call(func() error {
		if out == nil || outLen == nil || outCount == nil {
			return errf(C.RMQ_ERR_INVALID_ARGUMENT, "output pointers must not be NULL")
		}
		*out, *outLen, *outCount = nil, 0, 0
		st, err := handleOf[*consumerState](h, "consumer")
		if err != nil {
			return err
		}
		if maxMessages <= 0 {
			return errf(C.RMQ_ERR_INVALID_ARGUMENT, "max_messages must be > 0")
		}
		if timeoutMs < 0 {
			return errf(C.RMQ_ERR_INVALID_ARGUMENT, "timeout_ms must be >= 0")
		}
		if f := st.fault.Load(); f != nil && len(st.ready) == 0 {
			return f
		}
		batch := takeBatch(st.ready, int(maxMessages), time.Duration(timeoutMs)*time.Millisecond, st.done)
		if len(batch) == 0 {
			if st.closing.Load() {
				return errf(C.RMQ_ERR_CLOSED, "consumer is closed")
			}
			return nil
		}
		st.mu.Lock()
		for _, d := range batch {
			st.pending[d.id] = d
		}
		st.mu.Unlock()
		exportDeliveries(batch, out, outLen)
		*outCount = C.int32_t(len(batch))
		return nil
	})
}

// exportDeliveries encodes the deliveries' records (wire.go) straight into
// one buffer of the C heap, sized first (the caller frees it with rmq_free).
func exportDeliveries(batch []*delivery, out **C.uint8_t, outLen *C.int64_t) {
	fields := make([][7]string, len(batch))
	total := 0
	for i, d := range batch {
		fields[i] = messageFields(d.msg)
		total += messageRecordSize(d.msg, &fields[i])
	}
	p := C.malloc(C.size_t(total))
	buf := unsafe.Slice((*byte)(p), total)[:0]
	for i, d := range batch {
		buf = appendMessageRecord(buf, d.id, d.msg, fields[i])
	}
	if len(buf) != total || unsafe.SliceData(buf) != (*byte)(p) {
		C.free(p)
		panic("rmq_native: message records do not fill the buffer sized for them")
	}
	*out = (*C.uint8_t)(p)
	*outLen = C.int64_t(total)
}

// rmq_consumer_ack: see rmq_native.h.
//
//export rmq_consumer_ack
func rmq_consumer_ack(h C.uint64_t, ids *C.uint64_t, count C.int32_t, kind C.int32_t, delayLevel C.int32_t, outSettled *C.int32_t) C.int32_t {
	return call(func() error {
		st, err := handleOf[*consumerState](h, "consumer")
		if err != nil {
			return err
		}
		if count < 0 || (count > 0 && ids == nil) {
			return errf(C.RMQ_ERR_INVALID_ARGUMENT, "delivery ids must be a non-NULL array with count >= 0")
		}
		if kind != C.RMQ_ACK && kind != C.RMQ_NACK {
			return errf(C.RMQ_ERR_INVALID_ARGUMENT, "kind must be RMQ_ACK or RMQ_NACK, not %d", int32(kind))
		}
		if delayLevel < 0 || delayLevel > 18 {
			return errf(C.RMQ_ERR_INVALID_ARGUMENT, "delay_level must be 0..18, not %d", int32(delayLevel))
		}
		settled := 0
		s := settlement{kind: int32(kind), delay: int(delayLevel)}
		st.mu.Lock()
		for _, id := range unsafe.Slice(ids, int(count)) {
			if d, ok := st.pending[uint64(id)]; ok {
				delete(st.pending, uint64(id))
				st.settle(d, s)
				settled++
			}
		}
		st.mu.Unlock()
		if settled > 0 {
			st.window.give(settled)
			st.lastSettle.Store(time.Now().UnixNano())
		}
		if outSettled != nil {
			*outSettled = C.int32_t(settled)
		}
		return nil
	})
}

// close stops the consumer. Settled messages are committed; unsettled ones
// are never committed, so the broker redelivers them.
//
// Order: wait until the callbacks whose messages were settled have returned
// (the SDK moves their offsets) and pulls in flight have landed, so that the
// SDK's Shutdown, which closes each queue's message channel, does not race a
// pull goroutine still sending into it (a send on a closed channel there
// would panic without recover); commit the offsets with the brokers'
// answers (commit.go); then Shutdown (drops the queues, sends the offsets
// again one-way); only then release the blocked callbacks, whose results
// the SDK ignores for dropped queues.
func (st *consumerState) close() {
	st.closeOnce.Do(func() {
		st.startMu.Lock()
		st.closing.Store(true)
		st.startMu.Unlock()
		// No Unsubscribe here: a rebalance after it truncates the queues of
		// the topic and drops the offsets committed after that, so acknowledged
		// messages came back after a restart (tests/test_admin_ops.py, lag).
		// Suspend would race on the SDK's unsynchronized pause flag.
		st.awaitSettled(time.Now())
		if !st.broadcasting {
			st.commitOffsets()
		}
		_ = st.c.Shutdown() // drops the queues and persists committed offsets
		close(st.done)      // releases every blocked SDK callback
		if st.broadcasting {
			backupOffsets(st.group, st.instance)
		}
		reapConsumer(st) // reap.go: what the SDK leaves behind
	})
}

// rmq_consumer_close: see rmq_native.h.
//
//export rmq_consumer_close
func rmq_consumer_close(h C.uint64_t) C.int32_t {
	return call(func() error {
		v := takeHandle(h)
		if st, ok := v.(*consumerState); ok {
			st.close()
		}
		return nil
	})
}
