package main

import (
	"os"
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

// TestGCPercentFor: the GOGC whose heap goal is heapMinimum for a small
// live heap, the live heap plus 4 MiB above it, a headroom growing to the
// live heap's size from 10 to 20 MiB live, and twice the live heap beyond.
func TestGCPercentFor(t *testing.T) {
	for _, c := range []struct {
		liveMiB, gogc, goalMiB uint64
	}{{0, 300, 12}, {1, 300, 12}, {3, 300, 12}, {4, 200, 12}, {5, 140, 12}, {6, 100, 12}, {8, 50, 12},
		{10, 40, 14}, {12, 33, 16}, {14, 57, 22}, {16, 75, 28}, {20, 100, 40}, {32, 100, 64}, {1024, 100, 2048}} {
		live := c.liveMiB << 20
		got := gcPercentFor(live)
		if got != int(c.gogc) {
			t.Errorf("live %d MiB: GOGC %d, want %d", c.liveMiB, got, c.gogc)
		}
		goal := max(live*uint64(100+got)/100, runtimeHeapMinimum*uint64(got)/100)
		if want := c.goalMiB << 20; goal < want*99/100 || goal > want*101/100 {
			t.Errorf("live %d MiB: goal %.1f MiB at GOGC %d, want %d", c.liveMiB, float64(goal)/(1<<20), got, c.goalMiB)
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
