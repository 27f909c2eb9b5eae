package main

import (
	"os"
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

// TestGCPercentFor: the GOGC whose heap goal is the larger of heapMinimum
// and twice the live heap.
func TestGCPercentFor(t *testing.T) {
	for _, c := range []struct {
		live uint64
		want int
	}{{0, 300}, {1 << 20, 300}, {3 << 20, 300}, {4 << 20, 200}, {5 << 20, 140}, {6 << 20, 100}, {1 << 30, 100}} {
		if got := gcPercentFor(c.live); got != c.want {
			t.Errorf("live %d MiB: GOGC %d, want %d", c.live>>20, got, c.want)
		}
		goal := max(c.live*uint64(100+c.want)/100, runtimeHeapMinimum*uint64(c.want)/100)
		if want := max(uint64(heapMinimum), 2*c.live); goal < want*99/100 || goal > want*101/100 {
			t.Errorf("live %d MiB: goal %d MiB at GOGC %d, want %d", c.live>>20, goal>>20, c.want, want>>20)
		}
	}
}

// waitGCPercent runs collections until GOGC is want (the finalizer
// goroutine tunes it after each), for at most 5 s.
func waitGCPercent(want int) int {
	for deadline := time.Now().Add(5 * time.Second); currentGCPercent() != want && time.Now().Before(deadline); {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	return currentGCPercent()
}

// TestGCTunedAfterCollections: loading the library set GOGC for a small
// heap; after collections it follows the live heap down and up again.
func TestGCTunedAfterCollections(t *testing.T) {
	if _, set := os.LookupEnv("GOGC"); set {
		t.Skip("GOGC in the environment: the library leaves it alone")
	}
	if got := waitGCPercent(300); got != 300 {
		t.Fatalf("GOGC %d with a small heap, want 300", got)
	}
	big := make([][]byte, 0, 64)
	for i := 0; i < 64; i++ { // 32 MiB live
		big = append(big, make([]byte, 512<<10))
	}
	if got := waitGCPercent(100); got != 100 {
		t.Errorf("GOGC %d with 32 MiB live, want 100", got)
	}
	runtime.KeepAlive(big)
	big = nil
	if got := waitGCPercent(300); got != 300 {
		t.Errorf("GOGC %d after the 32 MiB were released, want 300", got)
	}
	debug.FreeOSMemory()
}
