package main

// A clustering consumer's offsets when it closes.
//
// The SDK (v2.1.2) commits offsets in two steps the library cannot see:
// after a callback returns ConsumeSuccess, the callback's goroutine moves
// the queue's offset in the SDK's offset table; at Shutdown the SDK marks
// every queue dropped (a callback returning after that moves nothing) and
// sends the table to the brokers with one-way requests, then closes its
// connections at once. Nothing tells whether a broker got them: on a
// saturated machine a close could leave acknowledged messages uncommitted,
// and the next consumer of the group received them again.
//
// The library closes both gaps: close waits until every callback whose
// messages the caller settled has returned (awaitSettled), then sends the
// offsets of the queues it delivered from itself, one UPDATE_CONSUMER_OFFSET
// per queue, each answered by its broker, before the SDK's Shutdown
// (commitOffsets). The SDK's own one-way requests follow with the same
// offsets. The table is read by reflection (reap.go's helpers); if the SDK's
// shape differs, the library logs it and leaves the commit to the SDK.

/*
#include "rmq_native.h"
*/
import "C"

import (
	"fmt"
	"reflect"
	"strconv"
	"sync"
	"time"
	"unsafe"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/rlog"
)

// Bounds of close's wait for settled callbacks to return: at least
// settleGrace after the start and after the last settlement (the SDK moves
// the offset right after the callback returns), at most settleWaitMax.
const (
	settleGrace   = 200 * time.Millisecond
	settleWaitMax = 5 * time.Second
	commitTimeout = 3 * time.Second // all of close's offset commits together
)

// touch records the queue a callback's messages came from and the broker
// that stored them (close commits the offsets of these queues).
func (st *consumerState) touch(m *primitive.MessageExt) {
	if m.Queue == nil || m.StoreHost == "" {
		return
	}
	st.touchedMu.Lock()
	if _, ok := st.touched[*m.Queue]; !ok {
		st.touched[*m.Queue] = m.StoreHost
	}
	st.touchedMu.Unlock()
}

// awaitSettled waits, from start, until no callback whose messages are all
// settled is still to return, and the grace has passed since the start and
// since the last settlement; at most settleWaitMax.
func (st *consumerState) awaitSettled(start time.Time) {
	for time.Since(start) < settleWaitMax {
		quiet := time.Since(start) >= settleGrace &&
			time.Since(time.Unix(0, st.lastSettle.Load())) >= settleGrace
		if quiet && st.finishing.Load() <= 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	rlog.Warning(fmt.Sprintf("rmq_native: consumer %s closes with %d settled callbacks still to return after %v; their offsets may not be committed (the messages are delivered again)",
		st.group, st.finishing.Load(), settleWaitMax), nil)
}

// commitOffsets sends the SDK's offsets of the queues this consumer
// delivered from to their brokers and waits for each answer (at most
// commitTimeout in all); a failure is logged (the SDK's one-way commit
// follows, and uncommitted messages are delivered again).
func (st *consumerState) commitOffsets() {
	st.touchedMu.Lock()
	touched := st.touched
	st.touched = map[primitive.MessageQueue]string{}
	st.touchedMu.Unlock()
	if len(touched) == 0 {
		return
	}
	offsets, ok := sdkOffsets(st.c)
	if !ok {
		rlog.Warning("rmq_native: cannot read the SDK's offset table (an SDK release other than v2.1.2?); the offsets are committed by the SDK's one-way requests only", nil)
		return
	}
	byBroker := map[string][]primitive.MessageQueue{}
	for q, addr := range touched {
		if off, ok := offsets[q]; ok && off >= 0 {
			byBroker[addr] = append(byBroker[addr], q)
		}
	}
	deadline := time.Now().Add(commitTimeout)
	var wg sync.WaitGroup
	for addr, queues := range byBroker {
		wg.Add(1)
		goSafe("commit offsets", func() {
			defer wg.Done()
			for i, q := range queues {
				if err := st.commitOffset(addr, q, offsets[q], time.Until(deadline)); err != nil {
					// the broker's other queues would fare the same
					rlog.Warning(fmt.Sprintf("rmq_native: consumer %s could not commit the offsets of %d queues at close, starting with %d of %s (what follows them is delivered again, unless the SDK's one-way commit lands): %v",
						st.group, len(queues)-i, offsets[q], q.String(), err), nil)
					return
				}
			}
		})
	}
	wg.Wait()
}

// commitOffset sends one UPDATE_CONSUMER_OFFSET and checks the answer.
func (st *consumerState) commitOffset(addr string, q primitive.MessageQueue, offset int64, timeout time.Duration) error {
	if timeout <= 0 {
		return errf(C.RMQ_ERR_TIMEOUT, "no time left")
	}
	ext := map[string]string{
		"consumerGroup": st.group,
		"topic":         q.Topic,
		"queueId":       strconv.Itoa(q.QueueId),
		"commitOffset":  strconv.FormatInt(offset, 10),
	}
	r, err := remotingRequest("broker", addr, reqUpdateConsumerOffset, ext, nil, st.creds, timeout)
	if err == nil && r.code != 0 {
		err = r.refusal("broker "+addr, "the commit")
	}
	return err
}

// sdkOffsets copies a clustering push consumer's offset table (the SDK's
// remote offset store) under the store's lock; ok is false when the SDK
// does not have that shape.
func sdkOffsets(c interface{}) (map[primitive.MessageQueue]int64, bool) {
	store, ok := sdkField(reflect.ValueOf(c), "storage")
	if !ok {
		return nil, false
	}
	mu, ok := sdkField(store, "mutex")
	if !ok || mu.Type() != reflect.TypeOf(sync.RWMutex{}) || !mu.CanAddr() {
		return nil, false
	}
	f, ok := sdkField(store, "OffsetTable")
	if !ok {
		return nil, false
	}
	if f, ok = opened(f); !ok {
		return nil, false
	}
	lock := (*sync.RWMutex)(unsafe.Pointer(mu.UnsafeAddr()))
	lock.RLock()
	defer lock.RUnlock()
	table, ok := f.Interface().(map[primitive.MessageQueue]int64)
	if !ok {
		return nil, false
	}
	out := make(map[primitive.MessageQueue]int64, len(table))
	for q, off := range table {
		out[q] = off
	}
	return out, true
}
