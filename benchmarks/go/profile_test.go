package main

// Go-side profile harness for benchmarks/PROFILE.md (run by benchmarks/profile.py):
//
//	BENCH_NS=127.0.0.1:17876 BENCH_TOPIC=t go test -run x -bench . -benchmem -cpuprofile cpu.out
//
// BenchmarkSDKSendSync*: the SDK call rmq_native makes for Producer.send
// (SendSync with a per-call context timeout), without Python and cgo.
// BenchmarkBindingPrep: the per-message work rmq_native's Go layer adds around
// that call (copying the C buffers into Go, a unique message id, a context,
// the handle lookup and result copy), measured in isolation without network.

import (
	"context"
	"fmt"
	"github.com/apache/rocketmq-client-go/v2/rlog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
)

func benchProducer(b *testing.B) (rocketmq.Producer, string) {
	ns, topic := os.Getenv("BENCH_NS"), os.Getenv("BENCH_TOPIC")
	if ns == "" || topic == "" {
		b.Skip("set BENCH_NS and BENCH_TOPIC")
	}
	p, err := rocketmq.NewProducer(
		producer.WithNsResolver(primitive.NewPassthroughResolver([]string{ns})),
		producer.WithGroupName("bench_go_profile"),
		producer.WithInstanceName(fmt.Sprintf("bench-go-prof-%d-%d", os.Getpid(), time.Now().UnixNano())),
		producer.WithRetry(2),
	)
	if err != nil {
		b.Fatal(err)
	}
	if err := p.Start(); err != nil {
		b.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		p.SendSync(context.Background(), primitive.NewMessage(topic, body(1024)))
	}
	return p, topic
}

func sendOne(p rocketmq.Producer, topic string, payload []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_, err := p.SendSync(ctx, primitive.NewMessage(topic, payload))
	return err
}

func BenchmarkSDKSendSync1(b *testing.B) {
	p, topic := benchProducer(b)
	defer p.Shutdown()
	payload := body(1024)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := sendOne(p, topic, payload); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSDKSendSync8(b *testing.B) {
	p, topic := benchProducer(b)
	defer p.Shutdown()
	payload := body(1024)
	b.SetParallelism(4) // 4 x GOMAXPROCS(2) = 8 goroutines
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := sendOne(p, topic, payload); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkSDKSendBatch32(b *testing.B) {
	p, topic := benchProducer(b)
	defer p.Shutdown()
	payload := body(1024)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		msgs := make([]*primitive.Message, 32)
		for j := range msgs {
			msgs[j] = primitive.NewMessage(topic, payload)
		}
		if _, err := p.SendSync(context.Background(), msgs...); err != nil {
			b.Fatal(err)
		}
	}
}

// What rmq_native's rmq_producer_send does per call besides SendSync.
func BenchmarkBindingPrep(b *testing.B) {
	var mu sync.Mutex
	handles := map[uint64]interface{}{1: struct{}{}}
	var rw sync.RWMutex
	cbody := body(1024)
	topic := []byte("bench_topic")
	res := &primitive.SendResult{MsgID: primitive.CreateUniqID(), OffsetMsgID: "7F00000100002A9F0000000000001234",
		MessageQueue: &primitive.MessageQueue{BrokerName: "broker-a"}}
	var out [4][128]byte
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		mu.Lock() // lookup(h)
		_ = handles[1]
		mu.Unlock()
		t := string(topic)                  // C.GoStringN(topic)
		bb := append([]byte(nil), cbody...) // C.GoBytes(body)
		msg := primitive.NewMessage(t, bb)
		msg.WithProperty(primitive.PropertyUniqueClientMessageIdKeyIndex, primitive.CreateUniqID())
		rw.RLock()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		_ = ctx
		cancel()
		rw.RUnlock()
		copy(out[0][:], res.MsgID) // fillResult
		copy(out[1][:], res.OffsetMsgID)
		copy(out[2][:], res.MessageQueue.BrokerName)
	}
}

func init() { rlog.SetLogLevel("error") }
