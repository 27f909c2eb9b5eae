package main

/*
#include <stdlib.h>
#include "rmq_native.h"
*/
import "C"

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/rocketmq-client-go/v2/rlog"
)

var pid = os.Getpid()

// Log levels use Python's logging numbers.
const (
	levelDebug   = 10
	levelInfo    = 20
	levelWarning = 30
	levelError   = 40
	levelFatal   = 50
	maxRecords   = 4096
)

type logRecord struct {
	level int32
	text  string
}

// logBuffer keeps SDK log records until the caller polls them; it never
// writes to stdout or stderr.
type logBuffer struct {
	mu      sync.Mutex
	records []logRecord
	dropped int
	notify  chan struct{}
	level   int32
}

var logs = &logBuffer{notify: make(chan struct{}, 1), level: levelWarning}

func init() {
	rlog.SetLogger(logs)
}

func (l *logBuffer) add(level int32, msg string, fields map[string]interface{}) {
	if level < atomic.LoadInt32(&l.level) {
		return
	}
	var sb strings.Builder
	sb.WriteString(msg)
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&sb, " %s=%v", k, fields[k])
	}
	l.mu.Lock()
	if len(l.records) >= maxRecords {
		l.records = l.records[1:]
		l.dropped++
	}
	l.records = append(l.records, logRecord{level, sb.String()})
	l.mu.Unlock()
	select {
	case l.notify <- struct{}{}:
	default:
	}
}

func (l *logBuffer) Debug(msg string, fields map[string]interface{}) { l.add(levelDebug, msg, fields) }
func (l *logBuffer) Info(msg string, fields map[string]interface{})  { l.add(levelInfo, msg, fields) }
func (l *logBuffer) Warning(msg string, fields map[string]interface{}) {
	l.add(levelWarning, msg, fields)
}
func (l *logBuffer) Error(msg string, fields map[string]interface{}) { l.add(levelError, msg, fields) }

// Fatal records the message at the highest level and, unlike the SDK's
// default logger, never exits the process.
func (l *logBuffer) Fatal(msg string, fields map[string]interface{}) { l.add(levelFatal, msg, fields) }

// Level is part of rlog.Logger; the level is set through rmq_set_log_level.
func (l *logBuffer) Level(string) {}

// OutputPath is part of rlog.Logger; records only go to the caller.
func (l *logBuffer) OutputPath(string) error { return nil }

// take removes and returns the pending records.
func (l *logBuffer) take() []logRecord {
	l.mu.Lock()
	defer l.mu.Unlock()
	recs := l.records
	if l.dropped > 0 {
		recs = append(recs, logRecord{levelWarning, fmt.Sprintf("rmq_native: %d log records were dropped (nobody read them)", l.dropped)})
		l.dropped = 0
	}
	l.records = nil
	return recs
}

// rmq_set_log_level: see rmq_native.h.
//
//export rmq_set_log_level
func rmq_set_log_level(level C.int32_t) C.int32_t {
	return call(func() error {
		atomic.StoreInt32(&logs.level, int32(level))
		return nil
	})
}

// rmq_log_poll: see rmq_native.h.
//
//export rmq_log_poll
func rmq_log_poll(timeoutMs C.int32_t, out **C.uint8_t, outLen *C.int64_t, outCount *C.int32_t) C.int32_t {
	return call(func() error {
		if out == nil || outLen == nil || outCount == nil {
			return errf(C.RMQ_ERR_INVALID_ARGUMENT, "output pointers must not be NULL")
		}
		*out, *outLen, *outCount = nil, 0, 0
		recs := logs.take()
		if len(recs) == 0 && timeoutMs > 0 {
			t := time.NewTimer(time.Duration(timeoutMs) * time.Millisecond)
			select {
			case <-logs.notify:
			case <-t.C:
			}
			t.Stop()
			recs = logs.take()
		}
		if len(recs) == 0 {
			return nil
		}
		var buf []byte
		for _, r := range recs {
			buf = encodeLogRecord(buf, r.level, r.text)
		}
		export(buf, out, outLen)
		*outCount = C.int32_t(len(recs))
		return nil
	})
}
