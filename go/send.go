package main

// Synchronous sends (rmq_producer_send, _send_batch, _send_oneway): the
// library's send timeout, its retries over brokers and its refined errors.

/*
#include "rmq_native.h"
*/
import "C"

import (
	"bytes"
	"compress/zlib"
	"context"
	"errors"
	"strings"
	"sync"
	"time"
	"unsafe"

	rmqerrors "github.com/apache/rocketmq-client-go/v2/errors"
	"github.com/apache/rocketmq-client-go/v2/primitive"
)

// zlibWriters keeps used zlib writers, one pool per level: a new writer
// allocates and clears close to 1 MB of compressor state, more than the
// work of compressing a 64 KiB body.
var zlibWriters [10]sync.Pool

// compress zlib-compresses a body for the wire when that makes it smaller.
// The library compresses instead of the SDK, which (v2.1.2) keeps a
// compressed body even when it grew, pushing incompressible bodies near the
// size limit over it.
func (st *producerState) compress(msg *primitive.Message) {
	if st.compressAt <= 0 || len(msg.Body) < st.compressAt {
		return
	}
	var buf bytes.Buffer
	buf.Grow(len(msg.Body) / 4)
	pool := &zlibWriters[st.level]
	w, _ := pool.Get().(*zlib.Writer)
	if w == nil {
		var err error
		if w, err = zlib.NewWriterLevel(&buf, st.level); err != nil {
			return
		}
	} else {
		w.Reset(&buf)
	}
	defer pool.Put(w)
	if _, err := w.Write(msg.Body); err != nil || w.Close() != nil {
		return
	}
	if buf.Len() < len(msg.Body) {
		msg.CompressedBody = buf.Bytes()
		msg.Compress = true
	}
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
// compresses the message it is to send (borrow: see buildMessage).
func preparedSend(h C.uint64_t, m *C.rmq_message, borrow bool) (*producerState, *primitive.Message, error) {
	st, err := handleOf[*producerState](h, "producer")
	if err != nil {
		return nil, nil, err
	}
	msg, err := st.prepare(m, borrow)
	return st, msg, err
}

// prepare validates a message for this producer and compresses it
// (borrow: see buildMessage).
func (st *producerState) prepare(m *C.rmq_message, borrow bool) (*primitive.Message, error) {
	msg, err := buildMessage(m, st.maxSize, borrow)
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
	defer waitingCaller()() // procs.go
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

// fillResult writes a send result into the caller's rmq_send_result.
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

// rmq_producer_send: see rmq_native.h.
//
//export rmq_producer_send
func rmq_producer_send(h C.uint64_t, m *C.rmq_message, timeoutMs C.int32_t, out *C.rmq_send_result) C.int32_t {
	return call(func() error {
		if out == nil {
			return errf(C.RMQ_ERR_INVALID_ARGUMENT, "result must not be NULL")
		}
		st, msg, err := preparedSend(h, m, true) // sent before the call returns
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
			msg, err := buildMessage(&m, st.maxSize, true) // sent before the call returns
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
		st, msg, err := preparedSend(h, m, true) // written before the call returns
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
