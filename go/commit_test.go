package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	rocketmq "github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
)

// TestSettledCallbacksAreAwaitedAtClose: a callback whose messages are all
// settled counts as finishing until it returns, and close's wait
// (awaitSettled) does not end while one is finishing.
func TestSettledCallbacksAreAwaitedAtClose(t *testing.T) {
	st := &consumerState{
		ready:   make(chan *delivery, 4),
		window:  &window{free: 4},
		done:    make(chan struct{}),
		touched: map[primitive.MessageQueue]string{},
	}
	q := &primitive.MessageQueue{Topic: "T", BrokerName: "b", QueueId: 2}
	msgs := []*primitive.MessageExt{
		{Message: primitive.Message{Topic: "T", Queue: q}, StoreHost: "127.0.0.1:1"},
		{Message: primitive.Message{Topic: "T", Queue: q}, StoreHost: "127.0.0.1:1"},
	}
	result := make(chan consumer.ConsumeResult, 1)
	go func() {
		r, _ := st.consume(context.Background(), msgs...)
		result <- r
	}()
	for range msgs {
		d := <-st.ready
		d.h.settled(&st.finishing)
	}
	if r := <-result; r != consumer.ConsumeSuccess {
		t.Fatalf("consume returned %v", r)
	}
	if n := st.finishing.Load(); n != 0 {
		t.Fatalf("finishing is %d after the callback returned", n)
	}
	if addr := st.touched[*q]; addr != "127.0.0.1:1" {
		t.Fatalf("the callback's queue was not recorded: %v", st.touched)
	}

	// a settled callback that has not returned yet holds close's wait
	st.finishing.Add(1)
	go func() {
		time.Sleep(600 * time.Millisecond)
		st.finishing.Add(-1)
	}()
	start := time.Now()
	st.awaitSettled(start)
	if d := time.Since(start); d < 600*time.Millisecond || d > 2*time.Second {
		t.Fatalf("awaitSettled took %v; the callback returned after 600ms", d)
	}
	start = time.Now()
	st.awaitSettled(start)
	if d := time.Since(start); d < settleGrace || d > settleGrace+time.Second {
		t.Fatalf("awaitSettled with nothing finishing took %v, want about %v", d, settleGrace)
	}
}

// TestOffsetsAreCommittedWithAnswers reads the offset table of a real SDK
// push consumer (the shape commit.go relies on) and commits an offset of
// its own with UPDATE_CONSUMER_OFFSET, then reads it back from the broker.
func TestOffsetsAreCommittedWithAnswers(t *testing.T) {
	topic := fmt.Sprintf("GoCommit%d", time.Now().UnixNano())
	group := "GoCommitG" + strconv.FormatInt(time.Now().UnixNano(), 36)
	p := devProducer(t, topic, "GoCommitP")
	r, err := p.SendSync(context.Background(), primitive.NewMessage(topic, []byte("one")))
	if err != nil {
		t.Fatalf("send: %v", err)
	}
	c, err := rocketmq.NewPushConsumer(consumer.WithNameServer([]string{devNameServer}),
		consumer.WithGroupName(group), consumer.WithInstance(topic),
		consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan *primitive.MessageExt, 1)
	err = c.Subscribe(topic, consumer.MessageSelector{}, func(_ context.Context, ms ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		for _, m := range ms {
			select {
			case got <- m:
			default:
			}
		}
		return consumer.ConsumeSuccess, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Shutdown() }()
	var m *primitive.MessageExt
	select {
	case m = <-got:
	case <-time.After(60 * time.Second):
		t.Fatal("no message consumed")
	}
	q := *r.MessageQueue
	var offsets map[primitive.MessageQueue]int64
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var ok bool
		if offsets, ok = sdkOffsets(c); !ok {
			t.Fatal("the SDK's offset table cannot be read (its shape changed): commit.go")
		}
		if offsets[q] == r.QueueOffset+1 || time.Now().After(deadline) {
			break
		}
	}
	if offsets[q] != r.QueueOffset+1 {
		t.Fatalf("offset table %v: want %d for %v", offsets, r.QueueOffset+1, q)
	}

	st := &consumerState{group: group}
	const mark = 12345 // an offset the SDK never writes
	if err := st.commitOffset(m.StoreHost, q, mark, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	resp, err := remotingRequest("broker", m.StoreHost, 14, map[string]string{ // QUERY_CONSUMER_OFFSET
		"consumerGroup": group, "topic": q.Topic, "queueId": strconv.Itoa(q.QueueId)}, nil, primitive.Credentials{}, 5*time.Second)
	if err != nil || resp.code != 0 || resp.ext["offset"] != strconv.Itoa(mark) {
		t.Fatalf("committed offset: %+v, %v; want %d", resp, err, mark)
	}

	// a broker that refuses the commit (no such group: SUBSCRIPTION_GROUP_NOT_EXIST)
	// is an error naming the refusal, not a silent success
	nobody := &consumerState{group: group + "-none"}
	err = nobody.commitOffset(m.StoreHost, q, mark, 5*time.Second)
	if err == nil || !strings.Contains(err.Error(), "refused the commit: CODE 26") {
		t.Fatalf("commit for a group the broker does not know: %v, want a refusal", err)
	}
}
