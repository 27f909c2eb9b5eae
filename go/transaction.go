package main

/*
#include "rmq_native.h"
*/
import "C"

import (
	"context"
	"sync"
	"time"
	"unsafe"

	"github.com/apache/rocketmq-client-go/v2/primitive"
)

// checkReplyTimeout bounds how long a broker check waits for the caller.
const checkReplyTimeout = 30 * time.Second

// txRun is one transaction between rmq_tx_send and rmq_tx_end.
type txRun struct {
	started chan error                           // half message stored (nil) or failed
	verdict chan primitive.LocalTransactionState // from rmq_tx_end
	result  chan *primitive.TransactionSendResult
	err     error
}

// txCheck is a broker's question about a transaction, waiting for the
// caller's answer (rmq_tx_check_reply).
type txCheck struct {
	id    uint64
	msg   *primitive.MessageExt
	reply chan primitive.LocalTransactionState
}

// txListener is a transaction producer's listener: it turns the SDK's
// callbacks into requests the caller pulls (rmq_tx_send/rmq_tx_end,
// rmq_tx_poll_checks).
type txListener struct {
	mu         sync.Mutex
	next       uint64
	byMsg      map[*primitive.Message]*txRun
	runs       map[uint64]*txRun
	checks     chan *txCheck
	unanswered map[uint64]*txCheck // polled, not yet answered
	done       chan struct{}
	once       sync.Once
}

// newTxListener makes the listener of a new transaction producer.
func newTxListener() *txListener {
	return &txListener{
		byMsg:      map[*primitive.Message]*txRun{},
		runs:       map[uint64]*txRun{},
		checks:     make(chan *txCheck, 1024),
		unanswered: map[uint64]*txCheck{},
		done:       make(chan struct{}),
	}
}

// close ends the waits: transactions and checks still open end as UNKNOWN.
func (t *txListener) close() { t.once.Do(func() { close(t.done) }) }

// ExecuteLocalTransaction runs after the half message is stored: it tells
// rmq_tx_send and waits for the caller's verdict from rmq_tx_end.
func (t *txListener) ExecuteLocalTransaction(msg *primitive.Message) primitive.LocalTransactionState {
	t.mu.Lock()
	run := t.byMsg[msg]
	delete(t.byMsg, msg)
	t.mu.Unlock()
	if run == nil {
		return primitive.UnknowState
	}
	run.started <- nil
	select {
	case s := <-run.verdict:
		return s
	case <-t.done:
		return primitive.UnknowState
	}
}

// CheckLocalTransaction hands a broker check to the caller and waits for
// its answer (UNKNOWN when none comes in time: the broker asks again).
func (t *txListener) CheckLocalTransaction(msg *primitive.MessageExt) primitive.LocalTransactionState {
	t.mu.Lock()
	t.next++
	c := &txCheck{id: t.next, msg: msg, reply: make(chan primitive.LocalTransactionState, 1)}
	t.mu.Unlock()
	select {
	case t.checks <- c:
	default:
		return primitive.UnknowState
	}
	timer := time.NewTimer(checkReplyTimeout)
	defer timer.Stop()
	select {
	case s := <-c.reply:
		return s
	case <-timer.C:
	case <-t.done:
	}
	t.mu.Lock()
	delete(t.unanswered, c.id)
	t.mu.Unlock()
	return primitive.UnknowState
}

// txStateFromABI converts an RMQ_TX_* state to the SDK's.
func txStateFromABI(state C.int32_t) (primitive.LocalTransactionState, error) {
	switch state {
	case C.RMQ_TX_COMMIT:
		return primitive.CommitMessageState, nil
	case C.RMQ_TX_ROLLBACK:
		return primitive.RollbackMessageState, nil
	case C.RMQ_TX_UNKNOWN:
		return primitive.UnknowState, nil
	}
	return 0, errf(C.RMQ_ERR_INVALID_ARGUMENT, "transaction state must be RMQ_TX_COMMIT, RMQ_TX_ROLLBACK or RMQ_TX_UNKNOWN, not %d", int32(state))
}

// rmq_tx_producer_new: see rmq_native.h.
//
//export rmq_tx_producer_new
func rmq_tx_producer_new(config *C.char, configLen C.int64_t, outHandle *C.uint64_t) C.int32_t {
	return call(func() error {
		if outHandle == nil {
			return errf(C.RMQ_ERR_INVALID_ARGUMENT, "out_handle must not be NULL")
		}
		tx := newTxListener()
		st, err := newProducer(config, configLen, tx)
		if err != nil {
			return err
		}
		st.tx = tx
		*outHandle = C.uint64_t(newHandle(st))
		return nil
	})
}

// txProducerFor returns the open transaction producer of a handle.
func txProducerFor(h C.uint64_t) (*producerState, error) {
	st, err := handleOf[*producerState](h, "producer")
	if err != nil {
		return nil, err
	}
	if st.tx == nil {
		return nil, errf(C.RMQ_ERR_INVALID_ARGUMENT, "producer %d is not a transaction producer", uint64(h))
	}
	return st, nil
}

// rmq_tx_send: see rmq_native.h.
//
//export rmq_tx_send
func rmq_tx_send(h C.uint64_t, m *C.rmq_message, timeoutMs C.int32_t, out *C.rmq_send_result, outTx *C.uint64_t) C.int32_t {
	return call(func() error {
		st, err := txProducerFor(h)
		if err != nil {
			return err
		}
		if out == nil || outTx == nil {
			return errf(C.RMQ_ERR_INVALID_ARGUMENT, "output pointers must not be NULL")
		}
		msg, err := st.prepare(m, false) // sent by a goroutine
		if err != nil {
			return err
		}
		if m.delay_level != 0 || m.deliver_at_ms != 0 {
			return errf(C.RMQ_ERR_INVALID_ARGUMENT, "transactional messages cannot be delayed")
		}
		timeout := st.timeoutFor(timeoutMs)
		st.mu.RLock()
		if st.closing {
			st.mu.RUnlock()
			return errf(C.RMQ_ERR_CLOSED, "producer is closed")
		}
		run := &txRun{started: make(chan error, 1), verdict: make(chan primitive.LocalTransactionState, 1),
			result: make(chan *primitive.TransactionSendResult, 1)}
		t := st.tx
		t.mu.Lock()
		t.next++
		token := t.next
		t.byMsg[msg] = run
		t.runs[token] = run
		t.mu.Unlock()
		st.inflight.Add(1)
		st.mu.RUnlock()
		go func() {
			var res *primitive.TransactionSendResult
			defer st.inflight.Done()
			defer func() {
				if r := recover(); r != nil { // report, and never leave rmq_tx_send/rmq_tx_end waiting
					reportPanic("transaction send", r)
					run.err = errf(C.RMQ_ERR_INTERNAL, "internal error (recovered panic) in the transaction send: %v", r)
					res = nil
				}
				if run.err != nil {
					select {
					case run.started <- run.err: // rmq_tx_send still waits
					default:
					}
				}
				run.result <- res
			}()
			run.err = st.sendWithRetries(timeout, msg, "", func(ctx context.Context) (err error) {
				res, err = st.tp.SendMessageInTransaction(ctx, msg)
				return err
			})
			if run.err == nil && res.State != primitive.CommitMessageState && res.SendResult != nil && res.SendResult.Status != primitive.SendOK {
				// the half message was not stored well: the SDK rolled back
				// without asking the caller
				run.err = errf(C.RMQ_ERR_BROKER, "half message of the transaction not stored (send status %d); rolled back", res.SendResult.Status)
			}
		}()
		if err := <-run.started; err != nil {
			t.mu.Lock()
			delete(t.runs, token)
			delete(t.byMsg, msg)
			t.mu.Unlock()
			return err
		}
		copyCString(unsafe.Slice(&out.msg_id[0], len(out.msg_id)), msg.GetProperty(primitive.PropertyUniqueClientMessageIdKeyIndex))
		copyCString(unsafe.Slice(&out.transaction_id[0], len(out.transaction_id)), msg.TransactionId)
		*outTx = C.uint64_t(token)
		return nil
	})
}

// rmq_tx_end: see rmq_native.h.
//
//export rmq_tx_end
func rmq_tx_end(h C.uint64_t, tx C.uint64_t, state C.int32_t, out *C.rmq_send_result) C.int32_t {
	return call(func() error {
		st, err := txProducerFor(h)
		if err != nil {
			return err
		}
		s, err := txStateFromABI(state)
		if err != nil {
			return err
		}
		t := st.tx
		t.mu.Lock()
		run := t.runs[uint64(tx)]
		delete(t.runs, uint64(tx))
		t.mu.Unlock()
		if run == nil {
			return errf(C.RMQ_ERR_INVALID_ARGUMENT, "transaction %d is unknown or already ended", uint64(tx))
		}
		run.verdict <- s
		res := <-run.result
		if run.err != nil {
			return run.err
		}
		if out != nil && res != nil && res.SendResult != nil {
			fillResult(out, res.SendResult)
		}
		return nil
	})
}

// rmq_tx_poll_checks: see rmq_native.h.
//
//export rmq_tx_poll_checks
func rmq_tx_poll_checks(h C.uint64_t, maxChecks C.int32_t, timeoutMs C.int32_t, out **C.uint8_t, outLen *C.int64_t, outCount *C.int32_t) C.int32_t {
	return call(func() error {
		if out == nil || outLen == nil || outCount == nil {
			return errf(C.RMQ_ERR_INVALID_ARGUMENT, "output pointers must not be NULL")
		}
		*out, *outLen, *outCount = nil, 0, 0
		st, err := txProducerFor(h)
		if err != nil {
			return err
		}
		if maxChecks <= 0 || timeoutMs < 0 {
			return errf(C.RMQ_ERR_INVALID_ARGUMENT, "max_checks must be > 0 and timeout_ms >= 0")
		}
		t := st.tx
		got := takeBatch(t.checks, int(maxChecks), time.Duration(timeoutMs)*time.Millisecond, t.done)
		if len(got) == 0 {
			return nil
		}
		t.mu.Lock()
		for _, c := range got {
			t.unanswered[c.id] = c
		}
		t.mu.Unlock()
		var buf []byte
		for _, c := range got {
			buf = encodeMessageRecord(buf, c.id, c.msg)
		}
		export(buf, out, outLen)
		*outCount = C.int32_t(len(got))
		return nil
	})
}

// rmq_tx_check_reply: see rmq_native.h.
//
//export rmq_tx_check_reply
func rmq_tx_check_reply(h C.uint64_t, checkID C.uint64_t, state C.int32_t) C.int32_t {
	return call(func() error {
		st, err := txProducerFor(h)
		if err != nil {
			return err
		}
		s, err := txStateFromABI(state)
		if err != nil {
			return err
		}
		t := st.tx
		t.mu.Lock()
		c := t.unanswered[uint64(checkID)]
		delete(t.unanswered, uint64(checkID))
		t.mu.Unlock()
		if c != nil {
			c.reply <- s
		}
		return nil
	})
}
