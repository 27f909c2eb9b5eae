package main

// Inspection over the admin client: topics, their queues' offsets, a
// consumer group's lag, and the reset of a group's offsets.

/*
#include "rmq_native.h"
*/
import "C"
import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

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
			return r.refusal("name server", "the topic list")
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
			return nil, r.refusal("broker "+q.BrokerName, fmt.Sprintf("the topic stats of %q", full))
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
			return nil, r.refusal("broker "+t.BrokerName, fmt.Sprintf("the offset of %s queue %d", topic, t.QueueID))
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
