package main

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	rocketmq "github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
)

// devNameServer is the shared dev broker's name server (python -m
// rmq_native.devbroker start). The test needs a real broker; it is skipped
// only when none is reachable there (.ci/run starts one before running
// `go test -race`).
const devNameServer = "127.0.0.1:9876"

// devProducer starts an SDK producer on the dev broker, shut down when the
// test ends; the test is skipped when no dev broker is reachable.
func devProducer(t *testing.T, instance, group string) rocketmq.Producer {
	t.Helper()
	conn, err := net.DialTimeout("tcp", devNameServer, time.Second)
	if err != nil {
		t.Skipf("no dev broker at %s: %v", devNameServer, err)
	}
	_ = conn.Close()
	p, err := rocketmq.NewProducer(producer.WithNameServer([]string{devNameServer}),
		producer.WithInstanceName(instance), producer.WithGroupName(group))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Shutdown() })
	return p
}

// TestCloseUnderTraffic closes consumers while messages keep arriving and
// the caller is still settling, to be run with -race: the close order
// (stop pulling, wait for settled callbacks and pulls in flight, commit the
// offsets, shut the SDK down, then release the callbacks) must leave no
// data race and no panic.
func TestCloseUnderTraffic(t *testing.T) {
	topic := fmt.Sprintf("GoCloseRace%d", time.Now().UnixNano())
	p := devProducer(t, topic, "GoCloseRaceP")
	if _, err := p.SendSync(context.Background(), primitive.NewMessage(topic, []byte("first"))); err != nil {
		t.Fatalf("send: %v", err)
	}
	stop := make(chan struct{})
	var sent sync.WaitGroup
	sent.Add(1)
	go func() {
		defer sent.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			_, _ = p.SendSync(context.Background(), primitive.NewMessage(topic, []byte(fmt.Sprint(i))))
			time.Sleep(2 * time.Millisecond)
		}
	}()
	defer func() { close(stop); sent.Wait() }()

	for round := 0; round < 3; round++ {
		st, err := newConsumer(&consumerConfig{
			NameServer: devNameServer, Group: fmt.Sprintf("%s_g%d", topic, round), FromWhere: "first",
			MaxInflight: 4, Subscriptions: []subscription{{Topic: topic}},
		})
		if err != nil {
			t.Fatal(err)
		}
		received := 0
		end := time.Now().Add(4 * time.Second)
		for time.Now().Before(end) {
			batch := takeBatch(st.ready, 8, 100*time.Millisecond, st.done)
			for _, d := range batch {
				received++
				st.settle(d, settlement{kind: 0}) // ack
			}
			st.window.give(len(batch))
		}
		// some taken and never settled while closing
		_ = takeBatch(st.ready, 8, 100*time.Millisecond, st.done)
		st.close()
		if received == 0 {
			t.Fatalf("round %d: no message received", round)
		}
	}
}
