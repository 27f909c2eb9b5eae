package main

// Asynchronous sends: a queue per producer served by at most
// maxAsyncSenders senders; the outcomes wait in a completion queue until
// rmq_producer_poll_completions (producer.go) takes them.

/*
#include "rmq_native.h"
*/
import "C"

import (
	"sync"
	"time"

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
