package main

/*
#include "rmq_native.h"
*/
import "C"

import (
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
)

// adminConfig is the JSON configuration of rmq_admin_new.
type adminConfig struct {
	NameServer string `json:"name_server"`
	Namespace  string `json:"namespace"`
	AccessKey  string `json:"access_key"`
	SecretKey  string `json:"secret_key"`
	TimeoutMs  int    `json:"timeout_ms"`
}

// adminState is an admin client. It speaks the remoting protocol itself
// (signing requests when it has credentials): the SDK's admin (v2.1.2)
// ignores the broker's answer to a topic creation, so a refused request
// looked like a success.
type adminState struct {
	mu          sync.Mutex
	nameServers []string
	timeout     time.Duration
	namespace   string
	creds       primitive.Credentials
}

// rmq_admin_new: see rmq_native.h.
//
//export rmq_admin_new
func rmq_admin_new(config *C.char, configLen C.int64_t, outHandle *C.uint64_t) C.int32_t {
	return call(func() error {
		if outHandle == nil {
			return errf(C.RMQ_ERR_INVALID_ARGUMENT, "out_handle must not be NULL")
		}
		var cfg adminConfig
		if err := decodeConfig(config, configLen, &cfg); err != nil {
			return err
		}
		addrs, err := nameServers(cfg.NameServer)
		if err != nil {
			return err
		}
		timeout := 5 * time.Second
		if cfg.TimeoutMs > 0 {
			timeout = time.Duration(cfg.TimeoutMs) * time.Millisecond
		}
		cr, err := credentials(cfg.AccessKey, cfg.SecretKey)
		if err != nil {
			return err
		}
		*outHandle = C.uint64_t(newHandle(&adminState{nameServers: addrs, timeout: timeout, namespace: cfg.Namespace, creds: cr}))
		return nil
	})
}

// withAdmin runs the body of an export that works with the admin client
// of h (see call).
func withAdmin(h C.uint64_t, body func(st *adminState) error) C.int32_t {
	return call(func() error {
		st, err := handleOf[*adminState](h, "admin")
		if err != nil {
			return err
		}
		return body(st)
	})
}

// exchange sends one request (signed when the client has credentials) and
// returns the whole answer; a refusal is not an error here.
func (st *adminState) exchange(role, addr string, code int, ext map[string]string) (*response, error) {
	return remotingRequest(role, addr, code, ext, nil, st.creds, st.timeout)
}

// ask is exchange for requests that must succeed.
func (st *adminState) ask(role, addr string, code int, ext map[string]string) (*response, error) {
	r, err := st.exchange(role, addr, code, ext)
	if err != nil {
		return nil, err
	}
	if r.code != 0 {
		return nil, r.refusal(role+" "+addr, "the request")
	}
	return r, nil
}

// askNameServer sends a request to the first name server that answers.
func (st *adminState) askNameServer(code int, ext map[string]string) (*response, error) {
	var lastErr error
	for _, ns := range st.nameServers {
		r, err := st.exchange("name server", ns, code, ext)
		if err == nil {
			return r, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

// brokerBlockRe finds the {"brokerAddrs":{0:"host:port",...},"brokerName":"b","cluster":"c"}
// entries of the name server's (fastjson, non-standard) cluster info;
// masterAddrRe finds the master (id 0) in brokerAddrs, clusterRe the
// cluster of an entry.
var (
	brokerBlockRe = regexp.MustCompile(`\{"brokerAddrs":\{([^}]*)\}[^{}]*\}`)
	masterAddrRe  = regexp.MustCompile(`(?:^|,)"?0"?:"([^"]+)"`)
	clusterRe     = regexp.MustCompile(`"cluster":"([^"]*)"`)
)

// masterBrokers asks the name servers for every master broker address,
// optionally of one cluster.
func (st *adminState) masterBrokers(cluster string) ([]string, error) {
	var lastErr error
	for _, ns := range st.nameServers {
		r, err := remotingRequest("name server", ns, reqGetClusterInfo, map[string]string{}, nil, primitive.Credentials{}, st.timeout)
		if err != nil {
			lastErr = err
			continue
		}
		if r.code != 0 {
			lastErr = errf(C.RMQ_ERR_BROKER, "name server %s: cluster info failed: CODE %d %s", ns, r.code, r.remark)
			continue
		}
		body := r.body
		seen := map[string]bool{}
		var out []string
		for _, blk := range brokerBlockRe.FindAllSubmatch(body, -1) {
			if cluster != "" {
				c := clusterRe.FindSubmatch(blk[0])
				if c == nil || string(c[1]) != cluster {
					continue
				}
			}
			if m := masterAddrRe.FindSubmatch(blk[1]); m != nil && !seen[string(m[1])] {
				seen[string(m[1])] = true
				out = append(out, string(m[1]))
			}
		}
		sort.Strings(out)
		if len(out) == 0 {
			return nil, errf(C.RMQ_ERR_STATE, "no master broker registered at name server %s (cluster %q)", ns, cluster)
		}
		return out, nil
	}
	return nil, lastErr
}

func (st *adminState) fullTopic(topic string) string {
	if st.namespace == "" || strings.HasPrefix(topic, st.namespace+"%") {
		return topic
	}
	return st.namespace + "%" + topic
}

// rmq_admin_create_topic: see rmq_native.h.
//
//export rmq_admin_create_topic
func rmq_admin_create_topic(h C.uint64_t, topicP *C.char, topicLen C.int64_t, queues C.int32_t, clusterP *C.char, clusterLen C.int64_t) C.int32_t {
	return withAdmin(h, func(st *adminState) error {
		topic, err := goString(topicP, topicLen)
		if err != nil {
			return err
		}
		if err := validTopic(topic); err != nil {
			return err
		}
		if queues < 1 || queues > 1024 {
			return errf(C.RMQ_ERR_INVALID_ARGUMENT, "queues must be 1..1024, not %d", int32(queues))
		}
		cluster, err := goString(clusterP, clusterLen)
		if err != nil {
			return err
		}
		st.mu.Lock()
		defer st.mu.Unlock()
		brokers, err := st.masterBrokers(cluster)
		if err != nil {
			return err
		}
		n := strconv.Itoa(int(queues))
		for _, b := range brokers {
			_, err := st.ask("broker", b, reqCreateTopic, map[string]string{
				"topic": st.fullTopic(topic), "defaultTopic": "TBW102", "readQueueNums": n, "writeQueueNums": n,
				"perm": "6", "topicFilterType": "SINGLE_TAG", "topicSysFlag": "0", "order": "false",
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// rmq_admin_delete_topic: see rmq_native.h.
//
//export rmq_admin_delete_topic
func rmq_admin_delete_topic(h C.uint64_t, topicP *C.char, topicLen C.int64_t) C.int32_t {
	return withAdmin(h, func(st *adminState) error {
		topic, err := goString(topicP, topicLen)
		if err != nil {
			return err
		}
		if err := validTopic(topic); err != nil {
			return err
		}
		st.mu.Lock()
		defer st.mu.Unlock()
		brokers, err := st.masterBrokers("")
		if err != nil {
			return err
		}
		full := st.fullTopic(topic)
		for _, b := range brokers {
			if _, err := st.ask("broker", b, reqDeleteTopicInBroker, map[string]string{"topic": full}); err != nil {
				return err
			}
		}
		for _, ns := range st.nameServers {
			if _, err := st.ask("name server", ns, reqDeleteTopicInNamesrv, map[string]string{"topic": full}); err != nil {
				return err
			}
		}
		return nil
	})
}

// rmq_admin_close: see rmq_native.h.
//
//export rmq_admin_close
func rmq_admin_close(h C.uint64_t) C.int32_t {
	return call(func() error {
		takeHandle(h)
		return nil
	})
}
