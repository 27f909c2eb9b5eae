package main

/*
#include "rmq_native.h"
*/
import "C"

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/rlog"
)

// sendBackTimeout bounds one send-back request (the SDK uses 3 s).
const sendBackTimeout = 3 * time.Second

// orderlyPause is the pause before an orderly message nacked without a
// delay level is delivered again (the Java client's default).
const orderlyPause = time.Second

// prepare readies a message of the SDK for the caller and returns its topic
// as the broker knows it (with the namespace).
func (st *consumerState) prepare(m *primitive.MessageExt) string {
	// The SDK's expiry path (ConsumeTimeout) sends a message back unchecked
	// once its CONSUME_START_TIME is old; without the property it never does.
	m.RemoveProperty(primitive.PropertyConsumeStartTime)
	fullTopic := m.Topic
	if st.namespace != "" {
		// the SDK (v2.1.2) leaves the namespace on the topic
		m.Topic = strings.TrimPrefix(m.Topic, st.namespace+"%")
	}
	return fullTopic
}

// handOut gives messages of the handover h to rmq_consumer_poll, each as a
// delivery of its own, as many as the window has room for once it has room
// for one, and returns how many; 0 when the consumer closed first (the
// messages are redelivered by the broker).
func (st *consumerState) handOut(msgs []*primitive.MessageExt, h *handover) int {
	if st.closing.Load() {
		return 0
	}
	n := st.window.take(len(msgs), st.done)
	for _, m := range msgs[:n] {
		fullTopic := st.prepare(m)
		d := &delivery{id: st.nextID.Add(1), msg: m, fullTopic: fullTopic, h: h}
		st.ready <- d // never blocks: ready holds at most the window's messages
	}
	return n
}

// nacked works out a nack. It settles the message only once the broker
// confirmed the send-back (or, in broadcasting mode, when it is dropped
// after max_reconsume_times local redeliveries; see settleNack). Otherwise
// the message stays with its handover, its offset uncommitted, and is
// handed out again after the delay with reconsume_times + 1 (the Java
// client's "consume later"), unless the consumer closes first.
func (st *consumerState) nacked(d *delivery, s settlement) {
	m := d.msg
	if st.settleNack(m, d.fullTopic, s.delay) {
		d.h.settled(&st.finishing)
		return
	}
	select {
	case <-time.After(st.redeliveryDelay(m, s.delay)):
	case <-st.done:
		return
	}
	m.ReconsumeTimes++
	st.redeliver(d)
}

// redeliver hands a nacked message out again as a new delivery of its
// handover (the callback returns at close if the consumer closes first).
func (st *consumerState) redeliver(d *delivery) {
	if st.closing.Load() || st.window.take(1, st.done) == 0 {
		return
	}
	st.ready <- &delivery{id: st.nextID.Add(1), msg: d.msg, fullTopic: d.fullTopic, h: d.h}
}

// handBack is the callback's result for messages the caller did not settle
// because the consumer closed. The SDK has dropped the queue by then (close
// shuts it down before releasing the callbacks), so it neither commits nor
// sends anything back; in orderly mode reconsume_times is reset so that the
// SDK's dead-letter check can never fire.
func (st *consumerState) handBack(msgs []*primitive.MessageExt) consumer.ConsumeResult {
	if st.orderly {
		for _, m := range msgs {
			m.ReconsumeTimes = 0
		}
		return consumer.SuspendCurrentQueueAMoment
	}
	return consumer.ConsumeRetryLater
}

// settleNack reports whether a nacked message is settled: sent back with
// the broker's confirmation (clustering), dead-lettered with the broker's
// confirmation (orderly, after max_reconsume_times), or dropped
// (broadcasting, after max_reconsume_times).
func (st *consumerState) settleNack(m *primitive.MessageExt, fullTopic string, level int) bool {
	switch {
	case st.broadcasting:
		if m.ReconsumeTimes < st.maxReconsume() {
			return false
		}
		rlog.Warning(fmt.Sprintf("rmq_native: broadcasting consumer %s drops message %s of %s after %d redeliveries",
			st.group, m.MsgId, m.Topic, m.ReconsumeTimes), nil)
		return true
	case st.orderly:
		if st.maxReconsumeSet < 0 || m.ReconsumeTimes < st.maxReconsumeSet {
			return false
		}
		return st.sendBack(m, fullTopic, -1) // -1: straight to %DLQ%group
	default:
		return st.sendBack(m, fullTopic, level)
	}
}

// maxReconsume is the limit of broadcasting nacks and the limit sent with a
// send-back (-1 means 16, as in the SDK and the Java client).
func (st *consumerState) maxReconsume() int32 {
	if st.maxReconsumeSet < 0 {
		return 16
	}
	return st.maxReconsumeSet
}

// redeliveryDelay is the wait before a nacked message that was not settled
// is handed out again: the nack's delay level, else 1 s in orderly mode,
// else the broker's schedule (level 3 + reconsume_times).
func (st *consumerState) redeliveryDelay(m *primitive.MessageExt, level int) time.Duration {
	if level <= 0 {
		if st.orderly && !st.broadcasting {
			return orderlyPause
		}
		level = 3 + int(m.ReconsumeTimes)
	}
	return time.Duration(delayLevelMillis(level)) * time.Millisecond
}

// sendBack sends CONSUMER_SEND_MSG_BACK for a message to the broker that
// stored it, with the fields the Java client sends, and reports whether the
// broker confirmed it (the SDK's own send-back ignores the answer).
func (st *consumerState) sendBack(m *primitive.MessageExt, fullTopic string, level int) bool {
	ext := map[string]string{
		"group":             st.group,
		"offset":            strconv.FormatInt(m.CommitLogOffset, 10),
		"delayLevel":        strconv.Itoa(level),
		"originMsgId":       m.MsgId,
		"originTopic":       fullTopic,
		"unitMode":          "false",
		"maxReconsumeTimes": strconv.Itoa(int(st.maxReconsume())),
	}
	r, err := remotingRequest("broker", m.StoreHost, reqConsumerSendMsgBack, ext, nil, st.creds, sendBackTimeout)
	if err == nil && r.code != 0 {
		err = r.refusal("broker "+m.StoreHost, "the send-back")
	}
	if err != nil {
		rlog.Warning(fmt.Sprintf("rmq_native: nacked message %s of %s (group %s) stays with the consumer and is delivered again: %v",
			m.MsgId, m.Topic, st.group, err), nil)
		return false
	}
	return true
}

// checkSubscriptions asks a master broker to compile each SQL92
// subscription (CHECK_CLIENT_CONFIG), as the Java client does at start, so
// that a bad expression is refused when the consumer is created instead of
// failing every pull.
func checkSubscriptions(addrs []string, group string, cr primitive.Credentials, subs []subscription, fullTopic func(string) string) error {
	var sql []subscription
	for _, s := range subs {
		if strings.EqualFold(s.Type, "sql92") {
			sql = append(sql, s)
		}
	}
	if len(sql) == 0 {
		return nil
	}
	admin := &adminState{nameServers: addrs, timeout: 5 * time.Second, creds: cr}
	brokers, err := admin.masterBrokers("")
	if err != nil {
		return err
	}
	for _, s := range sql {
		body, _ := json.Marshal(map[string]interface{}{
			"clientId": "rmq_native-check", "group": group,
			"subscriptionData": map[string]interface{}{
				"topic": fullTopic(s.Topic), "subString": s.Expression, "expressionType": "SQL92",
				"classFilterMode": false, "tagsSet": []string{}, "codeSet": []int{}, "subVersion": time.Now().UnixMilli(),
			},
		})
		r, err := remotingRequest("broker", brokers[0], reqCheckClientConfig, map[string]string{}, body, cr, 5*time.Second)
		if err != nil {
			return err
		}
		if r.code != 0 {
			if r.code == respNoPermission {
				return errf(C.RMQ_ERR_AUTH, "broker %s refused to check the subscription to %q: CODE %d %s", brokers[0], s.Topic, r.code, r.remark)
			}
			return errf(C.RMQ_ERR_INVALID_ARGUMENT, "invalid sql92 expression %q for topic %q: the broker refused it: %s", s.Expression, s.Topic, r.remark)
		}
	}
	return nil
}

// faultAfter is how long a pull error must persist before
// rmq_consumer_poll reports it.
const faultAfter = 10 * time.Second

// watch checks every 2 s what the SDK only logs: a subscribed topic
// without a route while no broker creates topics automatically, or whose
// queues are all unreadable (the broker refuses pulls). Once a condition
// has lasted faultAfter, rmq_consumer_poll reports it (when it has no
// message to return) until it clears.
func (st *consumerState) watch(addrs []string, topics []string) {
	admin := &adminState{nameServers: addrs, timeout: 3 * time.Second, creds: st.creds}
	var since time.Time
	for {
		select {
		case <-st.done:
			return
		case <-time.After(2 * time.Second):
		}
		err := st.pullProblem(admin, topics)
		switch {
		case err == nil:
			since = time.Time{}
			st.fault.Store(nil)
		case since.IsZero():
			since = time.Now()
		case time.Since(since) >= faultAfter:
			st.fault.Store(err)
		}
	}
}

// pullProblem returns the first persistent reason why a subscribed topic
// cannot be pulled, or nil.
func (st *consumerState) pullProblem(admin *adminState, topics []string) *rmqError {
	for _, t := range topics {
		full := t
		if st.namespace != "" {
			full = st.namespace + "%" + t
		}
		code, body, ok := routeOf(admin, full)
		if !ok {
			return nil // the name server did not answer: the SDK reports that itself
		}
		if code == respTopicNotExist {
			if !st.noAutoCreate(admin) {
				continue // created with the first message sent
			}
			return errf(C.RMQ_ERR_NO_ROUTE, "topic %q has no route and the brokers do not create topics automatically: create it first", t)
		}
		if code != 0 {
			continue
		}
		// the name server's fastjson is not always standard JSON: find the
		// queues' permissions (only queue data carry a "perm")
		perms := permRe.FindAllSubmatch(body, -1)
		if len(perms) == 0 {
			continue
		}
		readable := false
		for _, m := range perms {
			n, _ := strconv.Atoi(string(m[1]))
			readable = readable || n&4 != 0
		}
		if !readable {
			return errf(C.RMQ_ERR_BROKER, "no broker lets consumers pull topic %q (no read permission: is the broker write-only?)", t)
		}
	}
	return nil
}

var permRe = regexp.MustCompile(`"perm":(\d+)`)

// routeOf asks the name servers for a topic's route.
func routeOf(admin *adminState, topic string) (int, []byte, bool) {
	for _, ns := range admin.nameServers {
		r, err := remotingRequest("name server", ns, reqGetRouteInfo, map[string]string{"topic": topic}, nil, primitive.Credentials{}, admin.timeout)
		if err == nil {
			return r.code, r.body, true
		}
	}
	return 0, nil, false
}

// noAutoCreate reports whether the master brokers answered that they do not
// create topics automatically (an unanswered question counts as "they do").
func (st *consumerState) noAutoCreate(admin *adminState) bool {
	brokers, err := admin.masterBrokers("")
	if err != nil {
		return false
	}
	for _, b := range brokers {
		r, err := remotingRequest("broker", b, reqGetBrokerConfig, map[string]string{}, nil, st.creds, admin.timeout)
		if err != nil || r.code != 0 || !strings.Contains(string(r.body), "autoCreateTopicEnable=false") {
			return false
		}
	}
	return true
}

// window counts the messages handed out and not settled (max_inflight).
// A callback takes room for several messages at once, so that settling a
// poll's worth of messages wakes about one waiting callback per SDK batch,
// not one per message; waiters are served in order.
type window struct {
	mu      sync.Mutex
	free    int
	waiters []*windowWaiter
}

type windowWaiter struct {
	want, got int
	ready     chan struct{} // buffered: signalled once got is set
}

// take waits until the window has room and takes room for up to n
// messages (at least one); 0 when done is closed first.
func (w *window) take(n int, done <-chan struct{}) int {
	w.mu.Lock()
	if w.free > 0 && len(w.waiters) == 0 {
		k := min(n, w.free)
		w.free -= k
		w.mu.Unlock()
		return k
	}
	ww := &windowWaiter{want: n, ready: make(chan struct{}, 1)}
	w.waiters = append(w.waiters, ww)
	w.mu.Unlock()
	select {
	case <-ww.ready:
		return ww.got
	case <-done:
		return 0 // closed: the window no longer matters
	}
}

// give returns room for n messages and hands it to the waiters in order.
func (w *window) give(n int) {
	w.mu.Lock()
	w.free += n
	for w.free > 0 && len(w.waiters) > 0 {
		ww := w.waiters[0]
		w.waiters[0] = nil
		w.waiters = w.waiters[1:]
		ww.got = min(ww.want, w.free)
		w.free -= ww.got
		ww.ready <- struct{}{}
	}
	w.mu.Unlock()
}
