package main

import (
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
)

// TestMessageIDsHaveTheJavaLayout: 32 upper-case hex digits, the SDK's
// address and process, the milliseconds since the month began, a counter
// that goes up by one; unique across goroutines.
func TestMessageIDsHaveTheJavaLayout(t *testing.T) {
	sdk := primitive.CreateUniqID()
	now := time.Now()
	id, next := newMessageID(), newMessageID()
	if len(id) != 32 || id[:20] != sdk[:20] {
		t.Fatalf("id %q, SDK's %q: want 32 digits with the SDK's first 20", id, sdk)
	}
	for _, c := range id {
		if !('0' <= c && c <= '9' || 'A' <= c && c <= 'F') {
			t.Fatalf("id %q: not upper-case hex", id)
		}
	}
	ms, _ := strconv.ParseUint(id[20:28], 16, 32)
	start := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.Local)
	if d := time.Duration(int64(ms)-now.Sub(start).Milliseconds()) * time.Millisecond; d < -time.Second || d > time.Second {
		t.Errorf("id %q: time field %d ms since the month began, %v off", id, ms, d)
	}
	a, _ := strconv.ParseUint(id[28:], 16, 16)
	b, _ := strconv.ParseUint(next[28:], 16, 16)
	if uint16(a+1) != uint16(b) {
		t.Errorf("counters %d then %d", a, b)
	}
	seen := sync.Map{}
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 10000; i++ {
				if _, dup := seen.LoadOrStore(newMessageID(), true); dup {
					t.Error("duplicate id")
					return
				}
			}
		}()
	}
	wg.Wait()
}

func BenchmarkMessageID(b *testing.B) {
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		_ = newMessageID()
	}
}

func BenchmarkSDKMessageID(b *testing.B) {
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		_ = primitive.CreateUniqID()
	}
}
