package main

import (
	"sync"
	"testing"
	"time"
)

// An event's wait ends when it is set, at once if it was set before, and
// with false when its time runs out; every one of many waiters set from
// other goroutines is woken.
func TestEvent(t *testing.T) {
	var e event
	start := time.Now()
	if e.wait(50 * time.Millisecond) {
		t.Fatal("an event never set: wait returned true")
	}
	if d := time.Since(start); d < 50*time.Millisecond || d > 2*time.Second {
		t.Fatalf("a wait of 50 ms took %v", d)
	}

	e.set()
	if !e.wait(0) {
		t.Fatal("an event set before the wait: wait returned false")
	}

	var late event
	go func() {
		time.Sleep(30 * time.Millisecond)
		late.set()
	}()
	start = time.Now()
	if !late.wait(5 * time.Second) {
		t.Fatal("an event set after 30 ms: wait returned false")
	}
	if d := time.Since(start); d < 25*time.Millisecond || d > 4*time.Second {
		t.Fatalf("an event set after 30 ms ended the wait after %v", d)
	}

	const n = 16
	evs := make([]event, n)
	var wg sync.WaitGroup
	woken := make(chan bool, n)
	for i := range evs {
		wg.Add(1)
		go func(e *event) {
			defer wg.Done()
			woken <- e.wait(5 * time.Second)
		}(&evs[i])
	}
	time.Sleep(20 * time.Millisecond)
	for i := range evs {
		go evs[i].set()
	}
	wg.Wait()
	close(woken)
	for ok := range woken {
		if !ok {
			t.Fatal("a waiter of 16 was not woken by its event")
		}
	}
}
