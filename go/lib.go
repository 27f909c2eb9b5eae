// Package main is the rmq_native shared library: a small C ABI (see
// rmq_native.h, the contract) over the Go RocketMQ SDK.
//
// The SDK is pinned to v2.1.2, the newest release the Go module proxy
// serves (later master commits are not available to the build). Where that
// release falls short the library works around it: send timeouts are
// enforced with a context deadline (v2.1.2 ignores WithSendMsgTimeout), the
// name server is always explicit (no HTTP resolver), and the SDK's logger is
// replaced so that nothing is printed and rlog.Fatal never exits.
package main

/*
#include <stdlib.h>
#include "rmq_native.h"
#include "errstore.h"
#include "waiter.h"
*/
import "C"

import (
	"encoding/json"
	"net"
	"runtime"
	"time"
	"unsafe"
)

// Version is the library version; the Python package refuses a library
// whose version differs from its own.
const Version = "0.1.0"

// takeBatch waits at most timeout for a first item of ch (not at all when
// timeout is 0; done ends the wait early), then takes what is already
// there, up to max items without waiting again.
func takeBatch[T any](ch <-chan T, max int, timeout time.Duration, done <-chan struct{}) []T {
	var first T
	select {
	case first = <-ch: // ready: no timer
	default:
		if timeout <= 0 {
			return nil
		}
		t := time.NewTimer(timeout)
		defer t.Stop()
		select {
		case first = <-ch:
		case <-t.C:
			return nil
		case <-done:
			return nil
		}
	}
	batch := make([]T, 1, min(max, 1+len(ch)))
	batch[0] = first
	for len(batch) < max {
		select {
		case x := <-ch:
			batch = append(batch, x)
			continue
		default:
		}
		break
	}
	return batch
}

// anyReachable reports whether one of the addresses accepts a TCP connection.
func anyReachable(addrs []string, timeout time.Duration) bool {
	for _, a := range addrs {
		c, err := net.DialTimeout("tcp", a, timeout)
		if err == nil {
			c.Close()
			return true
		}
	}
	return false
}

// ---- library exports -------------------------------------------------

// rmq_version: see rmq_native.h.
//
//export rmq_version
func rmq_version(buf *C.char, capacity C.int32_t) C.int32_t {
	return call(func() error {
		if buf == nil || capacity <= 0 {
			return errf(C.RMQ_ERR_INVALID_ARGUMENT, "version buffer is NULL or empty")
		}
		copyCString(unsafe.Slice(buf, int(capacity)), Version)
		return nil
	})
}

// rmq_last_error: see rmq_native.h.
//
//export rmq_last_error
func rmq_last_error(buf *C.char, capacity C.int32_t) C.int32_t {
	return C.rmq_errstore_get(buf, capacity)
}

// rmq_free: see rmq_native.h.
//
//export rmq_free
func rmq_free(p unsafe.Pointer) {
	C.free(p)
}

// rmq_debug_stats: see rmq_native.h.
//
//export rmq_debug_stats
func rmq_debug_stats(out **C.uint8_t, outLen *C.int64_t) C.int32_t {
	return call(func() error {
		if out == nil || outLen == nil {
			return errf(C.RMQ_ERR_INVALID_ARGUMENT, "output pointers must not be NULL")
		}
		handleMu.Lock()
		counts := map[string]int{"handles": len(handles)}
		for _, v := range handles {
			switch v.(type) {
			case *producerState:
				counts["producers"]++
			case *consumerState:
				counts["consumers"]++
			case *adminState:
				counts["admins"]++
			}
		}
		handleMu.Unlock()
		counts["goroutines"] = runtime.NumGoroutine()
		counts["procs"] = runtime.GOMAXPROCS(0)
		counts["gogc"] = currentGCPercent()
		counts["wait_spin_us"] = int(C.rmq_waiter_spin_max_us()) // waiter.c
		counts["consumers_closed"] = int(consumersClosed.Load())
		counts["shared_producers"] = sharedProducers()
		runtime.GC() // heap_bytes: the live heap
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		counts["heap_bytes"] = int(ms.HeapAlloc)
		counts["stack_bytes"] = int(ms.StackInuse)
		b, _ := json.Marshal(counts)
		export(b, out, outLen)
		return nil
	})
}

// rmq_debug_panic: see rmq_native.h.
//
//export rmq_debug_panic
func rmq_debug_panic() C.int32_t {
	return call(func() error {
		var m map[string]int
		m["boom"] = 1 // a real runtime panic: assignment to a nil map
		return nil
	})
}

func main() {}
