package main

import (
	"strings"
	"testing"
	"time"
)

// A panic in a goroutine the library starts is recovered and reported on
// the library's log; the process (this test binary) lives on.
func TestGoSafeRecoversAndReports(t *testing.T) {
	goSafe("test goroutine", func() {
		var m map[string]int
		m["boom"] = 1 // a real runtime panic
	})
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		logs.mu.Lock()
		for _, r := range logs.records {
			if r.level == levelError && strings.Contains(r.text, "recovered panic) in test goroutine") &&
				strings.Contains(r.text, "assignment to entry in nil map") {
				logs.mu.Unlock()
				return
			}
		}
		logs.mu.Unlock()
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("the recovered panic was not reported on the log")
}

// The broker's refusals map by code and remark (the Python suite proves
// each against a real broker; this is the table itself).
func TestBrokerCodeTable(t *testing.T) {
	cases := []struct {
		code   int
		remark string
		want   int32
	}{
		{13, "the message is illegal, maybe msg body or properties length not matched", 11},
		{3, "request type 999 not supported", 11},
		{15, "version not supported", 11},
		{16, "the broker[broker-a] sending message is forbidden", 10},
		{16, "the topic[T] sending message is forbidden", 10},
		{16, "the broker[broker-a] pulling message is forbidden", 10},
		{16, "User:x is not found", 9},
		{16, "check signature failed", 9},
		{17, "topic[T] not exist", 7},
		{2, "[PCBUSY_CLEAN_QUEUE]broker busy", 5},
		{1, "system error", 5},
		{14, "service not available now", 5},
	}
	for _, c := range cases {
		if got := brokerCode(c.code, c.remark); got != c.want {
			t.Errorf("brokerCode(%d, %q) = %d, want %d", c.code, c.remark, got, c.want)
		}
	}
}
