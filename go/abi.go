package main

// Arguments and results of the exports: (pointer, length) pairs in,
// library-allocated buffers and fixed C strings out.

/*
#include <stdlib.h>
#include "rmq_native.h"
*/
import "C"

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"unsafe"
)

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

// cBytes is a (pointer, length) pair as a Go slice over the caller's
// memory, without a copy: it is valid only until the export returns, so
// nothing may keep it beyond the call.
func cBytes(p *C.char, n C.int64_t) ([]byte, error) {
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
	return unsafe.Slice((*byte)(unsafe.Pointer(p)), int(n)), nil
}

// goBytes copies a (pointer, length) pair into a new Go slice.
func goBytes(p *C.char, n C.int64_t) ([]byte, error) {
	b, err := cBytes(p, n)
	if err != nil || len(b) == 0 {
		return b, err
	}
	return bytes.Clone(b), nil
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

// exportJSON hands v to the caller as a JSON buffer.
func exportJSON(v interface{}, out **C.uint8_t, outLen *C.int64_t) error {
	b, err := json.Marshal(v)
	if err != nil {
		return errf(C.RMQ_ERR_INTERNAL, "encode result: %v", err)
	}
	export(b, out, outLen)
	return nil
}

// textArg reads an optional (pointer, length) text argument.
func textArg(what string, p *C.char, n C.int64_t) (string, error) {
	s, err := goString(p, n)
	if err != nil || s == "" {
		return s, err
	}
	return s, validText(what, s)
}

// nameArg reads a required topic or group name.
func nameArg(what string, p *C.char, n C.int64_t) (string, error) {
	s, err := goString(p, n)
	if err != nil {
		return "", err
	}
	if validTopic(s) != nil {
		return "", errf(C.RMQ_ERR_INVALID_ARGUMENT, "invalid %s name %q: 1 to 127 characters from letters, digits, '%%', '|', '_' and '-'", what, s)
	}
	return s, nil
}
