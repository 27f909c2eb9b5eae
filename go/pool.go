package main

/*
#include "rmq_native.h"
*/
import "C"

// Plain producers share SDK producers. A program that makes a Producer per
// request or job would otherwise start an SDK client per object: its
// connections and goroutines, some of which sleep 10 s after the start
// before they look at their close channel (v2.1.2).
//
// One SDK producer serves every open plain producer with the same SDK
// options: the configuration minus what the library applies itself
// (compression, size limit). It is reference-counted and shut down
// poolGrace after the last of them closes, unless a new one takes it over.
//
// Sharing is correct for plain producers because nothing the broker or the
// SDK does depends on which object sent a message: a send's result goes to
// its caller (the library runs asynchronous sends itself, per object), the
// broker only uses a producer's client id for transaction checks, and the
// rest of the SDK producer's state (routes, connections, queue rotation) is
// a cache. Every key field changes what the SDK does: name servers, group
// (heartbeats), namespace, credentials (request signatures), retries, send
// timeout, and an explicit instance name (the SDK itself shares one client
// per instance name). Transaction producers are never shared: the broker
// routes checks to a client and each has its own check listener.

import (
	"encoding/json"
	"fmt"
	"sync"
	"time"

	rocketmq "github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/producer"
)

// poolGrace is how long an unused SDK producer waits for a new user.
const poolGrace = 3 * time.Second

type pooledProducer struct {
	key   string
	p     rocketmq.Producer
	conns *sdkConns // its connections, for corking (cork.go); nil if not found
	refs  int       // guarded by poolMu
}

var (
	poolMu sync.Mutex
	pool   = map[string]*pooledProducer{}
)

// poolKey is the part of a producer configuration the SDK producer depends on.
func poolKey(cfg producerConfig) string {
	cfg.CompressOver, cfg.CompressLevel, cfg.MaxMessageSize = nil, nil, 0
	b, _ := json.Marshal(cfg)
	return string(b)
}

// sharedProducer returns a started SDK producer for cfg (creating it with
// opts when none is open), its connections and the function that releases
// it (once).
func sharedProducer(cfg producerConfig, opts []producer.Option) (rocketmq.Producer, *sdkConns, func() error, error) {
	key := poolKey(cfg)
	poolMu.Lock()
	defer poolMu.Unlock()
	e := pool[key]
	if e == nil {
		p, err := rocketmq.NewProducer(opts...)
		if err != nil {
			return nil, nil, nil, errf(C.RMQ_ERR_STATE, "cannot create producer: %v", err)
		}
		conns := newSDKConns(p) // before Start: it installs an interceptor
		if err := p.Start(); err != nil {
			_ = reaped(p, p.Shutdown)()
			return nil, nil, nil, errf(C.RMQ_ERR_STATE, "cannot start producer: %v", err)
		}
		e = &pooledProducer{key: key, p: p, conns: conns}
		pool[key] = e
	}
	e.refs++
	var once sync.Once
	return e.p, e.conns, func() error {
		once.Do(e.release)
		return nil
	}, nil
}

// release drops one reference; the last one schedules the shutdown.
func (e *pooledProducer) release() {
	poolMu.Lock()
	defer poolMu.Unlock()
	if e.refs--; e.refs == 0 {
		time.AfterFunc(poolGrace, e.expire)
	}
}

// expire shuts the SDK producer down unless it was taken over meanwhile.
func (e *pooledProducer) expire() {
	defer func() {
		if r := recover(); r != nil {
			logs.add(levelError, fmt.Sprintf("rmq_native: internal error while shutting a producer down (recovered panic): %v", r), nil)
		}
	}()
	poolMu.Lock()
	if e.refs > 0 || pool[e.key] != e {
		poolMu.Unlock()
		return
	}
	delete(pool, e.key)
	poolMu.Unlock()
	if err := reaped(e.p, e.p.Shutdown)(); err != nil {
		logs.add(levelWarning, fmt.Sprintf("rmq_native: producer shutdown: %v", err), nil)
	}
}

// sharedProducers counts the SDK producers in the pool (for rmq_debug_stats).
func sharedProducers() int {
	poolMu.Lock()
	defer poolMu.Unlock()
	return len(pool)
}
