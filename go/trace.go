package main

/*
#include "rmq_native.h"
*/
import "C"

import (
	"sort"
	"strings"
	"sync"

	"github.com/apache/rocketmq-client-go/v2/primitive"
)

var (
	traceMu          sync.Mutex
	traceNameServers string // of the process's trace client, once created
)

// traceOptions are the configuration keys that turn on RocketMQ message
// trace (RIP-6); producerConfig and consumerConfig embed them.
type traceOptions struct {
	Trace      bool   `json:"trace"`
	TraceTopic string `json:"trace_topic"`
}

// traceConfig returns the SDK's trace configuration, or nil when trace is
// off. Trace records go to traceTopic (default RMQ_SYS_TRACE_TOPIC, which
// the broker creates when traceTopicEnable=true) through the SDK's trace
// client: one per process (instance "INNER_TRACE_CLIENT_DEFAULT"), which
// keeps the name servers and credentials of the first traced client. The
// producer records successful sends, synchronous and asynchronous (a traced
// producer makes them with the SDK's SendSync, the only send its trace
// interceptor records; oneway sends are not recorded), the consumer a
// record before and after each delivery.
func (t traceOptions) traceConfig(addrs []string, group, accessKey, secretKey string) (*primitive.TraceConfig, error) {
	if !t.Trace {
		if t.TraceTopic != "" {
			return nil, errf(C.RMQ_ERR_INVALID_ARGUMENT, "trace_topic needs trace=true")
		}
		return nil, nil
	}
	if t.TraceTopic != "" {
		if err := validTopic(t.TraceTopic); err != nil {
			return nil, err
		}
	}
	var cr primitive.Credentials
	if accessKey != "" || secretKey != "" {
		var err error
		if cr, err = credentials(accessKey, secretKey); err != nil {
			return nil, err
		}
	}
	// The SDK's trace client is cached for the process: another name server
	// would make the SDK (v2.1.2) panic at client creation.
	sorted := append([]string(nil), addrs...)
	sort.Strings(sorted)
	key := strings.Join(sorted, ";")
	traceMu.Lock()
	defer traceMu.Unlock()
	if traceNameServers != "" && traceNameServers != key {
		return nil, errf(C.RMQ_ERR_STATE, "message trace works with one name server per process (the SDK's trace "+
			"client is shared): this process traces through %s, not %s", traceNameServers, key)
	}
	traceNameServers = key
	return &primitive.TraceConfig{TraceTopic: t.TraceTopic, GroupName: group, Access: primitive.Local,
		NamesrvAddrs: addrs, Credentials: cr}, nil
}
