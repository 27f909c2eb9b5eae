package main

// Ps for the Python threads that wait in the library.
//
// A Python thread that calls into the library runs Go code on a P; while it
// waits for the broker's answer to a synchronous send its goroutine, locked
// to the thread, is parked and its P handed off, and when the answer comes
// the thread needs a P again. With as many Ps as cores (the runtime's
// default), eight threads sending synchronously on two cores queue for
// two Ps on every wake-up: measured on sync sends from 8 threads with
// GOMAXPROCS=8, ×1.15–1.38 the rate and 0.81–0.89 the CPU per message
// (benchmarks/PROFILE.md 6.7). More Ps for every process cost a drain
// (idle Ps spinning for work): up to 1.4× its CPU per message.
//
// So the library raises GOMAXPROCS only when more callers wait in
// synchronous sends at once than there are Ps, to their number, up to four
// times the default, and never lowers it: a process that never has more
// waiting callers than cores keeps the runtime's default. GOMAXPROCS in
// the environment is left alone.

import (
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// procs is the state of the ratchet.
var procs = struct {
	waiting atomic.Int32 // callers in synchronous sends now
	crowded atomic.Int64 // when (UnixNano) a caller last found others waiting
	now     atomic.Int32 // GOMAXPROCS as last set or read
	max     int32        // 0: never change GOMAXPROCS
	mu      sync.Mutex   // serialises the changes
}{}

func init() {
	n := int32(runtime.GOMAXPROCS(0))
	procs.now.Store(n)
	if os.Getenv("GOMAXPROCS") == "" {
		procs.max = 4 * n
	}
}

// waitingCaller counts the calling thread among those waiting in a
// synchronous send (raising GOMAXPROCS if they outnumber the Ps) until
// the returned function is called.
func waitingCaller() (done func()) {
	n := procs.waiting.Add(1)
	if n > 1 {
		procs.crowded.Store(time.Now().UnixNano())
	}
	if n > procs.now.Load() && n <= procs.max {
		raiseProcs(n)
	}
	return leaveWaiting
}

// aloneWaiting tells whether the calling thread, counted by waitingCaller,
// is the only one waiting in a synchronous send and no caller found
// another waiting in the last 100 ms: threads that send at the same time
// are not always in the library at the same time.
func aloneWaiting() bool {
	return procs.waiting.Load() == 1 && time.Now().UnixNano()-procs.crowded.Load() > int64(100*time.Millisecond)
}

func leaveWaiting() { procs.waiting.Add(-1) }

// raiseProcs sets GOMAXPROCS to n if that raises it (a stop of the world:
// at most max minus the default times in a process).
func raiseProcs(n int32) {
	procs.mu.Lock()
	defer procs.mu.Unlock()
	if n > procs.now.Load() {
		runtime.GOMAXPROCS(int(n))
		procs.now.Store(n)
	}
}
