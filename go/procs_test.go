package main

import (
	"runtime"
	"testing"
	"time"
)

// TestWaitingCallersRaisePs: more waiting callers than Ps raise GOMAXPROCS
// to their number, up to max; fewer never lower it; max 0 (GOMAXPROCS in
// the environment) leaves it alone.
func TestWaitingCallersRaisePs(t *testing.T) {
	saved, savedMax := runtime.GOMAXPROCS(0), procs.max
	defer func() {
		runtime.GOMAXPROCS(saved)
		procs.now.Store(int32(saved))
		procs.max = savedMax
	}()
	runtime.GOMAXPROCS(1)
	procs.now.Store(1)
	procs.max = 3
	var done []func()
	for i := 0; i < 5; i++ {
		done = append(done, waitingCaller())
	}
	if got := runtime.GOMAXPROCS(0); got != 3 {
		t.Errorf("5 waiting callers, max 3: GOMAXPROCS %d, want 3", got)
	}
	for _, d := range done {
		d()
	}
	if got := procs.waiting.Load(); got != 0 {
		t.Errorf("%d callers still counted as waiting", got)
	}
	if got := runtime.GOMAXPROCS(0); got != 3 {
		t.Errorf("after the callers left: GOMAXPROCS %d, want 3 (never lowered)", got)
	}
	runtime.GOMAXPROCS(1)
	procs.now.Store(1)
	procs.max = 0
	d1, d2 := waitingCaller(), waitingCaller()
	d1()
	d2()
	if got := runtime.GOMAXPROCS(0); got != 1 {
		t.Errorf("max 0: GOMAXPROCS %d, want 1 (left alone)", got)
	}
}

// A caller is alone only while no other waits and none was seen waiting
// with another in the last 100 ms.
func TestAloneWaiting(t *testing.T) {
	procs.crowded.Store(0)
	d1 := waitingCaller()
	if !aloneWaiting() {
		t.Fatal("one caller, none before: not alone")
	}
	d2 := waitingCaller()
	if aloneWaiting() {
		t.Fatal("two callers waiting: alone")
	}
	d2()
	if aloneWaiting() {
		t.Fatal("one caller left just after another: alone")
	}
	time.Sleep(120 * time.Millisecond)
	if !aloneWaiting() {
		t.Fatal("one caller, the other gone 120 ms ago: not alone")
	}
	d1()
}
