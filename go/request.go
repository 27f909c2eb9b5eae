package main

/*
#include <stdlib.h>
#include "rmq_native.h"
*/
import "C"

import (
	"context"
	"reflect"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/apache/rocketmq-client-go/v2/primitive"
)

// Request/reply (RocketMQ 4.6+ RPC): the requester's SDK sends the request
// with CORRELATION_ID, REPLY_TO_CLIENT (its client id) and TTL properties;
// the broker adds CLUSTER; the replier sends a message of type "reply" to
// "<CLUSTER>_REPLY_TOPIC" (request code SEND_REPLY_MESSAGE) and the broker
// pushes it to the client named by REPLY_TO_CLIENT, whose SDK matches it by
// CORRELATION_ID. This is what the Java client's request() and
// MessageUtil.createReplyMessage do.

// requestOutcome is the outcome of one request.
type requestOutcome struct {
	token uint64
	reply *primitive.Message
	err   error
}

// requests holds a producer's finished requests until they are polled.
type requests struct {
	outcomes chan requestOutcome
	done     chan struct{} // closed when the producer closes
	once     sync.Once
	mu       sync.Mutex
	known    map[string]bool // topics whose broker knows this producer (registerForReplies)
}

var requestsOf sync.Map // *producerState -> *requests

func requestsFor(st *producerState) *requests {
	if r, ok := requestsOf.Load(st); ok {
		return r.(*requests)
	}
	r, _ := requestsOf.LoadOrStore(st, &requests{outcomes: make(chan requestOutcome, 256), done: make(chan struct{}),
		known: map[string]bool{}})
	return r.(*requests)
}

// registerForReplies makes sure the broker of topic knows the producer's
// client before its first request there: the broker pushes a reply only to
// a client registered by a heartbeat. The SDK (v2.1.2) sends that heartbeat
// only when the name server does not know the topic (the Java client: when
// the client has no route for it yet), so a first request to an existing
// topic waits up to 30 s for the periodic heartbeat and its reply is
// refused ("channel of <client> not found"). The SDK offers no public call
// for this: its client's exported methods are reached by reflection.
func (r *requests) registerForReplies(p interface{}, topic string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.known[topic] {
		return
	}
	defer func() { _ = recover() }() // another SDK version: the request still works, later
	v := reflect.ValueOf(p)
	for v.Kind() == reflect.Ptr || v.Kind() == reflect.Interface {
		v = v.Elem()
	}
	f := v.FieldByName("client")
	if !f.IsValid() {
		return
	}
	client := reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem()
	ns := client.MethodByName("GetNameSrv").Call(nil)[0]
	ns.MethodByName("UpdateTopicRouteInfo").Call([]reflect.Value{reflect.ValueOf(topic)})
	client.MethodByName("SendHeartbeatToAllBrokerWithLock").Call(nil)
	r.known[topic] = true
}

// endRequests drops the outcomes of a closing producer's requests; requests
// still waiting end at their timeout.
func endRequests(st *producerState) {
	if r, ok := requestsOf.LoadAndDelete(st); ok {
		r := r.(*requests)
		r.once.Do(func() { close(r.done) })
	}
}

// request runs one request and queues its outcome.
func (st *producerState) request(r *requests, token uint64, msg *primitive.Message, timeout time.Duration) {
	o := requestOutcome{token: token}
	defer func() {
		if p := recover(); p != nil {
			o.err = errf(C.RMQ_ERR_INTERNAL, "internal error (recovered panic): %v", p)
		}
		select {
		case r.outcomes <- o:
		case <-r.done:
		}
	}()
	r.registerForReplies(st.p, msg.Topic)
	o.reply, o.err = st.p.Request(context.Background(), timeout, msg)
	switch {
	case o.err != nil && strings.Contains(o.err.Error(), "wait reply message timeout"):
		o.err = errf(C.RMQ_ERR_TIMEOUT, "no reply to the request on topic %q within %v", msg.Topic, timeout)
	case o.err != nil:
		o.err = sendError(o.err, st, msg.Topic, timeout)
	case o.reply == nil:
		// v2.1.2 returns (nil, nil) at once when interceptors (trace) are on
		o.err = errf(C.RMQ_ERR_STATE, "request/reply does not work on a producer with trace on (SDK v2.1.2)")
	}
}

// rmq_producer_request: see rmq_native.h.
//
//export rmq_producer_request
func rmq_producer_request(h C.uint64_t, m *C.rmq_message, timeoutMs C.int32_t, token C.uint64_t) C.int32_t {
	return call(func() error {
		st, msg, err := preparedSend(h, m, false) // the request outlives the call
		if err != nil {
			return err
		}
		if msg.GetShardingKey() != "" || msg.GetProperty(primitive.PropertyDelayTimeLevel) != "" ||
			msg.GetProperty("TIMER_DELIVER_MS") != "" {
			return errf(C.RMQ_ERR_INVALID_ARGUMENT, "a request cannot be delayed or sharded")
		}
		st.mu.RLock()
		defer st.mu.RUnlock()
		if err := st.canSend(); err != nil {
			return err
		}
		r := requestsFor(st)
		go st.request(r, uint64(token), msg, st.timeoutFor(timeoutMs))
		return nil
	})
}

// rmq_producer_poll_replies: see rmq_native.h.
//
//export rmq_producer_poll_replies
func rmq_producer_poll_replies(h C.uint64_t, maxReplies C.int32_t, timeoutMs C.int32_t,
	out **C.uint8_t, outLen *C.int64_t, outCount *C.int32_t) C.int32_t {
	return call(func() error {
		if out == nil || outLen == nil || outCount == nil {
			return errf(C.RMQ_ERR_INVALID_ARGUMENT, "output pointers must not be NULL")
		}
		*out, *outLen, *outCount = nil, 0, 0
		st, err := handleOf[*producerState](h, "producer")
		if err != nil {
			return err
		}
		if maxReplies <= 0 || timeoutMs < 0 {
			return errf(C.RMQ_ERR_INVALID_ARGUMENT, "max_replies must be > 0 and timeout_ms >= 0")
		}
		v, ok := requestsOf.Load(st) // created by the first request; never here (a closing producer would leak it)
		if !ok {
			time.Sleep(min(time.Duration(timeoutMs)*time.Millisecond, 20*time.Millisecond))
			return nil
		}
		r := v.(*requests)
		done := takeBatch(r.outcomes, int(maxReplies), time.Duration(timeoutMs)*time.Millisecond, r.done)
		var buf []byte
		for _, o := range done {
			if o.err != nil {
				buf = encodeReply(buf, o.token, classify(o.err), o.err.Error(), nil)
			} else {
				buf = encodeReply(buf, o.token, 0, "", replyExt(o.reply))
			}
		}
		export(buf, out, outLen)
		*outCount = C.int32_t(len(done))
		return nil
	})
}

// replyExt wraps a reply (the SDK hands over its Message part) for
// encodeReply.
func replyExt(m *primitive.Message) *primitive.MessageExt {
	ext := &primitive.MessageExt{}
	ext.Topic, ext.Body, ext.Queue = m.Topic, m.Body, m.Queue
	ext.WithProperties(m.GetProperties())
	ext.MsgId = m.GetProperty(primitive.PropertyUniqueClientMessageIdKeyIndex)
	return ext
}

// rmq_consumer_reply: see rmq_native.h.
//
//export rmq_consumer_reply
func rmq_consumer_reply(consumerH C.uint64_t, deliveryID C.uint64_t, producerH C.uint64_t, m *C.rmq_message,
	timeoutMs C.int32_t, out *C.rmq_send_result) C.int32_t {
	return call(func() error {
		if out == nil || m == nil {
			return errf(C.RMQ_ERR_INVALID_ARGUMENT, "message and result must not be NULL")
		}
		cst, err := handleOf[*consumerState](consumerH, "consumer")
		if err != nil {
			return err
		}
		cst.mu.Lock()
		d, ok := cst.pending[uint64(deliveryID)]
		cst.mu.Unlock()
		if !ok {
			return errf(C.RMQ_ERR_STATE, "reply before settling the request: delivery %d is settled or unknown", uint64(deliveryID))
		}
		cluster := d.msg.GetProperty(primitive.PropertyCluster)
		replyTo := d.msg.GetProperty(primitive.PropertyMessageReplyToClient)
		correlation := d.msg.GetProperty(primitive.PropertyCorrelationID)
		if cluster == "" || replyTo == "" || correlation == "" {
			return errf(C.RMQ_ERR_INVALID_ARGUMENT, "message %s is not a request (no CLUSTER, REPLY_TO_CLIENT or CORRELATION_ID property)", d.msg.MsgId)
		}
		st, err := handleOf[*producerState](producerH, "producer")
		if err != nil {
			return err
		}
		// the reply goes to the cluster's reply topic, whatever m->topic says
		topic := cluster + "_REPLY_TOPIC"
		ct := C.CString(topic)
		defer C.free(unsafe.Pointer(ct))
		rm := *m
		rm.topic, rm.topic_len = ct, C.int64_t(len(topic))
		msg, err := st.prepare(&rm, false)
		if err != nil {
			return err
		}
		msg.WithProperty(primitive.PropertyMsgType, "reply")
		msg.WithProperty(primitive.PropertyCorrelationID, correlation)
		msg.WithProperty(primitive.PropertyMessageReplyToClient, replyTo)
		msg.WithProperty(primitive.PropertyMessageTTL, d.msg.GetProperty(primitive.PropertyMessageTTL))
		st.mu.RLock()
		defer st.mu.RUnlock()
		if err := st.canSend(); err != nil {
			return err
		}
		res, err := st.sendSync(st.timeoutFor(timeoutMs), msg, "")
		if err != nil {
			hint := ""
			if strings.Contains(err.Error(), "push reply message fail") {
				// the broker knows no connection of that client: it closed or exited
				// (a consumer reading a topic's history meets old requests)
				hint = " (the requester is gone: it closed or exited)"
			}
			return &rmqError{code: classify(err),
				msg: "rmq_native: reply to " + d.msg.MsgId + ": " + strings.TrimPrefix(err.Error(), "rmq_native: ") + hint}
		}
		fillResult(out, res)
		return nil
	})
}
