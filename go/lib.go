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
*/
import "C"

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"regexp"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/apache/rocketmq-client-go/v2/primitive"
)

// Version is the library version; the Python package refuses a library
// whose version differs from its own.
const Version = "0.1.0"

// rmqError is an error that carries its ABI status code.
type rmqError struct {
	code int32
	msg  string
}

func (e *rmqError) Error() string { return e.msg }

// errf builds an rmqError; every message starts with "rmq_native: ".
func errf(code int32, format string, args ...interface{}) *rmqError {
	return &rmqError{code: code, msg: "rmq_native: " + fmt.Sprintf(format, args...)}
}

// classify maps an error from the SDK (or the library) to a status code.
func classify(err error) int32 {
	var re *rmqError
	if errors.As(err, &re) {
		return re.code
	}
	var be primitive.MQBrokerErr
	var bep *primitive.MQBrokerErr
	switch {
	case errors.As(err, &be):
		return brokerCode(int(be.ResponseCode), be.ErrorMessage)
	case errors.As(err, &bep):
		return brokerCode(int(bep.ResponseCode), bep.ErrorMessage)
	}
	// the SDK's send path reports broker refusals as "CODE: n, DESC: ..."
	if m := brokerCodeRe.FindStringSubmatch(err.Error()); m != nil {
		n, _ := strconv.Atoi(m[1])
		return brokerCode(n, err.Error())
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return C.RMQ_ERR_TIMEOUT
	}
	var ne net.Error
	if errors.As(err, &ne) {
		if ne.Timeout() {
			return C.RMQ_ERR_TIMEOUT
		}
		return C.RMQ_ERR_UNREACHABLE
	}
	s := strings.ToLower(err.Error())
	switch {
	case strings.Contains(s, "timeout") || strings.Contains(s, "deadline"):
		return C.RMQ_ERR_TIMEOUT
	case strings.Contains(s, "route info not found"):
		return C.RMQ_ERR_NO_ROUTE
	case strings.Contains(s, "connection refused") || strings.Contains(s, "dial tcp") ||
		strings.Contains(s, "connect") || strings.Contains(s, "no such host") ||
		strings.Contains(s, "broken pipe") || strings.Contains(s, "connection reset"):
		return C.RMQ_ERR_UNREACHABLE
	}
	return C.RMQ_ERR_STATE
}

var brokerCodeRe = regexp.MustCompile(`(?i)\bcode:\s*(\d+)`)

// brokerCodes maps the broker's refusals to status codes; codes not listed
// are RMQ_ERR_BROKER (retriable: busy, flush timeouts, system errors).
// Permanent refusals (the same request always fails) are RMQ_ERR_REJECTED.
var brokerCodes = map[int]int32{
	respRequestNotSupported: C.RMQ_ERR_REJECTED,
	respMessageIllegal:      C.RMQ_ERR_REJECTED,
	respVersionNotSupported: C.RMQ_ERR_REJECTED,
	respTopicNotExist:       C.RMQ_ERR_NO_ROUTE,
}

// brokerCode maps a broker response code and its remark to a status code.
// Code 16 (NO_PERMISSION) is both an ACL refusal (RMQ_ERR_AUTH) and a
// broker or topic that does not take writes or reads ("the broker[...]
// sending message is forbidden": read-only for maintenance, or a topic's
// permission): the remark tells them apart (RMQ_ERR_FORBIDDEN).
func brokerCode(code int, remark string) int32 {
	if code == respNoPermission {
		if strings.Contains(strings.ToLower(remark), "forbidden") {
			return C.RMQ_ERR_FORBIDDEN
		}
		return C.RMQ_ERR_AUTH
	}
	if c, ok := brokerCodes[code]; ok {
		return c
	}
	return C.RMQ_ERR_BROKER
}

// setLastError stores msg as the calling thread's last error.
func setLastError(msg string) {
	if msg == "" {
		C.rmq_errstore_set(nil, 0)
		return
	}
	b := []byte(msg)
	C.rmq_errstore_set((*C.char)(unsafe.Pointer(&b[0])), C.size_t(len(b)))
}

// fail records err for rmq_last_error and returns its status code.
func fail(err error) C.int32_t {
	msg := err.Error()
	if !strings.HasPrefix(msg, "rmq_native:") {
		msg = "rmq_native: " + msg
	}
	setLastError(msg)
	return C.int32_t(classify(err))
}

// goSafe runs fn in a new goroutine. A panic in it is recovered and
// reported on the library's log (the rmq_native logger) instead of ending
// the host process; what names the goroutine in the report.
func goSafe(what string, fn func()) {
	go func() {
		defer func() {
			if r := recover(); r != nil {
				reportPanic(what, r)
			}
		}()
		fn()
	}()
}

// reportPanic logs a panic recovered in a goroutine the library started.
func reportPanic(what string, r interface{}) {
	logs.add(levelError, fmt.Sprintf("rmq_native: internal error (recovered panic) in %s: %v\n%s", what, r, debug.Stack()), nil)
}

// guard turns a panic in an export into RMQ_ERR_INTERNAL. Every export
// defers it with its named return value.
func guard(rc *C.int32_t) {
	if r := recover(); r != nil {
		setLastError(fmt.Sprintf("rmq_native: internal error (recovered panic): %v\n%s", r, debug.Stack()))
		*rc = C.RMQ_ERR_INTERNAL
	}
}

// call runs the body of an export: a panic becomes RMQ_ERR_INTERNAL, an
// error its status code (recorded for rmq_last_error), nil RMQ_OK.
func call(body func() error) (rc C.int32_t) {
	defer guard(&rc)
	if err := body(); err != nil {
		return fail(err)
	}
	return C.RMQ_OK
}

// checkLen rejects a length that the C int of C.GoStringN/C.GoBytes cannot
// hold (a larger one would abort the process or be truncated).
func checkLen(n C.int64_t) error {
	if int64(n) > math.MaxInt32 {
		return errf(C.RMQ_ERR_INVALID_ARGUMENT, "length %d is too large (at most %d bytes)", int64(n), math.MaxInt32)
	}
	return nil
}

// goString copies a (pointer, length) pair into a Go string.
func goString(p *C.char, n C.int64_t) (string, error) {
	if n < 0 {
		return "", errf(C.RMQ_ERR_INVALID_ARGUMENT, "negative length %d", int64(n))
	}
	if n == 0 {
		return "", nil
	}
	if err := checkLen(n); err != nil {
		return "", err
	}
	if p == nil {
		return "", errf(C.RMQ_ERR_INVALID_ARGUMENT, "NULL pointer with length %d", int64(n))
	}
	return C.GoStringN(p, C.int(n)), nil
}

// goBytes copies a (pointer, length) pair into a new Go slice.
func goBytes(p *C.char, n C.int64_t) ([]byte, error) {
	if n < 0 {
		return nil, errf(C.RMQ_ERR_INVALID_ARGUMENT, "negative length %d", int64(n))
	}
	if n == 0 {
		return []byte{}, nil
	}
	if err := checkLen(n); err != nil {
		return nil, err
	}
	if p == nil {
		return nil, errf(C.RMQ_ERR_INVALID_ARGUMENT, "NULL pointer with length %d", int64(n))
	}
	return C.GoBytes(unsafe.Pointer(p), C.int(n)), nil
}

// copyCString writes s into the fixed C array dst (NUL-terminated).
func copyCString(dst []C.char, s string) {
	n := len(s)
	if n > len(dst)-1 {
		n = len(dst) - 1
	}
	for i := 0; i < n; i++ {
		dst[i] = C.char(s[i])
	}
	dst[n] = 0
}

// export hands a Go byte slice to the caller as library-allocated memory.
func export(b []byte, out **C.uint8_t, outLen *C.int64_t) {
	if len(b) == 0 {
		*out = nil
		*outLen = 0
		return
	}
	p := C.malloc(C.size_t(len(b)))
	copy(unsafe.Slice((*byte)(p), len(b)), b)
	*out = (*C.uint8_t)(p)
	*outLen = C.int64_t(len(b))
}

// decodeConfig parses a JSON config into dst, rejecting unknown keys.
func decodeConfig(p *C.char, n C.int64_t, dst interface{}) error {
	s, err := goString(p, n)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return errf(C.RMQ_ERR_INVALID_ARGUMENT, "invalid configuration: %v", err)
	}
	return nil
}

// takeBatch waits at most timeout for a first item of ch (not at all when
// timeout is 0; done ends the wait early), then takes what is already
// there, up to max items without waiting again.
func takeBatch[T any](ch <-chan T, max int, timeout time.Duration, done <-chan struct{}) []T {
	var batch []T
	if timeout <= 0 {
		select {
		case x := <-ch:
			batch = append(batch, x)
		default:
		}
	} else {
		t := time.NewTimer(timeout)
		select {
		case x := <-ch:
			batch = append(batch, x)
		case <-t.C:
		case <-done:
		}
		t.Stop()
	}
	for len(batch) > 0 && len(batch) < max {
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

// ---- handles ---------------------------------------------------------

var (
	handleMu   sync.Mutex
	handles    = map[uint64]interface{}{}
	nextHandle uint64
	instanceNo uint64
)

func newHandle(v interface{}) uint64 {
	handleMu.Lock()
	defer handleMu.Unlock()
	nextHandle++
	handles[nextHandle] = v
	return nextHandle
}

func lookup(h C.uint64_t) (interface{}, bool) {
	handleMu.Lock()
	defer handleMu.Unlock()
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

// uniqueInstance gives every client its own SDK instance name: the SDK
// shares one client per ClientIP@InstanceName in a process.
func uniqueInstance(given string) (string, error) {
	if given != "" {
		// it becomes part of file paths (broadcasting offsets), also on Windows
		if strings.ContainsAny(given, "\x00\x01\x02:\\/*?\"<>| ") {
			return "", errf(C.RMQ_ERR_INVALID_ARGUMENT, "instance_name %q must not contain spaces or any of : \\ / * ? \" < > |", given)
		}
		return given, nil
	}
	return fmt.Sprintf("rmq_native-%d-%d-%d", pid, atomic.AddUint64(&instanceNo, 1), time.Now().UnixNano()%1000000), nil
}

// nameServers parses "host:port[;host:port]" and validates each address.
func nameServers(s string) ([]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, errf(C.RMQ_ERR_INVALID_ARGUMENT, "name_server is required (\"host:port\")")
	}
	var out []string
	for _, a := range strings.FieldsFunc(s, func(r rune) bool { return r == ';' || r == ',' }) {
		a = strings.TrimSpace(a)
		host, port, err := net.SplitHostPort(a)
		if err != nil || host == "" || port == "" {
			return nil, errf(C.RMQ_ERR_INVALID_ARGUMENT, "invalid name server address %q (expected host:port)", a)
		}
		out = append(out, a)
	}
	if len(out) == 0 {
		return nil, errf(C.RMQ_ERR_INVALID_ARGUMENT, "name_server is required (\"host:port\")")
	}
	return out, nil
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
