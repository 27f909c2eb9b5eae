package main

// Unit test of where asynchronous sends start (enqueue): on the caller's
// thread when the producer is idle and the topic warm, else on the
// dispatcher, always in the order of the calls. No broker: the SDK
// producer is a fake that answers at once.

import (
	"context"
	"sync"
	"testing"
	"time"

	rocketmq "github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/primitive"
)

// fakeSDK records the bodies SendAsync was called with and answers each
// send at once with success.
type fakeSDK struct {
	rocketmq.Producer // the methods the test does not use (nil: they panic)
	mu                sync.Mutex
	bodies            []string
}

func (f *fakeSDK) SendAsync(ctx context.Context, cb func(context.Context, *primitive.SendResult, error), msgs ...*primitive.Message) error {
	f.mu.Lock()
	f.bodies = append(f.bodies, string(msgs[0].Body))
	f.mu.Unlock()
	cb(ctx, &primitive.SendResult{Status: primitive.SendOK}, nil)
	return nil
}

func (f *fakeSDK) sent() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.bodies...)
}

func TestAsyncSendsStartInlineWhenIdleAndInOrder(t *testing.T) {
	sdk := &fakeSDK{}
	st := &producerState{p: sdk, onWire: make(chan struct{}, maxOnWire), completions: newCompletionQueue()}
	send := func(topic, body string) {
		st.mu.RLock()
		defer st.mu.RUnlock()
		st.inflight.Add(1)
		st.enqueue(asyncJob{token: 1, msg: primitive.NewMessage(topic, []byte(body)), timeout: time.Second})
	}
	settle := func(n int) {
		t.Helper()
		done := make(chan struct{})
		go func() { st.inflight.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("sends did not complete; sent %v", sdk.sent())
		}
		if got := len(sdk.sent()); got != n {
			t.Fatalf("%d sends made, want %d", got, n)
		}
	}

	send("t", "cold") // a topic never sent to: the dispatcher sends it
	settle(1)
	if !st.warm("t") {
		t.Fatal("a successful first attempt did not make its topic warm")
	}
	time.Sleep(2 * trickleGap)
	send("t", "alone") // idle producer, warm topic: sent during the call
	if got := sdk.sent(); len(got) != 2 || got[1] != "alone" {
		t.Fatalf("a lone send to a warm topic was not made during the call: %v", got)
	}
	st.qmu.Lock()
	busy := st.dispatching || len(st.queue) > 0
	st.qmu.Unlock()
	if busy {
		t.Fatal("the producer is not idle after a send made during the call")
	}

	time.Sleep(2 * trickleGap)
	const burst = 200
	for i := 0; i < burst; i++ { // the first on the caller's thread, the others mostly queued
		send("t", string(rune('A'+i%26))+string(rune('0'+i/26)))
	}
	settle(2 + burst)
	got := sdk.sent()[2:]
	for i := 0; i < burst; i++ {
		if want := string(rune('A'+i%26)) + string(rune('0'+i/26)); got[i] != want {
			t.Fatalf("send %d started as %q, want %q: the calls' order was not kept", i, got[i], want)
		}
	}
	if n := len(st.completions.take(1000, 0)); n != 2+burst {
		t.Fatalf("%d completions, want %d", n, 2+burst)
	}
}
