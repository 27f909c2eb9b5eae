package main

// Status codes at the ABI edge: errors carry their code, broker refusals
// and SDK errors are classified, panics become RMQ_ERR_INTERNAL, and every
// export runs its body through call.

/*
#include "rmq_native.h"
#include "errstore.h"
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"net"
	"regexp"
	"runtime/debug"
	"strconv"
	"strings"
	"unsafe"

	"github.com/apache/rocketmq-client-go/v2/primitive"
)

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

// brokerCodeRe finds the broker's response code in an SDK error text.
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

// init gives the SDK a panic handler: its goroutines run under
// primitive.WithRecover, which recovers only when PanicHandler is set (it is
// nil by default in v2.1.2), so without one a panic in an SDK goroutine — a
// transaction check arriving at a producer being closed sends on a closed
// channel — aborted the host process.
func init() {
	primitive.PanicHandler = func(r interface{}) { reportPanic("an SDK goroutine", r) }
}
