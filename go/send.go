package main

// Synchronous sends (rmq_producer_send, _send_batch, _send_oneway): the
// library's send timeout, its retries over brokers and its refined errors.

/*
#include "rmq_native.h"
#include "waiter.h"
*/
import "C"

import (
	"bytes"
	"compress/zlib"
	"context"
	"encoding/binary"
	"errors"
	"math"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
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

// sendSync sends msg (one message, or a batch encoded by encodeBatch) and
// waits at most timeout (ids: see sendWithRetries). The caller holds st.mu
// for reading and checked canSend.
func (st *producerState) sendSync(timeout time.Duration, msg *primitive.Message, ids string) (*primitive.SendResult, error) {
	if st.closed {
		return nil, errf(C.RMQ_ERR_CLOSED, "producer is closed")
	}
	defer waitingCaller()() // procs.go
	// Waiting in C suits one message sent by a caller that waits alone
	// (procs.go; see attemptWaiting); the SDK's trace interceptor records
	// SendSync only (async.go).
	inC := aloneWaiting() && !st.traced && !msg.Batch
	var res *primitive.SendResult
	err := st.sendWithRetries(timeout, msg, ids, func(ctx context.Context) (err error) {
		if inC {
			res, err = st.attemptWaiting(ctx, msg)
		} else {
			res, err = st.p.SendSync(ctx, msg)
		}
		return err
	})
	return res, err
}

// attemptWaiting makes one attempt of a synchronous send with the SDK's
// SendAsync, written on the calling goroutine, and waits for its outcome in
// C (waiter.c) until ctx's deadline. The goroutine of a call from C is
// locked to the calling thread: waiting in the Go scheduler (SendSync),
// the answer readies it, which hands a P to this thread and parks the
// answering one; waiting in C, the answering goroutine wakes this thread
// (or the thread, spinning, sees the answer) and goes on. A thread waiting
// in C keeps its P until the runtime takes it back, so threads that send
// at the same time (or did in the last 100 ms) wait in the scheduler, and
// so do batches, which were 4-7 % slower waiting in C (benchmarks/PROFILE.md
// 6.20). An outcome that has not come a second after the deadline (the SDK
// ends every attempt at its deadline) is reported as the SDK's request
// timeout: written, not answered.
func (st *producerState) attemptWaiting(ctx context.Context, msg *primitive.Message) (*primitive.SendResult, error) {
	deadline, _ := ctx.Deadline()
	ev := new(event) // a late outcome may still set it after this returns
	type outcome struct {
		res *primitive.SendResult
		err error
	}
	var out atomic.Pointer[outcome]
	err := func() (err error) {
		defer func() {
			if r := recover(); r != nil {
				err = errf(C.RMQ_ERR_INTERNAL, "internal error (recovered panic): %v", r) // not retried
			}
		}()
		// The callback comes once: with the answer, or with the SDK's
		// request timeout at the deadline (see sendAsync in async.go).
		return st.p.SendAsync(ctx, func(_ context.Context, r *primitive.SendResult, e error) {
			out.Store(&outcome{r, e})
			ev.set()
			if errors.Is(e, rmqerrors.ErrRequestTimeout) {
				runtime.Goexit()
			}
		}, msg)
	}()
	if err != nil { // not written: no callback comes
		return nil, err
	}
	if !ev.wait(time.Until(deadline) + time.Second) {
		return nil, rmqerrors.ErrRequestTimeout
	}
	o := out.Load()
	return o.res, o.err
}

// event is a one-shot event that a thread waits for in C (waiter.c).
type event struct{ word C.int32_t }

// set sets the event and wakes its waiter.
func (e *event) set() { C.rmq_waiter_wake(&e.word) }

// wait waits until the event is set (true) or d has passed (false).
func (e *event) wait(d time.Duration) bool {
	ms := d.Milliseconds()
	if ms > math.MaxInt32 {
		ms = math.MaxInt32
	}
	return C.rmq_waiter_wait(&e.word, C.int32_t(ms)) != 0
}

// sendWithRetries runs attempt (one SDK send of msg, with no SDK retry)
// until it succeeds, fails for good, st.retries retries are used, or the
// deadline passes: no attempt starts after it. Every attempt sends the
// same message, so a message keeps its msg_id (UNIQ_KEY) across attempts
// and consumers can deduplicate. An attempt written but not answered in
// time makes the outcome unknown: RMQ_ERR_SEND_UNKNOWN, naming the msg_id
// (ids: those of a batch's messages; "" for msg's own).
func (st *producerState) sendWithRetries(timeout time.Duration, msg *primitive.Message, ids string,
	attempt func(ctx context.Context) error) error {
	deadline := time.Now().Add(timeout)
	topic := msg.Topic
	var err error
	maybeStored := false
	for try := 0; try <= st.retries && time.Now().Before(deadline); try++ {
		msg.Topic = topic // the SDK prefixes the namespace on every call
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
			code == C.RMQ_ERR_TIMEOUT || code == C.RMQ_ERR_INTERNAL { // INTERNAL: a recovered panic
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
	msg.Topic = topic
	if err == nil {
		err = context.DeadlineExceeded // the deadline passed before a first attempt
	}
	if maybeStored {
		if ids == "" {
			ids = msg.GetProperty(primitive.PropertyUniqueClientMessageIdKeyIndex)
		}
		return errf(C.RMQ_ERR_SEND_UNKNOWN, "send to topic %q: no answer within %v, the message may have been stored "+
			"(msg_id %s); sending it again may duplicate it: %v", topic, timeout, ids, err)
	}
	return sendError(err, st, topic, timeout)
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
	case C.RMQ_ERR_INTERNAL:
		return err // a recovered panic, as reported
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
		res, err := st.sendSync(st.timeoutFor(timeoutMs), msg, "")
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
		batch, ids, err := encodeBatch(unsafe.Slice(msgs, int(count)), st.maxSize)
		if err != nil {
			return err
		}
		st.mu.RLock()
		defer st.mu.RUnlock()
		if err := st.canSend(); err != nil {
			return err
		}
		res, err := st.sendSync(st.timeoutFor(timeoutMs), batch, ids)
		batchBodies.Put(&batch.Body) // sent, or never to be sent
		if err != nil {
			return err
		}
		res.MsgID, _, _ = strings.Cut(ids, ",")
		fillResult(out, res)
		export([]byte(ids), outIds, outIdsLen)
		return nil
	})
}

// batchHeaderLen is the fixed part of a message's entry in a batch body:
// total size, magic code, body CRC, flag and body length (4 bytes each),
// then after the body the properties' length (2).
const batchHeaderLen = 4*5 + 2

// encodeBatch checks the messages of a batch and encodes them as one
// message whose body is the batch, the layout the broker decodes (the Java
// client's MessageDecoder.encodeMessage, the SDK's MarshalMessageBatch):
// per message its total size, magic code 0, body CRC 0, flag 0, the body's
// length and bytes, the properties' length (16 bits) and the properties as
// name\x01value\x02 pairs: the message's unique id, tags, keys and user
// properties (an empty value is left out, as the SDK's WithProperty does).
// The SDK builds a property map, a properties string and a buffer per
// message and grows the batch's buffer from empty (its batch encoding was
// an eighth of a batch's CPU); here the messages are written straight
// into one buffer of the batch's size. The outer message carries no
// properties, as the SDK's. ids: the messages' ids, comma-separated.
func encodeBatch(msgs []C.rmq_message, maxSize int) (batch *primitive.Message, ids string, err error) {
	fields := make([]checkedMessage, len(msgs))
	idList := make([]string, len(msgs))
	size, bodies := 0, 0
	for i := range msgs {
		m := &msgs[i]
		if m.delay_level != 0 || m.deliver_at_ms != 0 || m.sharding_key_len != 0 {
			return nil, "", errf(C.RMQ_ERR_INVALID_ARGUMENT, "batch message %d: no delay, delivery time or sharding key in a batch", i)
		}
		var f checkedMessage
		if i > 0 && m.topic == msgs[0].topic && m.topic_len == msgs[0].topic_len {
			f.topic = fields[0].topic // the same memory: read and checked once
			err = f.readRest(m, maxSize, true)
		} else {
			f, err = readMessage(m, maxSize, true) // the body is copied into the batch below
		}
		if err != nil {
			return nil, "", errf(classify(err), "batch message %d: %v", i, strings.TrimPrefix(err.Error(), "rmq_native: "))
		}
		if i > 0 && f.topic != fields[0].topic {
			return nil, "", errf(C.RMQ_ERR_INVALID_ARGUMENT, "all messages of a batch must have the same topic")
		}
		idList[i] = newMessageID() // msgid.go
		props := f.batchPropertiesLen(idList[i])
		if props > math.MaxInt16 {
			return nil, "", errf(C.RMQ_ERR_INVALID_ARGUMENT, "batch message %d: properties of %d bytes exceed the broker's limit of %d", i, props, math.MaxInt16)
		}
		fields[i] = f
		bodies += len(f.body)
		size += batchHeaderLen + len(f.body) + props
	}
	if bodies > maxSize {
		return nil, "", errf(C.RMQ_ERR_INVALID_ARGUMENT, "batch of %d bytes exceeds the maximum message size of %d bytes", bodies, maxSize)
	}
	body := marshalBatch(batchBuffer(size), fields, idList)
	return &primitive.Message{Topic: fields[0].topic, Body: body, Batch: true}, strings.Join(idList, ","), nil
}

// batchBodies keeps the bodies of sent batches for the next ones: each was
// a fresh allocation of the batch's size, cleared first and garbage once
// the send returned. Nothing keeps a batch's body after SendSync returns:
// the SDK writes a request before it waits for its answer, and its trace
// keeps the body's length only.
var batchBodies sync.Pool // *[]byte

// batchBuffer returns an empty buffer with room for size bytes.
func batchBuffer(size int) []byte {
	if p, _ := batchBodies.Get().(*[]byte); p != nil && cap(*p) >= size {
		return (*p)[:0]
	}
	return make([]byte, 0, size)
}

// marshalBatch appends the batch body of checked messages with their ids
// to dst.
func marshalBatch(dst []byte, fields []checkedMessage, ids []string) []byte {
	body := dst
	for i, f := range fields {
		start := len(body)
		body = append(body, 0, 0, 0, 0)               // total size, set below
		body = binary.BigEndian.AppendUint32(body, 0) // magic code
		body = binary.BigEndian.AppendUint32(body, 0) // body CRC
		body = binary.BigEndian.AppendUint32(body, 0) // flag
		body = binary.BigEndian.AppendUint32(body, uint32(len(f.body)))
		body = append(body, f.body...)
		propsAt := len(body)
		body = append(body, 0, 0) // properties' length, set below
		body = appendProperty(body, primitive.PropertyUniqueClientMessageIdKeyIndex, ids[i])
		body = appendProperty(body, primitive.PropertyTags, f.tags)
		body = appendProperty(body, primitive.PropertyKeys, f.keys)
		for j := 0; j < len(f.props); j += 2 {
			body = appendProperty(body, f.props[j], f.props[j+1])
		}
		binary.BigEndian.PutUint16(body[propsAt:], uint16(len(body)-propsAt-2))
		binary.BigEndian.PutUint32(body[start:], uint32(len(body)-start))
	}
	return body
}

// batchPropertiesLen is the length of a batch message's properties with
// its id (what marshalBatch writes).
func (f *checkedMessage) batchPropertiesLen(id string) int {
	n := propertyLen(primitive.PropertyUniqueClientMessageIdKeyIndex, id) +
		propertyLen(primitive.PropertyTags, f.tags) + propertyLen(primitive.PropertyKeys, f.keys)
	for j := 0; j < len(f.props); j += 2 {
		n += propertyLen(f.props[j], f.props[j+1])
	}
	return n
}

// propertyLen is the length of a property's name\x01value\x02 pair in a
// batch, 0 for an empty value (not written).
func propertyLen(name, value string) int {
	if value == "" {
		return 0
	}
	return len(name) + len(value) + 2
}

// appendProperty appends a property's pair to a batch (none for an empty
// value).
func appendProperty(b []byte, name, value string) []byte {
	if value == "" {
		return b
	}
	b = append(b, name...)
	b = append(b, '\x01')
	b = append(b, value...)
	return append(b, '\x02')
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
