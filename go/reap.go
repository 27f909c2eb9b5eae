package main

// What the SDK (v2.1.2) leaves behind when a client shuts down, and how the
// library releases it. Closed clients are reaped right after their SDK
// Shutdown (hooks in producer.go, pool.go and consumer.go).
//
//   - Name-server connection (every SDK client): each client opens its own
//     and nothing in the SDK ever closes it; it lives until the name server's
//     idle timeout (120 s by default), with a reader goroutine. A process that
//     creates and closes clients all day runs out of file descriptors.
//   - The check goroutine of a transaction producer: it waits on a channel
//     that nothing closes, holding the producer and its listener.
//   - Prefetched messages (push consumers): Shutdown leaves the process
//     queues, with every message pulled ahead, in the consumer, and the
//     consumer's expired-message cleaner sleeps 15 minutes (ConsumeTimeout)
//     holding it.
//
// Nothing public reaches them, so the library follows the SDK's unexported
// fields by reflection and calls their methods through unsafe (the only
// place the library reaches into the SDK). Every step checks the shape it expects and does
// nothing when the SDK differs (a newer release): then the residue stays,
// as without the library's help, but nothing breaks. tests/test_lifecycle.py
// fails if a step stops working.
//
// What stays (cannot be ended from outside): per closed push consumer, 16
// goroutines asleep in time.Sleep: its statistics' 15 (5 until the next
// minute, 5 until the next hour, 5 until the next month begins, then they
// see their close channel; upstream issue 1147) and the cleaner (until 15
// minutes after the start), which holds the emptied consumer. Measured: about
// 30 KiB of heap and 16 goroutine stacks (~6 KiB each) per consumer (README,
// Reliability).

/*
#include "rmq_native.h"
*/
import "C"

import (
	"fmt"
	"reflect"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"unsafe"
)

// sdkField follows a path of (unexported) struct fields through pointers and
// interfaces; ok is false when the value does not have that shape.
func sdkField(v reflect.Value, path ...string) (f reflect.Value, ok bool) {
	for _, name := range path {
		for v.Kind() == reflect.Interface || v.Kind() == reflect.Ptr {
			if v.IsNil() {
				return reflect.Value{}, false
			}
			v = v.Elem()
		}
		if v.Kind() != reflect.Struct {
			return reflect.Value{}, false
		}
		sf, found := v.Type().FieldByName(name)
		if !found {
			return reflect.Value{}, false
		}
		var err error
		if v, err = v.FieldByIndexErr(sf.Index); err != nil { // a nil embedded pointer
			return reflect.Value{}, false
		}
	}
	return v, v.IsValid()
}

// opened returns an addressable field as a value whose methods may be
// called (reflection forbids that for unexported fields).
func opened(f reflect.Value) (reflect.Value, bool) {
	if !f.CanAddr() {
		return reflect.Value{}, false
	}
	return reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem(), true
}

// sdkClientOf returns the SDK's shared client (internal rmqClient) of a
// producer, transaction producer or push consumer.
func sdkClientOf(client interface{}) (reflect.Value, bool) {
	v := reflect.ValueOf(client)
	if c, ok := sdkField(v, "client"); ok { // producer, push consumer
		return c, true
	}
	return sdkField(v, "producer", "client") // transaction producer
}

// shutDown tells whether the SDK's shared client has shut down (its last
// user did).
func shutDown(c reflect.Value) bool {
	closed, ok := sdkField(c, "close")
	return ok && closed.Kind() == reflect.Bool && closed.Bool()
}

// closeNameServerConn closes the name-server connection of an SDK client
// that has shut down. A client whose instance name another open client
// shares (explicit instance_name) is still running and keeps it.
func closeNameServerConn(client interface{}) {
	c, ok := sdkClientOf(client)
	if !ok || !shutDown(c) {
		return
	}
	f, ok := sdkField(c, "option", "Namesrv", "nameSrvClient")
	if !ok {
		return
	}
	if f, ok = opened(f); !ok || f.Kind() != reflect.Interface || f.IsNil() {
		return
	}
	if rc, ok := f.Interface().(interface{ ShutDown() }); ok {
		rc.ShutDown() // closes the connections; their readers end
	}
}

// endTransactionChecks ends the check goroutine of a transaction producer
// whose client has shut down: it ranges over the producer's callback
// channel, which the SDK never closes. (A check arriving during the
// shutdown would then panic in an SDK goroutine, which recovers and logs
// it: errors.go sets the SDK's PanicHandler.)
func endTransactionChecks(client interface{}) {
	v := reflect.ValueOf(client)
	if _, isTx := sdkField(v, "listener"); !isTx {
		return
	}
	if c, ok := sdkClientOf(client); !ok || !shutDown(c) {
		return
	}
	f, ok := sdkField(v, "producer", "callbackCh")
	if !ok {
		return
	}
	if f, ok = opened(f); ok && f.Kind() == reflect.Chan && !f.IsNil() {
		f.Close()
	}
}

// dropPrefetched empties the process queues of a push consumer that has
// shut down, so that the goroutines that outlive it hold no messages.
func dropPrefetched(client interface{}) {
	f, ok := sdkField(reflect.ValueOf(client), "processQueueTable")
	if !ok || f.Type() != reflect.TypeOf(sync.Map{}) || !f.CanAddr() {
		return
	}
	table := (*sync.Map)(unsafe.Pointer(f.UnsafeAddr()))
	table.Range(func(k, pq interface{}) bool {
		table.Delete(k)
		clearProcessQueue(pq)
		return true
	})
}

// clearProcessQueue empties one process queue's message cache (under its
// lock) and channel: pulls still in flight hold the queue until their
// deadline (about 30 s).
func clearProcessQueue(pq interface{}) {
	v := reflect.ValueOf(pq)
	mu, ok := sdkField(v, "mutex")
	if !ok || mu.Type() != reflect.TypeOf(sync.RWMutex{}) || !mu.CanAddr() {
		return
	}
	lock := (*sync.RWMutex)(unsafe.Pointer(mu.UnsafeAddr()))
	lock.Lock()
	defer lock.Unlock()
	for _, name := range []string{"msgCache", "consumingMsgOrderlyTreeMap"} {
		f, ok := sdkField(v, name)
		if !ok {
			continue
		}
		if f, ok = opened(f); !ok || f.Kind() != reflect.Ptr || f.IsNil() {
			continue
		}
		if clear := f.MethodByName("Clear"); clear.IsValid() && clear.Type().NumIn() == 0 {
			clear.Call(nil)
		}
	}
	// batches handed to the consume loop but not taken yet (Shutdown closed
	// the channel; what is buffered stays until read)
	if ch, ok := sdkField(v, "msgCh"); ok {
		if ch, ok = opened(ch); ok && ch.Kind() == reflect.Chan && !ch.IsNil() {
			for _, more := ch.TryRecv(); more; _, more = ch.TryRecv() {
			}
		}
	}
}

// consumersClosed counts the consumers this process closed; past
// manyConsumers the library warns once (each leaves a residue; see above).
var consumersClosed atomic.Int64

const manyConsumers = 20

// reapConsumer releases what a closed consumer leaves behind: the SDK's
// name-server connection and prefetched messages, and the library's own
// buffered deliveries. The caller shut the SDK consumer down and closed
// st.done (so no SDK callback adds to st.ready any more).
func reapConsumer(st *consumerState) {
	quietly(func() {
		closeNameServerConn(st.c)
		dropPrefetched(st.c)
	})
	for len(st.ready) > 0 {
		<-st.ready
	}
	st.mu.Lock()
	st.pending = map[uint64]*delivery{}
	st.mu.Unlock()
	// The prefetched messages were garbage; hand their memory back to the
	// system now instead of minutes later (the Go heap may have grown by
	// many MiB for them).
	go quietly(debug.FreeOSMemory)
	if consumersClosed.Add(1) == manyConsumers+1 {
		logs.add(levelWarning, fmt.Sprintf("rmq_native: this process has closed more than %d consumers; "+
			"each closed consumer leaves up to 16 SDK goroutines that end only after minutes to a month "+
			"(upstream issue 1147): keep one long-lived consumer per group and process", manyConsumers), nil)
	}
}

// reaped wraps the Shutdown of an SDK producer or transaction producer: after
// it, the name-server connection and the transaction check goroutine the SDK
// leaves behind end.
func reaped(client interface{}, shutdown func() error) func() error {
	return func() error {
		err := shutdown()
		quietly(func() {
			closeNameServerConn(client)
			endTransactionChecks(client)
		})
		return err
	}
}

// quietly runs a reaping step: a panic (an SDK of another shape) is logged,
// never raised.
func quietly(step func()) {
	defer func() {
		if r := recover(); r != nil {
			logs.add(levelWarning, fmt.Sprintf("rmq_native: could not release what a closed client left behind: %v", r), nil)
		}
	}()
	step()
}
