package main

// Operations over the admin client: topic and group inspection, consumer
// lag, offset reset, message lookup, and the pull requests of the Python
// Reader. Every request is one remoting round trip of the admin client
// (signed when it has credentials); nothing here starts an SDK client, so
// nothing joins a consumer group or commits an offset unless asked to.

/*
#include "rmq_native.h"
*/
import "C"

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
)

// readerGroup is the group named in the Reader's pull requests: the broker
// requires one (and creates its subscription config when
// autoCreateSubscriptionGroup is on), but no offset is ever committed.
const readerGroup = "rmq_native_reader"

// ---- routes and brokers ------------------------------------------------

type queueData struct {
	BrokerName    string `json:"brokerName"`
	ReadQueueNums int    `json:"readQueueNums"`
}

// topicRoute is what the name server knows of a topic: the master address
// of each broker holding it and its read queues there.
type topicRoute struct {
	addrs  map[string]string // broker name -> master address
	queues []queueData       // sorted by broker name
}

var (
	brokerNameRe = regexp.MustCompile(`"brokerName":"([^"]*)"`)
	queueDatasRe = regexp.MustCompile(`"queueDatas":(\[[^\]]*\])`)
)

// brokerMasters parses the brokerAddrs blocks of a (fastjson) route or
// cluster info body into broker name -> master address.
func brokerMasters(body []byte) map[string]string {
	out := map[string]string{}
	for _, blk := range brokerBlockRe.FindAllSubmatch(body, -1) {
		name := brokerNameRe.FindSubmatch(blk[0])
		addr := masterAddrRe.FindSubmatch(blk[1])
		if name != nil && addr != nil {
			out[string(name[1])] = string(addr[1])
		}
	}
	return out
}

// route asks the name servers for a topic's route (full name).
func (st *adminState) route(full string) (*topicRoute, error) {
	r, err := st.askNameServer(reqGetRouteInfo, map[string]string{"topic": full})
	if err != nil {
		return nil, err
	}
	if r.code == respTopicNotExist {
		return nil, errf(C.RMQ_ERR_NO_ROUTE, "topic %q does not exist (no route at the name server)", full)
	}
	if r.code != 0 {
		return nil, errf(brokerCode(r.code, r.remark), "name server refused the route request for %q: CODE %d %s", full, r.code, r.remark)
	}
	rt := &topicRoute{addrs: brokerMasters(r.body)}
	if m := queueDatasRe.FindSubmatch(r.body); m != nil {
		if err := json.Unmarshal(m[1], &rt.queues); err != nil {
			return nil, errf(C.RMQ_ERR_BROKER, "malformed route of %q: %v", full, err)
		}
	}
	kept := rt.queues[:0]
	for _, q := range rt.queues {
		if _, ok := rt.addrs[q.BrokerName]; ok && q.ReadQueueNums > 0 {
			kept = append(kept, q)
		}
	}
	rt.queues = kept
	sort.Slice(rt.queues, func(i, j int) bool { return rt.queues[i].BrokerName < rt.queues[j].BrokerName })
	if len(rt.queues) == 0 {
		return nil, errf(C.RMQ_ERR_NO_ROUTE, "topic %q has no readable queue on a live master broker", full)
	}
	return rt, nil
}

// routeCache keeps routes for the Reader's pulls (one name-server request
// per pull would double the round trips), a few seconds each.
var routeCache sync.Map // "<admin pointer>|<topic>" -> cachedRoute

type cachedRoute struct {
	rt *topicRoute
	at time.Time
}

func (st *adminState) cachedRoute(full string, fresh bool) (*topicRoute, error) {
	key := fmt.Sprintf("%p|%s", st, full)
	if v, ok := routeCache.Load(key); ok && !fresh && time.Since(v.(cachedRoute).at) < 10*time.Second {
		return v.(cachedRoute).rt, nil
	}
	rt, err := st.route(full)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	routeCache.Range(func(k, v interface{}) bool { // drop what nobody refreshed
		if now.Sub(v.(cachedRoute).at) > time.Minute {
			routeCache.Delete(k)
		}
		return true
	})
	routeCache.Store(key, cachedRoute{rt, now})
	return rt, nil
}

// clusterBrokers asks the name servers for every master broker (name ->
// address) and the names of the clusters.
func (st *adminState) clusterBrokers() (map[string]string, map[string]bool, error) {
	r, err := st.askNameServer(reqGetClusterInfo, map[string]string{})
	if err != nil {
		return nil, nil, err
	}
	if r.code != 0 {
		return nil, nil, errf(C.RMQ_ERR_BROKER, "name server: cluster info failed: CODE %d %s", r.code, r.remark)
	}
	clusters := map[string]bool{}
	for _, blk := range brokerBlockRe.FindAll(r.body, -1) {
		if c := clusterRe.FindSubmatch(blk); c != nil {
			clusters[string(c[1])] = true
		}
	}
	masters := brokerMasters(r.body)
	if len(masters) == 0 {
		return nil, nil, errf(C.RMQ_ERR_STATE, "no master broker registered at the name servers")
	}
	return masters, clusters, nil
}

// ---- names -------------------------------------------------------------

// shortName removes the client's namespace from a full resource name.
func (st *adminState) shortName(full string) string {
	if st.namespace == "" {
		return full
	}
	return strings.TrimPrefix(full, st.namespace+"%")
}

// systemTopics are the broker's own topics (besides the rmq_sys_, %RETRY%,
// %DLQ% prefixes and the cluster and broker names, which are topics too).
var systemTopics = map[string]bool{
	"TBW102": true, "SCHEDULE_TOPIC_XXXX": true, "BenchmarkTest": true, "OFFSET_MOVED_EVENT": true,
	"SELF_TEST_TOPIC": true, "TRANS_CHECK_MAX_TIME_TOPIC": true, "RMQ_SYS_TRACE_TOPIC": true,
	"RMQ_SYS_TRANS_HALF_TOPIC": true, "RMQ_SYS_TRANS_OP_HALF_TOPIC": true, "RMQ_SYS_WHEEL_TIMER": true,
}

func isSystemTopic(t string, brokers map[string]string, clusters map[string]bool) bool {
	if systemTopics[t] || clusters[t] || brokers[t] != "" || clusters[strings.TrimSuffix(t, "_REPLY_TOPIC")] {
		return true
	}
	for _, p := range []string{"rmq_sys_", "RMQ_SYS_", "%RETRY%", "%DLQ%", "%LMQ%", "%SYS%"} {
		if strings.HasPrefix(t, p) {
			return true
		}
	}
	return false
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

// exportJSON hands v to the caller as a JSON buffer.
func exportJSON(v interface{}, out **C.uint8_t, outLen *C.int64_t) error {
	b, err := json.Marshal(v)
	if err != nil {
		return errf(C.RMQ_ERR_INTERNAL, "encode result: %v", err)
	}
	export(b, out, outLen)
	return nil
}

// ---- fastjson tables -----------------------------------------------------

// tableEntryRe finds the {MessageQueue}:{value} entries of a fastjson map
// keyed by objects (topic stats, consume stats), which is not JSON.
var tableEntryRe = regexp.MustCompile(`\{("brokerName"[^{}]*)\}:\{([^{}]*)\}`)

type mqKey struct {
	BrokerName string `json:"brokerName"`
	QueueID    int    `json:"queueId"`
	Topic      string `json:"topic"`
}

func parseTable(body []byte, each func(k mqKey, v []byte) error) error {
	for _, m := range tableEntryRe.FindAllSubmatch(body, -1) {
		var k mqKey
		if err := json.Unmarshal([]byte("{"+string(m[1])+"}"), &k); err != nil {
			return errf(C.RMQ_ERR_BROKER, "malformed table entry: %v", err)
		}
		if err := each(k, []byte("{"+string(m[2])+"}")); err != nil {
			return err
		}
	}
	return nil
}

// ---- topics ---------------------------------------------------------------

// rmq_admin_list_topics: see rmq_native.h.
//
//export rmq_admin_list_topics
func rmq_admin_list_topics(h C.uint64_t, includeSystem C.int32_t, out **C.uint8_t, outLen *C.int64_t) C.int32_t {
	return withAdmin(h, func(st *adminState) error {
		if out == nil || outLen == nil {
			return errf(C.RMQ_ERR_INVALID_ARGUMENT, "output pointers must not be NULL")
		}
		*out, *outLen = nil, 0
		r, err := st.askNameServer(reqGetAllTopicList, map[string]string{})
		if err != nil {
			return err
		}
		if r.code != 0 {
			return errf(brokerCode(r.code, r.remark), "name server refused the topic list: CODE %d %s", r.code, r.remark)
		}
		var list struct {
			TopicList []string `json:"topicList"`
		}
		if err := json.Unmarshal(r.body, &list); err != nil {
			return errf(C.RMQ_ERR_BROKER, "malformed topic list: %v", err)
		}
		brokers, clusters, err := st.clusterBrokers()
		if err != nil {
			return err
		}
		names := []string{}
		for _, t := range list.TopicList {
			if st.namespace != "" && !strings.HasPrefix(t, st.namespace+"%") {
				continue
			}
			short := st.shortName(t)
			if includeSystem == 0 && isSystemTopic(short, brokers, clusters) {
				continue
			}
			names = append(names, short)
		}
		sort.Strings(names)
		return exportJSON(names, out, outLen)
	})
}

type queueStats struct {
	BrokerName   string `json:"broker_name"`
	QueueID      int    `json:"queue_id"`
	MinOffset    int64  `json:"min_offset"`
	MaxOffset    int64  `json:"max_offset"`
	LastUpdateMs int64  `json:"last_update_ms"`
}

// topicStats asks every broker of the topic for its queues' offsets.
func (st *adminState) topicStats(full string) ([]queueStats, error) {
	rt, err := st.route(full)
	if err != nil {
		return nil, err
	}
	rows := []queueStats{}
	for _, q := range rt.queues {
		r, err := st.exchange("broker", rt.addrs[q.BrokerName], reqGetTopicStats, map[string]string{"topic": full})
		if err != nil {
			return nil, err
		}
		if r.code == respTopicNotExist {
			continue // the route is older than the broker's knowledge
		}
		if r.code != 0 {
			return nil, errf(brokerCode(r.code, r.remark), "broker %s refused the topic stats of %q: CODE %d %s", q.BrokerName, full, r.code, r.remark)
		}
		err = parseTable(r.body, func(k mqKey, v []byte) error {
			var o struct {
				LastUpdateTimestamp int64 `json:"lastUpdateTimestamp"`
				MaxOffset           int64 `json:"maxOffset"`
				MinOffset           int64 `json:"minOffset"`
			}
			if err := json.Unmarshal(v, &o); err != nil {
				return errf(C.RMQ_ERR_BROKER, "malformed topic stats: %v", err)
			}
			if k.Topic == full && k.QueueID < q.ReadQueueNums {
				rows = append(rows, queueStats{q.BrokerName, k.QueueID, o.MinOffset, o.MaxOffset, o.LastUpdateTimestamp})
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	if len(rows) == 0 {
		return nil, errf(C.RMQ_ERR_NO_ROUTE, "topic %q has no queue on its brokers", full)
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].BrokerName != rows[j].BrokerName {
			return rows[i].BrokerName < rows[j].BrokerName
		}
		return rows[i].QueueID < rows[j].QueueID
	})
	return rows, nil
}

// rmq_admin_topic_stats: see rmq_native.h.
//
//export rmq_admin_topic_stats
func rmq_admin_topic_stats(h C.uint64_t, topicP *C.char, topicLen C.int64_t, out **C.uint8_t, outLen *C.int64_t) C.int32_t {
	return withAdmin(h, func(st *adminState) error {
		if out == nil || outLen == nil {
			return errf(C.RMQ_ERR_INVALID_ARGUMENT, "output pointers must not be NULL")
		}
		*out, *outLen = nil, 0
		topic, err := nameArg("topic", topicP, topicLen)
		if err != nil {
			return err
		}
		rows, err := st.topicStats(st.fullTopic(topic))
		if err != nil {
			return err
		}
		return exportJSON(rows, out, outLen)
	})
}

type queueOffset struct {
	BrokerName string `json:"broker_name"`
	QueueID    int    `json:"queue_id"`
	Offset     int64  `json:"offset"`
}

// offsetsAt finds, in every queue, the offset of the first message stored
// at or after timestampMs (the queue's end when there is none).
func (st *adminState) offsetsAt(full string, timestampMs int64) ([]queueOffset, error) {
	rt, err := st.route(full)
	if err != nil {
		return nil, err
	}
	rows := []queueOffset{}
	for _, q := range rt.queues {
		for id := 0; id < q.ReadQueueNums; id++ {
			r, err := st.ask("broker", rt.addrs[q.BrokerName], reqSearchOffsetByTime, map[string]string{
				"topic": full, "queueId": strconv.Itoa(id), "timestamp": strconv.FormatInt(timestampMs, 10),
			})
			if err != nil {
				return nil, err
			}
			off, err := strconv.ParseInt(r.ext["offset"], 10, 64)
			if err != nil {
				return nil, errf(C.RMQ_ERR_BROKER, "broker %s answered no offset for queue %d", q.BrokerName, id)
			}
			rows = append(rows, queueOffset{q.BrokerName, id, off})
		}
	}
	return rows, nil
}

// rmq_admin_offsets_at: see rmq_native.h.
//
//export rmq_admin_offsets_at
func rmq_admin_offsets_at(h C.uint64_t, topicP *C.char, topicLen C.int64_t, timestampMs C.int64_t, out **C.uint8_t, outLen *C.int64_t) C.int32_t {
	return withAdmin(h, func(st *adminState) error {
		if out == nil || outLen == nil {
			return errf(C.RMQ_ERR_INVALID_ARGUMENT, "output pointers must not be NULL")
		}
		*out, *outLen = nil, 0
		topic, err := nameArg("topic", topicP, topicLen)
		if err != nil {
			return err
		}
		if timestampMs < 0 {
			return errf(C.RMQ_ERR_INVALID_ARGUMENT, "timestamp_ms must be >= 0")
		}
		rows, err := st.offsetsAt(st.fullTopic(topic), int64(timestampMs))
		if err != nil {
			return err
		}
		return exportJSON(rows, out, outLen)
	})
}

// ---- groups ------------------------------------------------------------------

type queueLag struct {
	Topic          string `json:"topic"`
	BrokerName     string `json:"broker_name"`
	QueueID        int    `json:"queue_id"`
	BrokerOffset   int64  `json:"broker_offset"`
	ConsumerOffset int64  `json:"consumer_offset"`
	LastTimestamp  int64  `json:"last_timestamp_ms"`
}

// consumerLag asks the brokers for a group's offsets (of one topic, or of
// every topic the group has offsets for, its retry topic excepted).
func (st *adminState) consumerLag(group, topic string) ([]queueLag, error) {
	fullGroup := st.fullTopic(group)
	var brokers map[string]string
	fullTopic := ""
	if topic != "" {
		fullTopic = st.fullTopic(topic)
		rt, err := st.route(fullTopic)
		if err != nil {
			return nil, err
		}
		brokers = rt.addrs
	} else {
		var err error
		if brokers, _, err = st.clusterBrokers(); err != nil {
			return nil, err
		}
	}
	rows := []queueLag{}
	names := make([]string, 0, len(brokers))
	for n := range brokers {
		names = append(names, n)
	}
	sort.Strings(names)
	// stats asks one broker for the group's offsets: of every topic the
	// group has offsets for there (with a topic given, the broker would
	// report any group, also one that never existed), or of one topic
	// (every queue, 0 where the group has no offset yet).
	seen := map[string]map[string]bool{} // topic -> brokers that reported it
	stats := func(name, addr, full string) error {
		ext := map[string]string{"consumerGroup": fullGroup}
		if full != "" {
			ext["topic"] = full
		}
		r, err := st.ask("broker", addr, reqGetConsumeStats, ext)
		if err != nil {
			return err
		}
		return parseTable(r.body, func(k mqKey, v []byte) error {
			if (fullTopic != "" && k.Topic != fullTopic) || (fullTopic == "" && isSystemTopic(k.Topic, nil, nil)) {
				return nil
			}
			var o struct {
				BrokerOffset   int64 `json:"brokerOffset"`
				ConsumerOffset int64 `json:"consumerOffset"`
				LastTimestamp  int64 `json:"lastTimestamp"`
			}
			if err := json.Unmarshal(v, &o); err != nil {
				return errf(C.RMQ_ERR_BROKER, "malformed consume stats: %v", err)
			}
			if seen[k.Topic] == nil {
				seen[k.Topic] = map[string]bool{}
			}
			seen[k.Topic][name] = true
			rows = append(rows, queueLag{st.shortName(k.Topic), name, k.QueueID, o.BrokerOffset, o.ConsumerOffset, o.LastTimestamp})
			return nil
		})
	}
	for _, name := range names {
		if err := stats(name, brokers[name], ""); err != nil {
			return nil, err
		}
	}
	// a topic the group consumed on some broker counts on all of its brokers
	topics := make([]string, 0, len(seen))
	for t := range seen {
		topics = append(topics, t)
	}
	sort.Strings(topics)
	for _, t := range topics {
		rt, err := st.route(t)
		if err != nil {
			continue // deleted meanwhile
		}
		for name, addr := range rt.addrs {
			if !seen[t][name] {
				if err := stats(name, addr, t); err != nil {
					return nil, err
				}
			}
		}
	}
	if len(rows) == 0 {
		if topic != "" {
			return nil, errf(C.RMQ_ERR_INVALID_ARGUMENT, "consumer group %q has no offsets on topic %q (no such group, or it never consumed the topic)", group, topic)
		}
		return nil, errf(C.RMQ_ERR_INVALID_ARGUMENT, "consumer group %q has no offsets (no such group, or it never consumed)", group)
	}
	sort.Slice(rows, func(i, j int) bool {
		a, b := rows[i], rows[j]
		if a.Topic != b.Topic {
			return a.Topic < b.Topic
		}
		if a.BrokerName != b.BrokerName {
			return a.BrokerName < b.BrokerName
		}
		return a.QueueID < b.QueueID
	})
	return rows, nil
}

// rmq_admin_consumer_lag: see rmq_native.h.
//
//export rmq_admin_consumer_lag
func rmq_admin_consumer_lag(h C.uint64_t, groupP *C.char, groupLen C.int64_t, topicP *C.char, topicLen C.int64_t, out **C.uint8_t, outLen *C.int64_t) C.int32_t {
	return withAdmin(h, func(st *adminState) error {
		if out == nil || outLen == nil {
			return errf(C.RMQ_ERR_INVALID_ARGUMENT, "output pointers must not be NULL")
		}
		*out, *outLen = nil, 0
		group, err := nameArg("group", groupP, groupLen)
		if err != nil {
			return err
		}
		topic := ""
		if topicLen > 0 {
			if topic, err = nameArg("topic", topicP, topicLen); err != nil {
				return err
			}
		}
		rows, err := st.consumerLag(group, topic)
		if err != nil {
			return err
		}
		return exportJSON(rows, out, outLen)
	})
}

// Reset targets (rmq_admin_reset_offset).
const (
	resetFirst = C.RMQ_RESET_FIRST
	resetLast  = C.RMQ_RESET_LAST
	resetTime  = C.RMQ_RESET_TIME
)

// groupOnline counts the consumers of the group connected to the broker.
func (st *adminState) groupOnline(addr, fullGroup string) (int, error) {
	r, err := st.exchange("broker", addr, reqGetConsumerList, map[string]string{"consumerGroup": fullGroup})
	if err != nil {
		return 0, err
	}
	if r.code != 0 {
		return 0, nil // "no consumer for this group"
	}
	var list struct {
		ConsumerIDList []string `json:"consumerIdList"`
	}
	_ = json.Unmarshal(r.body, &list)
	return len(list.ConsumerIDList), nil
}

// resetOffset commits new offsets of a group's topic on every broker. It
// refuses while consumers of the group are online: a running consumer keeps
// its own position and commits it over the reset (and the SDK, v2.1.2,
// does not apply the reset a broker pushes to it).
func (st *adminState) resetOffset(group, topic string, mode int, timestampMs int64) ([]queueOffset, error) {
	fullGroup, fullTopic := st.fullTopic(group), st.fullTopic(topic)
	rt, err := st.route(fullTopic)
	if err != nil {
		return nil, err
	}
	for _, q := range rt.queues {
		n, err := st.groupOnline(rt.addrs[q.BrokerName], fullGroup)
		if err != nil {
			return nil, err
		}
		if n > 0 {
			return nil, errf(C.RMQ_ERR_STATE, "consumer group %q has %d consumer(s) online at broker %s: stop them before resetting its offsets (a running consumer would commit its own position over the reset)", group, n, q.BrokerName)
		}
	}
	var targets []queueOffset
	switch mode {
	case resetFirst, resetLast:
		stats, err := st.topicStats(fullTopic)
		if err != nil {
			return nil, err
		}
		for _, s := range stats {
			off := s.MinOffset
			if mode == resetLast {
				off = s.MaxOffset
			}
			targets = append(targets, queueOffset{s.BrokerName, s.QueueID, off})
		}
	case resetTime:
		if targets, err = st.offsetsAt(fullTopic, timestampMs); err != nil {
			return nil, err
		}
	default:
		return nil, errf(C.RMQ_ERR_INVALID_ARGUMENT, "reset target must be first (0), last (1) or a time (2), not %d", mode)
	}
	for _, t := range targets {
		r, err := st.exchange("broker", rt.addrs[t.BrokerName], reqUpdateConsumerOffset, map[string]string{
			"consumerGroup": fullGroup, "topic": fullTopic, "queueId": strconv.Itoa(t.QueueID),
			"commitOffset": strconv.FormatInt(t.Offset, 10),
		})
		if err != nil {
			return nil, err
		}
		if r.code == respNoGroup {
			return nil, errf(C.RMQ_ERR_INVALID_ARGUMENT, "consumer group %q does not exist on broker %s", group, t.BrokerName)
		}
		if r.code != 0 {
			return nil, errf(brokerCode(r.code, r.remark), "broker %s refused the offset of %s queue %d: CODE %d %s", t.BrokerName, topic, t.QueueID, r.code, r.remark)
		}
	}
	return targets, nil
}

// rmq_admin_reset_offset: see rmq_native.h.
//
//export rmq_admin_reset_offset
func rmq_admin_reset_offset(h C.uint64_t, groupP *C.char, groupLen C.int64_t, topicP *C.char, topicLen C.int64_t, to C.int32_t, timestampMs C.int64_t, out **C.uint8_t, outLen *C.int64_t) C.int32_t {
	return withAdmin(h, func(st *adminState) error {
		if out == nil || outLen == nil {
			return errf(C.RMQ_ERR_INVALID_ARGUMENT, "output pointers must not be NULL")
		}
		*out, *outLen = nil, 0
		group, err := nameArg("group", groupP, groupLen)
		if err != nil {
			return err
		}
		topic, err := nameArg("topic", topicP, topicLen)
		if err != nil {
			return err
		}
		if to == resetTime && timestampMs < 0 {
			return errf(C.RMQ_ERR_INVALID_ARGUMENT, "timestamp_ms must be >= 0")
		}
		rows, err := st.resetOffset(group, topic, int(to), int64(timestampMs))
		if err != nil {
			return err
		}
		return exportJSON(rows, out, outLen)
	})
}

// ---- messages ---------------------------------------------------------------

// exportMessages hands messages to the caller in the record layout of
// rmq_consumer_poll (delivery id 0).
func (st *adminState) exportMessages(msgs []*primitive.MessageExt, out **C.uint8_t, outLen *C.int64_t, outCount *C.int32_t) {
	var buf []byte
	for _, m := range msgs {
		m.Topic = st.shortName(m.Topic)
		buf = binary.LittleEndian.AppendUint64(buf, 0)
		buf = encodeMessage(buf, m)
	}
	export(buf, out, outLen)
	*outCount = C.int32_t(len(msgs))
}

func hasKey(m *primitive.MessageExt, key string) bool {
	for _, k := range strings.Fields(m.GetKeys()) {
		if k == key {
			return true
		}
	}
	return false
}

// queryIndex asks every broker of the topic's route for messages by key
// (or by client message id) through the broker's index.
func (st *adminState) queryIndex(full string, rt *topicRoute, key string, unique bool, beginMs, endMs int64, limit int) ([]*primitive.MessageExt, error) {
	var found []*primitive.MessageExt
	for _, q := range rt.queues {
		ext := map[string]string{
			"topic": full, "key": key, "maxNum": strconv.Itoa(limit),
			"beginTimestamp": strconv.FormatInt(beginMs, 10), "endTimestamp": strconv.FormatInt(endMs, 10),
		}
		if unique {
			ext[uniqueKeyFlag] = "true"
		}
		r, err := st.exchange("broker", rt.addrs[q.BrokerName], reqQueryMessage, ext)
		if err != nil {
			return nil, err
		}
		if r.code == respQueryNotFound {
			continue
		}
		if r.code != 0 {
			return nil, errf(brokerCode(r.code, r.remark), "broker %s refused the message query: CODE %d %s", q.BrokerName, r.code, r.remark)
		}
		for _, m := range primitive.DecodeMessage(r.body) {
			// the index is a hash: keep only real matches
			if m.Topic != full || (unique && m.MsgId != key) || (!unique && !hasKey(m, key)) {
				continue
			}
			m.Queue.Topic, m.Queue.BrokerName = full, q.BrokerName
			found = append(found, m)
		}
	}
	return found, nil
}

// viewByOffsetID reads a message by its broker-side (offset) id: the
// broker's address and the commit log offset, in hex.
func (st *adminState) viewByOffsetID(full string, rt *topicRoute, id string) ([]*primitive.MessageExt, error) {
	raw, err := hex.DecodeString(id)
	if err != nil || len(raw) != 16 {
		return nil, nil
	}
	addr := fmt.Sprintf("%d.%d.%d.%d:%d", raw[0], raw[1], raw[2], raw[3], binary.BigEndian.Uint32(raw[4:8]))
	name := ""
	for n, a := range rt.addrs {
		if a == addr {
			name = n
		}
	}
	if name == "" {
		return nil, nil
	}
	r, err := st.exchange("broker", addr, reqViewMessageByID, map[string]string{
		"offset": strconv.FormatUint(binary.BigEndian.Uint64(raw[8:]), 10),
	})
	if err != nil || r.code != 0 {
		return nil, err
	}
	var found []*primitive.MessageExt
	for _, m := range primitive.DecodeMessage(r.body) {
		if m.Topic == full {
			m.Queue.Topic, m.Queue.BrokerName = full, name
			found = append(found, m)
		}
	}
	return found, nil
}

// rmq_admin_find_messages: see rmq_native.h.
//
//export rmq_admin_find_messages
func rmq_admin_find_messages(h C.uint64_t, topicP *C.char, topicLen C.int64_t, keyP *C.char, keyLen C.int64_t, idP *C.char, idLen C.int64_t, beginMs C.int64_t, endMs C.int64_t, limit C.int32_t, out **C.uint8_t, outLen *C.int64_t, outCount *C.int32_t) C.int32_t {
	return withAdmin(h, func(st *adminState) error {
		if out == nil || outLen == nil || outCount == nil {
			return errf(C.RMQ_ERR_INVALID_ARGUMENT, "output pointers must not be NULL")
		}
		*out, *outLen, *outCount = nil, 0, 0
		topic, err := nameArg("topic", topicP, topicLen)
		if err != nil {
			return err
		}
		key, err := textArg("key", keyP, keyLen)
		if err != nil {
			return err
		}
		id, err := textArg("msg_id", idP, idLen)
		if err != nil {
			return err
		}
		if (key == "") == (id == "") {
			return errf(C.RMQ_ERR_INVALID_ARGUMENT, "give exactly one of key and msg_id")
		}
		if limit < 1 || limit > 64*1024 {
			return errf(C.RMQ_ERR_INVALID_ARGUMENT, "limit must be 1..65536, not %d", int32(limit))
		}
		end := int64(endMs)
		if end <= 0 {
			end = time.Now().Add(24 * time.Hour).UnixMilli()
		}
		if beginMs < 0 || int64(beginMs) > end {
			return errf(C.RMQ_ERR_INVALID_ARGUMENT, "begin must be >= 0 and not after end")
		}
		full := st.fullTopic(topic)
		rt, err := st.route(full)
		if err != nil {
			return err
		}
		var found []*primitive.MessageExt
		if key != "" {
			found, err = st.queryIndex(full, rt, key, false, int64(beginMs), end, int(limit))
		} else if found, err = st.queryIndex(full, rt, id, true, int64(beginMs), end, int(limit)); err == nil && len(found) == 0 {
			found, err = st.viewByOffsetID(full, rt, id)
		}
		if err != nil {
			return err
		}
		sort.SliceStable(found, func(i, j int) bool { return found[i].StoreTimestamp < found[j].StoreTimestamp })
		if len(found) > int(limit) {
			found = found[:limit]
		}
		st.exportMessages(found, out, outLen, outCount)
		return nil
	})
}

// ---- reader pulls ---------------------------------------------------------------

// tagSet is the exact tags of a tag expression (nil for "*"): the broker
// filters by the tags' hash codes, the client must check the tags.
func tagSet(expr string) map[string]bool {
	expr = strings.TrimSpace(expr)
	if expr == "" || expr == "*" {
		return nil
	}
	set := map[string]bool{}
	for _, t := range strings.Split(expr, "||") {
		if t = strings.TrimSpace(t); t != "" {
			set[t] = true
		}
	}
	return set
}

// rmq_admin_pull: see rmq_native.h.
//
//export rmq_admin_pull
func rmq_admin_pull(h C.uint64_t, topicP *C.char, topicLen C.int64_t, brokerP *C.char, brokerLen C.int64_t, queueID C.int32_t, offset C.int64_t, maxMessages C.int32_t, selectorP *C.char, selectorLen C.int64_t, exprP *C.char, exprLen C.int64_t, out **C.uint8_t, outLen *C.int64_t, outCount *C.int32_t, outNext *C.int64_t) C.int32_t {
	return withAdmin(h, func(st *adminState) error {
		if out == nil || outLen == nil || outCount == nil || outNext == nil {
			return errf(C.RMQ_ERR_INVALID_ARGUMENT, "output pointers must not be NULL")
		}
		*out, *outLen, *outCount, *outNext = nil, 0, 0, offset
		topic, err := nameArg("topic", topicP, topicLen)
		if err != nil {
			return err
		}
		broker, err := textArg("broker_name", brokerP, brokerLen)
		if err != nil {
			return err
		}
		selector, err := textArg("selector", selectorP, selectorLen)
		if err != nil {
			return err
		}
		expr, err := textArg("expression", exprP, exprLen)
		if err != nil {
			return err
		}
		exprType := "TAG"
		switch strings.ToLower(selector) {
		case "", "tag":
			if expr == "" {
				expr = "*"
			}
		case "sql92":
			exprType = "SQL92"
			if strings.TrimSpace(expr) == "" {
				return errf(C.RMQ_ERR_INVALID_ARGUMENT, "an sql92 expression must not be empty")
			}
		default:
			return errf(C.RMQ_ERR_INVALID_ARGUMENT, "selector must be \"tag\" or \"sql92\", not %q", selector)
		}
		if queueID < 0 || offset < 0 || maxMessages < 1 || maxMessages > 1024 {
			return errf(C.RMQ_ERR_INVALID_ARGUMENT, "queue_id and offset must be >= 0 and max_messages 1..1024")
		}
		full := st.fullTopic(topic)
		rt, err := st.cachedRoute(full, false)
		if err != nil {
			return err
		}
		addr, ok := rt.addrs[broker]
		if !ok {
			if rt, err = st.cachedRoute(full, true); err != nil {
				return err
			}
			if addr, ok = rt.addrs[broker]; !ok {
				return errf(C.RMQ_ERR_NO_ROUTE, "topic %q has no broker %q", topic, broker)
			}
		}
		r, err := st.exchange("broker", addr, reqPullMessage, map[string]string{
			"consumerGroup": st.fullTopic(readerGroup), "topic": full, "queueId": strconv.Itoa(int(queueID)),
			"queueOffset": strconv.FormatInt(int64(offset), 10), "maxMsgNums": strconv.Itoa(int(maxMessages)),
			"sysFlag":      "4", // FLAG_SUBSCRIPTION only: no offset committed, no long polling
			"commitOffset": "0", "suspendTimeoutMillis": "0", "subscription": expr, "subVersion": "0",
			"expressionType": exprType,
		})
		if err != nil {
			return err
		}
		switch r.code {
		case 0, respPullNotFound, respPullRetry, respPullOffsetMoved:
		default:
			return errf(brokerCode(r.code, r.remark), "broker %s refused the pull of %s queue %d: CODE %d %s", broker, topic, int(queueID), r.code, r.remark)
		}
		next, err := strconv.ParseInt(r.ext["nextBeginOffset"], 10, 64)
		if err != nil {
			return errf(C.RMQ_ERR_BROKER, "broker %s answered the pull without nextBeginOffset", broker)
		}
		var msgs []*primitive.MessageExt
		if r.code == 0 {
			tags := tagSet(expr)
			for _, m := range primitive.DecodeMessage(r.body) {
				if m.QueueOffset < int64(offset) || (exprType == "TAG" && tags != nil && !tags[m.GetTags()]) {
					continue
				}
				m.Queue.Topic, m.Queue.BrokerName = full, broker
				msgs = append(msgs, m)
			}
		}
		st.exportMessages(msgs, out, outLen, outCount)
		*outNext = C.int64_t(next)
		return nil
	})
}
