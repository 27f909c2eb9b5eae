package main

// Asynchronous sends: a queue per producer that one dispatcher goroutine
// empties, making each send's first attempt with the SDK's SendAsync (a
// failed one goes on in the library's retries); the outcomes wait in a
// completion queue until rmq_producer_poll_completions (producer.go) takes
// them.

/*
#include "rmq_native.h"
*/
import "C"

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	rmqerrors "github.com/apache/rocketmq-client-go/v2/errors"
	"github.com/apache/rocketmq-client-go/v2/primitive"
)

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

// newCompletionQueue makes an empty completion queue.
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
		st, msg, err := preparedSend(h, m, false) // the send outlives the call
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

// asyncJob is an asynchronous send waiting for the dispatcher.
type asyncJob struct {
	token   uint64
	msg     *primitive.Message
	timeout time.Duration
}

// enqueue queues an asynchronous send and starts the producer's dispatcher
// if it is not running. The caller never blocks; each send's timeout
// starts when the dispatcher takes it.
func (st *producerState) enqueue(j asyncJob) {
	st.qmu.Lock()
	st.queue = append(st.queue, j)
	start := !st.dispatching
	st.dispatching = true
	st.qmu.Unlock()
	if start {
		goSafe("asynchronous send dispatcher", st.dispatch)
	}
}

// dispatch starts the queued sends, in order, until the queue is empty:
// one goroutine writes them all, so they do not queue for the connection's
// lock, and none waits for its answer.
func (st *producerState) dispatch() {
	for {
		st.qmu.Lock()
		jobs := st.queue
		st.queue = nil
		if len(jobs) == 0 {
			st.dispatching = false
			st.qmu.Unlock()
			return
		}
		st.qmu.Unlock()
		st.dispatchRun(jobs)
	}
}

// dispatchRun starts a run of queued sends. The requests written in a row
// leave in as few segments as they fill (cork.go). Nothing stays held back
// while the dispatcher waits: for a slot, or in a send to another topic than
// the last (the SDK may look its route up first); the run ends uncorked,
// before the dispatcher looks at the queue again (and may end).
func (st *producerState) dispatchRun(jobs []asyncJob) {
	st.corked.cork()
	defer st.corked.uncork()
	topic := ""
	for _, j := range jobs {
		if j.msg.Topic != topic {
			if topic != "" {
				st.corked.uncork()
				st.corked.cork()
			}
			topic = j.msg.Topic
		}
		select {
		case st.onWire <- struct{}{}: // freed when a first attempt ends (at the latest at its deadline)
		default:
			st.corked.uncork()
			st.onWire <- struct{}{}
			st.corked.cork()
		}
		st.mu.RLock()
		if st.closing { // close came between taking the jobs and starting them
			<-st.onWire
			st.notSent(j)
		} else {
			st.sendAsync(j)
		}
		st.mu.RUnlock()
	}
}

// maxOnWire bounds the asynchronous first attempts in flight per producer.
// Each holds an SDK goroutine (about 8 KiB of stack) until its answer; far
// more than the broker round trip needs (at 20,000 msg/s and 5 ms, 100), so
// a burst of send_async waits in the queue instead of growing the process
// by a goroutine per message.
const maxOnWire = 512

// sendAsync makes the first attempt of an asynchronous send with the SDK's
// SendAsync: written on the caller's thread and pipelined on the broker
// connection (no goroutine per send waits for its answer, and none queue
// for the connection's lock). The SDK's SendAsync never retries (upstream
// issue 1157): a first attempt that fails goes on in sendWithRetries on a
// goroutine, with the same message (msg_id) and the same deadline. A
// traced producer makes every attempt there: the SDK's trace interceptor
// fails SendAsync ("ProducerCtx Not Exist") and records only SendSync.
// The caller holds st.mu for reading, counted the send in st.inflight and
// took a slot of st.onWire, which the end of the first attempt gives back.
// A panic of the SDK fails this send only.
func (st *producerState) sendAsync(j asyncJob) {
	topic := j.msg.Topic // the SDK prefixes the namespace
	deadline := time.Now().Add(j.timeout)
	if st.traced {
		st.retryAsync(j, topic, deadline, nil, func() { <-st.onWire })
		return
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	var ended atomic.Bool // the first attempt's end is handled once: by the callback, the error or the panic
	defer func() {
		if r := recover(); r != nil {
			cancel()
			if ended.CompareAndSwap(false, true) {
				<-st.onWire
				st.completions.push(completion{token: j.token, msgID: j.msg.GetProperty(primitive.PropertyUniqueClientMessageIdKeyIndex),
					err: errf(C.RMQ_ERR_INTERNAL, "internal error (recovered panic): %v", r)})
				st.inflight.Done()
			}
		}
	}()
	err := st.p.SendAsync(ctx, func(_ context.Context, res *primitive.SendResult, err error) {
		cancel()
		if ended.CompareAndSwap(false, true) {
			<-st.onWire
			st.firstAttemptDone(j, topic, deadline, res, err)
		}
		if errors.Is(err, rmqerrors.ErrRequestTimeout) {
			// No answer: v2.1.2 goes on to read the missing response (nil)
			// and panics. End this SDK goroutine cleanly instead; the
			// SDK's only step left, dropping the request from its
			// response table, happens if the answer comes late.
			runtime.Goexit()
		}
	}, j.msg)
	if err != nil { // not written: no callback comes
		cancel()
		if ended.CompareAndSwap(false, true) {
			<-st.onWire
			st.firstAttemptDone(j, topic, deadline, nil, err)
		}
	}
}

// firstAttemptDone completes an asynchronous send after its first attempt,
// or hands a failed one to the library's retries.
func (st *producerState) firstAttemptDone(j asyncJob, topic string, deadline time.Time,
	res *primitive.SendResult, first error) {
	if first == nil {
		st.completions.push(completion{token: j.token, res: res,
			msgID: j.msg.GetProperty(primitive.PropertyUniqueClientMessageIdKeyIndex)})
		st.inflight.Done()
		return
	}
	st.retryAsync(j, topic, deadline, first, func() {})
}

// retryAsync finishes an asynchronous send on a goroutine with
// sendWithRetries and SendSync: after a first attempt that failed with
// first, or, with first nil, making every attempt there. It calls ended
// before the completion is queued.
func (st *producerState) retryAsync(j asyncJob, topic string, deadline time.Time, first error, ended func()) {
	c := completion{token: j.token, msgID: j.msg.GetProperty(primitive.PropertyUniqueClientMessageIdKeyIndex)}
	j.msg.Topic = topic
	goSafe("asynchronous send retries", func() {
		defer st.inflight.Done()
		defer func() { st.completions.push(c) }()
		defer ended()
		defer func() {
			if r := recover(); r != nil {
				c.err = errf(C.RMQ_ERR_INTERNAL, "internal error (recovered panic): %v", r)
			}
		}()
		st.mu.RLock()
		defer st.mu.RUnlock()
		left := time.Until(deadline)
		if left < time.Millisecond {
			left = time.Millisecond // the first attempt's outcome is still classified below
		}
		replay := first != nil
		c.err = st.sendWithRetries(left, j.msg, "", func(ctx context.Context) (err error) {
			if replay { // the attempt SendAsync made
				replay = false
				return first
			}
			c.res, err = st.p.SendSync(ctx, j.msg)
			return err
		})
	})
}

// notSent completes a queued asynchronous send that close stopped before it
// started: RMQ_ERR_CLOSED, never sent.
func (st *producerState) notSent(j asyncJob) {
	st.completions.push(completion{token: j.token, msgID: j.msg.GetProperty(primitive.PropertyUniqueClientMessageIdKeyIndex),
		err: errf(C.RMQ_ERR_CLOSED, "producer closed before the send started: not sent")})
	st.inflight.Done()
}
