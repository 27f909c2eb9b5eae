package main

/*
#include "rmq_native.h"
*/
import "C"

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"io"
	"net"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
)

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

// rmq_admin_new implements the ABI function of the same name: creates an admin client.
// The contract is in rmq_native.h.
//
//export rmq_admin_new
func rmq_admin_new(config *C.char, configLen C.int64_t, outHandle *C.uint64_t) (rc C.int32_t) {
	defer guard(&rc)
	if outHandle == nil {
		return fail(errf(C.RMQ_ERR_INVALID_ARGUMENT, "out_handle must not be NULL"))
	}
	var cfg adminConfig
	if err := decodeConfig(config, configLen, &cfg); err != nil {
		return fail(err)
	}
	addrs, err := nameServers(cfg.NameServer)
	if err != nil {
		return fail(err)
	}
	timeout := 5 * time.Second
	if cfg.TimeoutMs > 0 {
		timeout = time.Duration(cfg.TimeoutMs) * time.Millisecond
	}
	cr, err := credentials(cfg.AccessKey, cfg.SecretKey)
	if err != nil {
		return fail(err)
	}
	*outHandle = C.uint64_t(newHandle(&adminState{nameServers: addrs, timeout: timeout, namespace: cfg.Namespace, creds: cr}))
	return C.RMQ_OK
}

func adminFor(h C.uint64_t) (*adminState, error) {
	v, ok := lookup(h)
	st, isAdmin := v.(*adminState)
	if !ok || !isAdmin {
		return nil, errf(C.RMQ_ERR_CLOSED, "admin handle %d is closed or unknown", uint64(h))
	}
	return st, nil
}

// Request codes of RocketMQ's remoting protocol.
const (
	reqCreateTopic          = 17
	reqGetClusterInfo       = 106
	reqDeleteTopicInBroker  = 215
	reqDeleteTopicInNamesrv = 216
)

var opaque int32

// remotingCall sends one request of RocketMQ's remoting protocol (JSON
// header) and returns the response code, remark and body.
func remotingCall(role, addr string, code int, ext map[string]string, timeout time.Duration) (int, string, []byte, error) {
	return remotingCallBody(role, addr, code, ext, nil, timeout)
}

// remotingCallBody is remotingCall with a request body.
func remotingCallBody(role, addr string, code int, ext map[string]string, body []byte, timeout time.Duration) (int, string, []byte, error) {
	conn, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return 0, "", nil, errf(C.RMQ_ERR_UNREACHABLE, "%s %s unreachable: %v", role, addr, err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(timeout))
	header, _ := json.Marshal(map[string]interface{}{
		"code": code, "language": "GO", "version": 317, "opaque": atomic.AddInt32(&opaque, 1),
		"flag": 0, "extFields": ext,
	})
	frame := binary.BigEndian.AppendUint32(nil, uint32(4+len(header)+len(body)))
	frame = binary.BigEndian.AppendUint32(frame, uint32(len(header)))
	frame = append(frame, header...)
	frame = append(frame, body...)
	if _, err := conn.Write(frame); err != nil {
		return 0, "", nil, errf(C.RMQ_ERR_UNREACHABLE, "write to %s: %v", addr, err)
	}
	var lens [8]byte
	if _, err := io.ReadFull(conn, lens[:]); err != nil {
		return 0, "", nil, errf(C.RMQ_ERR_UNREACHABLE, "read from %s: %v", addr, err)
	}
	total := binary.BigEndian.Uint32(lens[:4])
	hlen := binary.BigEndian.Uint32(lens[4:]) & 0xFFFFFF
	if total < 4+hlen || total > 64<<20 {
		return 0, "", nil, errf(C.RMQ_ERR_BROKER, "malformed response from %s", addr)
	}
	rest := make([]byte, total-4)
	if _, err := io.ReadFull(conn, rest); err != nil {
		return 0, "", nil, errf(C.RMQ_ERR_UNREACHABLE, "read from %s: %v", addr, err)
	}
	var resp struct {
		Code   int    `json:"code"`
		Remark string `json:"remark"`
	}
	if err := json.Unmarshal(rest[:hlen], &resp); err != nil {
		return 0, "", nil, errf(C.RMQ_ERR_BROKER, "malformed response header from %s: %v", addr, err)
	}
	return resp.Code, resp.Remark, rest[hlen:], nil
}

// sign adds the ACL signature of a request, as the SDK's ACL interceptor
// does: HMAC-SHA1 over the values of the sorted header fields (AccessKey
// included), then the body.
func sign(ext map[string]string, body []byte, cr primitive.Credentials) {
	ext["AccessKey"] = cr.AccessKey
	keys := make([]string, 0, len(ext))
	for k := range ext {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	mac := hmac.New(sha1.New, []byte(cr.SecretKey))
	for _, k := range keys {
		mac.Write([]byte(ext[k]))
	}
	mac.Write(body)
	ext["Signature"] = base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// call sends one (signed) request and turns a refusal into an error.
func (st *adminState) call(role, addr string, code int, ext map[string]string) error {
	if !st.creds.IsEmpty() {
		sign(ext, nil, st.creds)
	}
	rc, remark, _, err := remotingCall(role, addr, code, ext, st.timeout)
	if err != nil {
		return err
	}
	if rc != 0 {
		return errf(brokerCode(rc, remark), "%s %s refused the request: CODE %d %s", role, addr, rc, remark)
	}
	return nil
}

// brokerEntryRe finds {"brokerAddrs":{0:"host:port",...},"brokerName":"b","cluster":"c"}
// entries of the name server's (fastjson, non-standard) cluster info.
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
		code, remark, body, err := remotingCall("name server", ns, reqGetClusterInfo, map[string]string{}, st.timeout)
		if err != nil {
			lastErr = err
			continue
		}
		if code != 0 {
			lastErr = errf(C.RMQ_ERR_BROKER, "name server %s: cluster info failed: CODE %d %s", ns, code, remark)
			continue
		}
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

// rmq_admin_create_topic implements the ABI function of the same name: creates (or updates) a topic with `queues` read and write queues on every master broker of the cluster (cluster_len 0 = every cluster).
// The contract is in rmq_native.h.
//
//export rmq_admin_create_topic
func rmq_admin_create_topic(h C.uint64_t, topicP *C.char, topicLen C.int64_t, queues C.int32_t, clusterP *C.char, clusterLen C.int64_t) (rc C.int32_t) {
	defer guard(&rc)
	st, err := adminFor(h)
	if err != nil {
		return fail(err)
	}
	topic, err := goString(topicP, topicLen)
	if err != nil {
		return fail(err)
	}
	if err := validTopic(topic); err != nil {
		return fail(err)
	}
	if queues < 1 || queues > 1024 {
		return fail(errf(C.RMQ_ERR_INVALID_ARGUMENT, "queues must be 1..1024, not %d", int32(queues)))
	}
	cluster, err := goString(clusterP, clusterLen)
	if err != nil {
		return fail(err)
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	brokers, err := st.masterBrokers(cluster)
	if err != nil {
		return fail(err)
	}
	n := strconv.Itoa(int(queues))
	for _, b := range brokers {
		err := st.call("broker", b, reqCreateTopic, map[string]string{
			"topic": st.fullTopic(topic), "defaultTopic": "TBW102", "readQueueNums": n, "writeQueueNums": n,
			"perm": "6", "topicFilterType": "SINGLE_TAG", "topicSysFlag": "0", "order": "false",
		})
		if err != nil {
			return fail(err)
		}
	}
	return C.RMQ_OK
}

// rmq_admin_delete_topic implements the ABI function of the same name: deletes a topic from every master broker and from the name servers.
// The contract is in rmq_native.h.
//
//export rmq_admin_delete_topic
func rmq_admin_delete_topic(h C.uint64_t, topicP *C.char, topicLen C.int64_t) (rc C.int32_t) {
	defer guard(&rc)
	st, err := adminFor(h)
	if err != nil {
		return fail(err)
	}
	topic, err := goString(topicP, topicLen)
	if err != nil {
		return fail(err)
	}
	if err := validTopic(topic); err != nil {
		return fail(err)
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	brokers, err := st.masterBrokers("")
	if err != nil {
		return fail(err)
	}
	full := st.fullTopic(topic)
	for _, b := range brokers {
		if err := st.call("broker", b, reqDeleteTopicInBroker, map[string]string{"topic": full}); err != nil {
			return fail(err)
		}
	}
	for _, ns := range st.nameServers {
		if err := st.call("name server", ns, reqDeleteTopicInNamesrv, map[string]string{"topic": full}); err != nil {
			return fail(err)
		}
	}
	return C.RMQ_OK
}

// rmq_admin_close implements the ABI function of the same name: releases the admin client.
// The contract is in rmq_native.h.
//
//export rmq_admin_close
func rmq_admin_close(h C.uint64_t) (rc C.int32_t) {
	defer guard(&rc)
	takeHandle(h)
	return C.RMQ_OK
}
