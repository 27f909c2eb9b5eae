// Benchmark driver: the RocketMQ Go SDK (rocketmq-client-go/v2 v2.1.2) used
// directly, the native reference for rmq_native (which wraps the same SDK).
//
// Usage: bench-go '<spec JSON>'   (see benchmarks/README in benchmarks/run.py)
// Prints one JSON line: {"ok":true,"n":..,"elapsed":..,"metrics":{..}} or {"ok":false,"error":".."}.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/admin"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"github.com/apache/rocketmq-client-go/v2/rlog"
)

type Spec struct {
	Workload string   `json:"workload"`
	NS       string   `json:"ns"`
	Broker   string   `json:"broker"`
	Topic    string   `json:"topic"`
	Topics   []string `json:"topics"`
	Queues   int      `json:"queues"`
	Group    string   `json:"group"`
	Count    int      `json:"count"`
	Size     int      `json:"size"`
	Threads  int      `json:"threads"`
	Inflight int      `json:"inflight"`
	Batch    int      `json:"batch"`
	Rate     int      `json:"rate"`
	Duration float64  `json:"duration"`
	MaxTime  float64  `json:"max_time"`
	// drain_part (one of several consumer processes of one group)
	Idle      float64 `json:"idle"`       // stop after this many seconds without a message
	FirstWait float64 `json:"first_wait"` // ... or without any message at all
	Barrier   bool    `json:"barrier"`    // print READY, start on a line from stdin
}

type Result struct {
	OK      bool               `json:"ok"`
	Error   string             `json:"error,omitempty"`
	N       int64              `json:"n"`
	Elapsed float64            `json:"elapsed"`
	Errors  int64              `json:"errors"`
	Metrics map[string]float64 `json:"metrics"`
	// PeakRSSKiB is this process's own peak RSS (VmHWM): the orchestrator's
	// wait4 figure would include the pages its fork copied before the exec.
	PeakRSSKiB int64 `json:"peak_rss_kib,omitempty"`
}

// peakRSSKiB reads VmHWM from /proc/self/status (0 where there is none).
func peakRSSKiB() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			return n
		}
	}
	return 0
}

func fail(err error) {
	out, _ := json.Marshal(Result{OK: false, Error: err.Error()})
	fmt.Println(string(out))
	os.Exit(1)
}

func body(size int) []byte {
	b := make([]byte, size)
	for i := range b {
		b[i] = byte('a' + i%26)
	}
	return b
}

func newProducer(s Spec) rocketmq.Producer {
	p, err := rocketmq.NewProducer(
		producer.WithNsResolver(primitive.NewPassthroughResolver([]string{s.NS})),
		producer.WithGroupName("bench_go_producer"),
		producer.WithInstanceName(fmt.Sprintf("bench-go-%d", os.Getpid())),
		producer.WithRetry(2),
		producer.WithSendMsgTimeout(3*time.Second),
	)
	if err != nil {
		fail(err)
	}
	if err := p.Start(); err != nil {
		fail(err)
	}
	return p
}

func maxTime(s Spec) time.Duration {
	if s.MaxTime <= 0 {
		return time.Hour
	}
	return time.Duration(s.MaxTime * float64(time.Second))
}

// warm sends a few messages so routes and connections exist before timing.
func warm(p rocketmq.Producer, s Spec) {
	for i := 0; i < 20; i++ {
		p.SendSync(context.Background(), primitive.NewMessage(s.Topic, body(s.Size)))
	}
}

func sendSync(s Spec, threads int) Result {
	p := newProducer(s)
	defer p.Shutdown()
	warm(p, s)
	var n, errs int64
	deadline := time.Now().Add(maxTime(s))
	start := time.Now()
	var wg sync.WaitGroup
	b := body(s.Size)
	for t := 0; t < threads; t++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				if atomic.AddInt64(&n, 1) > int64(s.Count) || time.Now().After(deadline) {
					atomic.AddInt64(&n, -1)
					return
				}
				if _, err := p.SendSync(context.Background(), primitive.NewMessage(s.Topic, b)); err != nil {
					atomic.AddInt64(&errs, 1)
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(start).Seconds()
	ok := n - errs
	return Result{OK: true, N: ok, Elapsed: el, Errors: errs, Metrics: map[string]float64{"rate": float64(ok) / el}}
}

func sendAsync(s Spec) Result {
	p := newProducer(s)
	defer p.Shutdown()
	warm(p, s)
	sem := make(chan struct{}, s.Inflight)
	var done, errs int64
	var wg sync.WaitGroup
	deadline := time.Now().Add(maxTime(s))
	b := body(s.Size)
	start := time.Now()
	sent := 0
	for sent < s.Count && time.Now().Before(deadline) {
		sem <- struct{}{}
		wg.Add(1)
		err := p.SendAsync(context.Background(), func(ctx context.Context, r *primitive.SendResult, err error) {
			if err != nil {
				atomic.AddInt64(&errs, 1)
			} else {
				atomic.AddInt64(&done, 1)
			}
			<-sem
			wg.Done()
		}, primitive.NewMessage(s.Topic, b))
		if err != nil {
			atomic.AddInt64(&errs, 1)
			<-sem
			wg.Done()
		}
		sent++
	}
	wg.Wait()
	el := time.Since(start).Seconds()
	return Result{OK: true, N: done, Elapsed: el, Errors: errs, Metrics: map[string]float64{"rate": float64(done) / el}}
}

func sendBatch(s Spec) Result {
	p := newProducer(s)
	defer p.Shutdown()
	warm(p, s)
	b := body(s.Size)
	var n, errs int64
	deadline := time.Now().Add(maxTime(s))
	start := time.Now()
	for n < int64(s.Count) && time.Now().Before(deadline) {
		msgs := make([]*primitive.Message, s.Batch)
		for i := range msgs {
			msgs[i] = primitive.NewMessage(s.Topic, b)
		}
		if _, err := p.SendSync(context.Background(), msgs...); err != nil {
			errs++
		} else {
			n += int64(s.Batch)
		}
	}
	el := time.Since(start).Seconds()
	return Result{OK: true, N: n, Elapsed: el, Errors: errs, Metrics: map[string]float64{"rate": float64(n) / el}}
}

// preload fills a topic with Count messages as fast as possible (batches of 32, 8 goroutines).
func preload(s Spec) Result {
	p := newProducer(s)
	defer p.Shutdown()
	b := body(s.Size)
	var n, errs int64
	batches := (s.Count + 31) / 32
	var next int64 = -1
	var wg sync.WaitGroup
	start := time.Now()
	for t := 0; t < 8; t++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := atomic.AddInt64(&next, 1)
				if i >= int64(batches) {
					return
				}
				k := 32
				if rest := s.Count - int(i)*32; rest < k {
					k = rest
				}
				msgs := make([]*primitive.Message, k)
				for j := range msgs {
					msgs[j] = primitive.NewMessage(s.Topic, b)
				}
				var err error
				for try := 0; try < 5; try++ {
					if _, err = p.SendSync(context.Background(), msgs...); err == nil {
						break
					}
					time.Sleep(200 * time.Millisecond)
				}
				if err != nil {
					atomic.AddInt64(&errs, 1)
				} else {
					atomic.AddInt64(&n, int64(k))
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(start).Seconds()
	if errs > 0 {
		return Result{OK: false, Error: fmt.Sprintf("preload: %d batches failed", errs), N: n}
	}
	return Result{OK: true, N: n, Elapsed: el, Metrics: map[string]float64{"rate": float64(n) / el}}
}

func newConsumer(s Spec, from consumer.ConsumeFromWhere) rocketmq.PushConsumer {
	c, err := rocketmq.NewPushConsumer(
		consumer.WithNsResolver(primitive.NewPassthroughResolver([]string{s.NS})),
		consumer.WithGroupName(s.Group),
		consumer.WithInstance(fmt.Sprintf("bench-go-c-%d", os.Getpid())),
		consumer.WithConsumeFromWhere(from),
	)
	if err != nil {
		fail(err)
	}
	return c
}

func drain(s Spec) Result {
	c := newConsumer(s, consumer.ConsumeFromFirstOffset)
	var n int64
	var first, last atomic.Int64
	done := make(chan struct{})
	var once sync.Once
	err := c.Subscribe(s.Topic, consumer.MessageSelector{}, func(ctx context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		now := time.Now().UnixNano()
		first.CompareAndSwap(0, now)
		if atomic.AddInt64(&n, int64(len(msgs))) >= int64(s.Count) {
			last.CompareAndSwap(0, now)
			once.Do(func() { close(done) })
		}
		return consumer.ConsumeSuccess, nil
	})
	if err != nil {
		fail(err)
	}
	t0 := time.Now()
	if err := c.Start(); err != nil {
		fail(err)
	}
	select {
	case <-done:
	case <-time.After(maxTime(s)):
	}
	end := last.Load()
	if end == 0 {
		end = time.Now().UnixNano()
	}
	got := atomic.LoadInt64(&n)
	c.Shutdown()
	if first.Load() == 0 {
		return Result{OK: false, Error: "no message received", N: 0}
	}
	el := float64(end-first.Load()) / 1e9
	return Result{OK: true, N: got, Elapsed: el, Metrics: map[string]float64{
		"rate": float64(got) / el, "first_ms": float64(first.Load()-t0.UnixNano()) / 1e6}}
}

func latency(s Spec) Result {
	// from the first offset: with "last", a new group fixes each queue's start
	// at its first pull and skips what was stored on that queue just before
	c := newConsumer(s, consumer.ConsumeFromFirstOffset)
	var mu sync.Mutex
	var lats []float64
	var warmSeen atomic.Bool
	err := c.Subscribe(s.Topic, consumer.MessageSelector{}, func(ctx context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		now := time.Now().UnixNano()
		for _, m := range msgs {
			if len(m.Body) < 21 {
				continue
			}
			if m.Body[0] == 'W' {
				warmSeen.Store(true)
				continue
			}
			sent, err := strconv.ParseInt(string(m.Body[1:20]), 10, 64)
			if err == nil {
				mu.Lock()
				lats = append(lats, float64(now-sent)/1e6)
				mu.Unlock()
			}
		}
		return consumer.ConsumeSuccess, nil
	})
	if err != nil {
		fail(err)
	}
	if err := c.Start(); err != nil {
		fail(err)
	}
	defer c.Shutdown()
	p := newProducer(s)
	defer p.Shutdown()
	b := body(s.Size)
	// warm up until the consumer sees messages
	wdeadline := time.Now().Add(30 * time.Second)
	for !warmSeen.Load() && time.Now().Before(wdeadline) {
		w := append([]byte(nil), b...)
		w[0] = 'W'
		p.SendSync(context.Background(), primitive.NewMessage(s.Topic, w))
		time.Sleep(50 * time.Millisecond)
	}
	if !warmSeen.Load() {
		return Result{OK: false, Error: "consumer received nothing within 30 s"}
	}
	total := int(float64(s.Rate) * s.Duration)
	interval := time.Second / time.Duration(s.Rate)
	start := time.Now()
	var errs int64
	for i := 0; i < total; i++ {
		due := start.Add(time.Duration(i) * interval)
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
		m := append([]byte(nil), b...)
		copy(m, fmt.Sprintf("T%019d", time.Now().UnixNano()))
		if err := p.SendAsync(context.Background(), func(ctx context.Context, r *primitive.SendResult, err error) {
			if err != nil {
				atomic.AddInt64(&errs, 1)
			}
		}, primitive.NewMessage(s.Topic, m)); err != nil {
			errs++
		}
	}
	sendEl := time.Since(start).Seconds()
	wait := time.Now().Add(10 * time.Second)
	for time.Now().Before(wait) {
		mu.Lock()
		got := len(lats)
		mu.Unlock()
		if int64(got)+atomic.LoadInt64(&errs) >= int64(total) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	sort.Float64s(lats)
	if len(lats) == 0 {
		return Result{OK: false, Error: "no latency samples"}
	}
	pct := func(q float64) float64 { return lats[int(q*float64(len(lats)-1))] }
	return Result{OK: true, N: int64(len(lats)), Elapsed: sendEl, Errors: errs, Metrics: map[string]float64{
		"p50": pct(0.50), "p99": pct(0.99), "max": lats[len(lats)-1], "lost": float64(total - len(lats)),
		"achieved_rate": float64(total) / sendEl}}
}

// waitBarrier tells the orchestrator this process is ready and waits for its go
// line, so several processes start their clients at the same moment.
func waitBarrier(s Spec) {
	if !s.Barrier {
		return
	}
	fmt.Println("READY")
	bufio.NewReader(os.Stdin).ReadString('\n')
}

func seconds(v, def float64) time.Duration {
	if v <= 0 {
		v = def
	}
	return time.Duration(v * float64(time.Second))
}

// drainPart is one of several consumer processes of one group draining a
// backlog: it counts what it receives and stops after s.Idle seconds without a
// message (s.FirstWait if none came at all). The orchestrator adds up the
// processes' counts and takes the span from the first to the last message.
func drainPart(s Spec) Result {
	c := newConsumer(s, consumer.ConsumeFromFirstOffset)
	var n int64
	var first, last atomic.Int64
	err := c.Subscribe(s.Topic, consumer.MessageSelector{}, func(ctx context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		now := time.Now().UnixNano()
		first.CompareAndSwap(0, now)
		atomic.AddInt64(&n, int64(len(msgs)))
		last.Store(now)
		return consumer.ConsumeSuccess, nil
	})
	if err != nil {
		fail(err)
	}
	waitBarrier(s)
	t0 := time.Now()
	if err := c.Start(); err != nil {
		fail(err)
	}
	idle, firstWait, deadline := seconds(s.Idle, 2), seconds(s.FirstWait, 10), t0.Add(maxTime(s))
	for time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		if l := last.Load(); l != 0 && time.Since(time.Unix(0, l)) >= idle {
			break
		}
		if last.Load() == 0 && time.Since(t0) >= firstWait {
			break
		}
	}
	c.Shutdown()
	got := atomic.LoadInt64(&n)
	m := map[string]float64{"start_t": float64(t0.UnixNano()) / 1e9}
	if got > 0 {
		m["first_t"] = float64(first.Load()) / 1e9
		m["last_t"] = float64(last.Load()) / 1e9
	}
	return Result{OK: true, N: got, Elapsed: time.Since(t0).Seconds(), Metrics: m}
}

// topicsSend is one producer sending to many topics (s.Topics): first one sync
// send to each topic in turn, timing it (route lookup at the name server plus
// the send), then sync sends from s.Threads goroutines round-robin over all
// topics for s.MaxTime.
func topicsSend(s Spec) Result {
	p := newProducer(s)
	defer p.Shutdown()
	warm(p, s)
	if len(s.Topics) == 0 {
		return Result{OK: false, Error: "no topics"}
	}
	b := body(s.Size)
	var errs int64
	firsts := make([]float64, 0, len(s.Topics))
	for _, t := range s.Topics {
		t0 := time.Now()
		if _, err := p.SendSync(context.Background(), primitive.NewMessage(t, b)); err != nil {
			errs++
			continue
		}
		firsts = append(firsts, float64(time.Since(t0).Nanoseconds())/1e6)
	}
	if len(firsts) == 0 {
		return Result{OK: false, Error: "every first send failed"}
	}
	threads := s.Threads
	if threads <= 0 {
		threads = 4
	}
	var n, next int64
	deadline := time.Now().Add(maxTime(s))
	start := time.Now()
	var wg sync.WaitGroup
	for t := 0; t < threads; t++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				i := atomic.AddInt64(&next, 1)
				topic := s.Topics[int(i)%len(s.Topics)]
				if _, err := p.SendSync(context.Background(), primitive.NewMessage(topic, b)); err != nil {
					atomic.AddInt64(&errs, 1)
				} else {
					atomic.AddInt64(&n, 1)
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(start).Seconds()
	sort.Float64s(firsts)
	pct := func(q float64) float64 { return firsts[int(q*float64(len(firsts)-1))] }
	return Result{OK: true, N: n, Elapsed: el, Errors: errs, Metrics: map[string]float64{
		"rate": float64(n) / el, "first_p50": pct(0.5), "first_max": firsts[len(firsts)-1]}}
}

func createTopics(s Spec) Result {
	a, err := admin.NewAdmin(admin.WithResolver(primitive.NewPassthroughResolver([]string{s.NS})))
	if err != nil {
		fail(err)
	}
	defer a.Close()
	q := s.Queues
	if q <= 0 {
		q = 8
	}
	for _, t := range s.Topics {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := a.CreateTopic(ctx, admin.WithTopicCreate(t), admin.WithBrokerAddrCreate(s.Broker),
			admin.WithReadQueueNums(q), admin.WithWriteQueueNums(q))
		cancel()
		if err != nil {
			fail(fmt.Errorf("create topic %s: %w", t, err))
		}
	}
	return Result{OK: true, N: int64(len(s.Topics))}
}

func main() {
	rlog.SetLogLevel("error")
	if len(os.Args) != 2 {
		fail(fmt.Errorf("usage: bench-go '<spec json>'"))
	}
	var s Spec
	if err := json.Unmarshal([]byte(os.Args[1]), &s); err != nil {
		fail(err)
	}
	if s.Size <= 0 {
		s.Size = 1024
	}
	if s.Count <= 0 {
		s.Count = 1 << 30
	}
	var r Result
	switch s.Workload {
	case "sync1":
		r = sendSync(s, 1)
	case "sync8":
		r = sendSync(s, s.Threads)
	case "async":
		r = sendAsync(s)
	case "batch":
		r = sendBatch(s)
	case "drain":
		r = drain(s)
	case "latency":
		r = latency(s)
	case "drain_part":
		r = drainPart(s)
	case "topics":
		r = topicsSend(s)
	case "preload":
		r = preload(s)
	case "create_topics":
		r = createTopics(s)
	default:
		fail(fmt.Errorf("unknown workload %q", s.Workload))
	}
	r.PeakRSSKiB = peakRSSKiB()
	out, _ := json.Marshal(r)
	fmt.Println(string(out))
	if !r.OK {
		os.Exit(1)
	}
}
