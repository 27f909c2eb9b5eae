package main

// Integer handles: the objects behind them live here until closed.

/*
#include "rmq_native.h"
*/
import "C"

import "sync"

// handles maps every open handle to its object (*producerState,
// *consumerState, *adminState).
var (
	handleMu   sync.RWMutex // read-locked by the lookup every call makes
	handles    = map[uint64]interface{}{}
	nextHandle uint64
)

// newHandle registers v and returns its new handle.
func newHandle(v interface{}) uint64 {
	handleMu.Lock()
	defer handleMu.Unlock()
	nextHandle++
	handles[nextHandle] = v
	return nextHandle
}

// lookup returns the object of a handle.
func lookup(h C.uint64_t) (interface{}, bool) {
	handleMu.RLock()
	defer handleMu.RUnlock()
	v, ok := handles[uint64(h)]
	return v, ok
}

// handleOf returns the object of an open handle of the given kind
// ("producer", "consumer", "admin"); RMQ_ERR_CLOSED otherwise.
func handleOf[T any](h C.uint64_t, kind string) (T, error) {
	v, _ := lookup(h)
	st, ok := v.(T)
	if !ok {
		var zero T
		return zero, errf(C.RMQ_ERR_CLOSED, "%s handle %d is closed or unknown", kind, uint64(h))
	}
	return st, nil
}

// takeHandle removes a handle, returning its object (nil when unknown).
func takeHandle(h C.uint64_t) interface{} {
	handleMu.Lock()
	defer handleMu.Unlock()
	v := handles[uint64(h)]
	delete(handles, uint64(h))
	return v
}
