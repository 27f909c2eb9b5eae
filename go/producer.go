package main

/*
#include "rmq_native.h"
*/
import "C"

import (
	"hash/fnv"
	"math"
	"strings"
	"sync"
	"time"

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
	traceOptions          // "trace", "trace_topic" (trace.go)
}

type producerState struct {
	mu          sync.RWMutex                 // read-held by sends, write-held by close
	closing     bool                         // no new sends (set first by close)
	closed      bool                         // shut down
	retries     int                          // library retries of a failed send
	traced      bool                         // message trace on: every send is the SDK's SendSync (async.go)
	p           rocketmq.Producer            // a plain producer, or
	tp          rocketmq.TransactionProducer // a transaction producer
	start       func() error
	shutdown    func() error
	inflight    sync.WaitGroup  // asynchronous sends
	qmu         sync.Mutex      // guards queue and dispatching
	queue       []asyncJob      // asynchronous sends waiting for the dispatcher
	dispatching bool            // the dispatcher runs
	onWire      chan struct{}   // a slot per first attempt in flight (maxOnWire)
	completions completionQueue // finished asynchronous sends
	corked      corker          // the dispatcher's hold on the SDK client's connections (cork.go)
	tx          *txListener     // transaction producers only
	nameServers []string
	timeout     time.Duration
	maxSize     int
	compressAt  int // bodies of at least this many bytes are compressed
	level       int
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
	traced := false
	if tr, err := cfg.traceConfig(addrs, group, cfg.AccessKey, cfg.SecretKey); err != nil { // message trace (trace.go)
		return nil, err
	} else if tr != nil {
		opts = append(opts, producer.WithTrace(tr))
		traced = true
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
		level: level, retries: retries, traced: traced, completions: newCompletionQueue(),
		onWire: make(chan struct{}, maxOnWire)}
	if listener == nil {
		p, conns, release, err := sharedProducer(cfg, opts) // pool.go: started, shared
		if err != nil {
			return nil, err
		}
		st.p, st.start, st.shutdown = p, func() error { return nil }, release
		st.corked.conns = conns
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

// rmq_producer_poll_completions: see rmq_native.h.
//
//export rmq_producer_poll_completions
func rmq_producer_poll_completions(h C.uint64_t, maxCompletions C.int32_t, timeoutMs C.int32_t,
	out **C.uint8_t, outLen *C.int64_t, outCount *C.int32_t) C.int32_t {
	return call(func() error {
		if out == nil || outLen == nil || outCount == nil {
			return errf(C.RMQ_ERR_INVALID_ARGUMENT, "output pointers must not be NULL")
		}
		*out, *outLen, *outCount = nil, 0, 0
		st, err := handleOf[*producerState](h, "producer")
		if err != nil {
			return err
		}
		if maxCompletions <= 0 || timeoutMs < 0 {
			return errf(C.RMQ_ERR_INVALID_ARGUMENT, "max_completions must be > 0 and timeout_ms >= 0")
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
				return errf(C.RMQ_ERR_CLOSED, "producer is closed")
			}
			return nil
		}
		buf := make([]byte, 0, 128*len(done)) // a success takes about 120 bytes
		for _, c := range done {
			if c.err != nil {
				buf = encodeCompletion(buf, c.token, classify(c.err), c.err.Error(), &primitive.SendResult{MsgID: c.msgID})
			} else {
				buf = encodeCompletion(buf, c.token, 0, "", c.res)
			}
		}
		export(buf, out, outLen)
		*outCount = C.int32_t(len(done))
		return nil
	})
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
			st.notSent(j)
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
