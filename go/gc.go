package main

// The garbage collector's heap minimum.
//
// The library's live Go heap is mostly small, 1-3 MiB (the SDK's
// connections, a consumer's window, the messages being sent), while a busy
// client allocates fast: the SDK decodes every pulled message into fresh
// buffers and builds every request anew. The runtime collects when the
// heap reaches twice its live size or its minimum of 4 MiB, whichever is
// larger: in a backlog drain of 100,000 x 1 KiB that was about 200
// collections a second (GODEBUG=gctrace=1), each taking a P of the two to
// four a small machine has while the broker, the Python thread and the
// SDK's pulls wait.
//
// The library raises that minimum to heapMinimum: after every collection
// it sets GOGC so that the next goal is at least heapMinimum (300 while the
// live heap is at most a quarter of it, falling to 100 at half).
// Measured A/B on a drain of 100,000 x 1 KiB on 8 queues and on async
// sends (benchmarks/PROFILE.md 6.19): minimums of 8, 12 and 16 MiB drained
// 1.12-1.22x as fast with 0.85-0.89x the CPU per message, for 1-9 MiB more
// peak RSS; 12 also cut async sends' CPU per message by 14 %. A fixed GOGC
// of 200 was as fast but let a heap that is large for a while (the SDK's
// queues full behind a slow application) grow to three times its live
// size: peak RSS +15-24 MiB.
//
// Above heapMinimum the goal is not twice the live heap (the runtime's
// rule) but the live heap plus 4 MiB, a headroom that grows from 10 MiB
// live to reach the runtime's rule at 20 MiB (GOGC 40 at 10 MiB live, 33
// at 12, 75 at 16, 100 from 20). A drain's live heap is 1-2 MB, but as it
// starts, before the consumer keeps up, the SDK's queues fill: the live
// heap rose to 10-12 MB for a few collections, the next goal to twice
// that, and the drain's peak RSS by 8-14 MiB in 2 to 5 of every 8 to 10
// drains that began right after their backlog was written (the
// benchmark's drain rows: 46 or 54-57 MiB). Goal live + 4 MiB, drain A/B
// of 2 x 10 rounds: peak RSS max 56.4 / 53.7 -> 45.9 / 43.1 MiB, medians
// 44.7 / 46.3 -> 42.2 / 42.2, rate unchanged (paired median 1.02), async
// sends unchanged (benchmarks/PROFILE.md 6.21). A heap that stays large
// (big messages) is paced by the runtime's rule.
//
// GOGC in the environment leaves the runtime's own setting alone.

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
)

// heapMinimum is the smallest heap goal the library lets the runtime set
// (the runtime's own is 4 MiB at GOGC 100, scaled by GOGC).
const heapMinimum = 12 << 20

// runtimeHeapMinimum is the runtime's heap minimum at GOGC 100.
const runtimeHeapMinimum = 4 << 20

// gcHeadroom is the least a heap may grow above its live size before the
// next collection where that takes the goal past heapMinimum (from 8 MiB
// live).
const gcHeadroom = 4 << 20

// gcRampFrom is the live heap from which the headroom grows twice as fast
// as the live heap, to reach the runtime's own rule (headroom = live, GOGC
// 100) at twice this.
const gcRampFrom = 10 << 20

// gcGoalFor returns the heap goal the library sets for a live heap: at
// least heapMinimum; above it the live heap plus a headroom of gcHeadroom,
// growing from gcRampFrom to the live heap itself at 2 x gcRampFrom and
// beyond (the runtime's rule).
func gcGoalFor(live uint64) uint64 {
	headroom := uint64(gcHeadroom)
	if live > gcRampFrom {
		headroom = max(headroom, 2*(live-gcRampFrom))
	}
	return max(heapMinimum, live+min(headroom, live))
}

// gcPercentFor returns the GOGC that makes the runtime's next heap goal
// gcGoalFor(live): at GOGC p the runtime's goal is the larger of
// live x (1 + p/100) and runtimeHeapMinimum x p/100.
func gcPercentFor(live uint64) int {
	const most = 100 * heapMinimum / runtimeHeapMinimum
	if live <= heapMinimum/(1+most/100) {
		return most
	}
	return min(int(100*gcGoalFor(live)/live)-100, most)
}

// gcTuned is the GOGC the library set last (0: none). Written by init, then
// only by the finalizer goroutine.
var gcTuned int

func init() {
	if _, set := os.LookupEnv("GOGC"); set {
		return
	}
	tuneGC()
}

// gcSentinel is garbage as soon as it is made: its finalizer runs after the
// next collection. (16 bytes: smaller pointer-free objects may share a
// block, and their finalizers may never run.)
type gcSentinel struct{ _ [16]byte }

// tuneGC sets GOGC for the live heap of the last collection and arms the
// next call.
func tuneGC() {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	var live uint64
	if s[0].Value.Kind() == metrics.KindUint64 {
		live = s[0].Value.Uint64()
	}
	if p := gcPercentFor(live); p/10 != gcTuned/10 { // in steps of 10: rarely a call
		debug.SetGCPercent(p)
		gcTuned = p
	}
	runtime.SetFinalizer(&gcSentinel{}, func(*gcSentinel) { tuneGC() })
}

// currentGCPercent returns GOGC as in effect now (-1: off).
func currentGCPercent() int {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return -1
	}
	return int(s[0].Value.Uint64())
}
