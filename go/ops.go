package main

// What the operations over the admin client share (inspect.go, lookup.go):
// topic routes, resource names and the broker's fastjson tables. Every
// request is one remoting round trip of the admin client (signed when it
// has credentials); nothing here starts an SDK client, so nothing joins a
// consumer group or commits an offset unless asked to.

/*
#include "rmq_native.h"
*/
import "C"

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"
)

// ---- routes and brokers ------------------------------------------------

// queueData is one broker's queues of a topic, in a route.
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

// brokerNameRe and queueDatasRe find the broker names and the queues of a
// (fastjson) route.
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
		return nil, r.refusal("name server", fmt.Sprintf("the route request for %q", full))
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

// cachedRoute is a route and when it was asked for.
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

// isSystemTopic tells a broker's own topic from an application's.
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

// ---- fastjson tables -----------------------------------------------------

// tableEntryRe finds the {MessageQueue}:{value} entries of a fastjson map
// keyed by objects (topic stats, consume stats), which is not JSON.
var tableEntryRe = regexp.MustCompile(`\{("brokerName"[^{}]*)\}:\{([^{}]*)\}`)

// mqKey is the message queue that keys a table entry.
type mqKey struct {
	BrokerName string `json:"brokerName"`
	QueueID    int    `json:"queueId"`
	Topic      string `json:"topic"`
}

// parseTable calls each for every entry of a fastjson table.
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
