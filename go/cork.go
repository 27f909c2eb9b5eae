package main

// Corking an SDK client's connections while a request is written.
//
// The SDK (v2.1.2) writes a request with four write calls (frame length,
// header length, header, body) on a connection with TCP_NODELAY, so every
// request leaves as four TCP segments, each sent and, on a local broker,
// received by the kernel within the write. With TCP_CORK set around the
// writes the kernel sends them as one segment per request (or per run of
// requests): fewer segments for the client's and the broker's kernel and
// fewer reads for the broker.
//
// Two places cork:
//   - the SDK client's request interceptor (installed before a producer's
//     client starts) corks around the writing of every request, synchronous
//     sends included: the SDK calls it with the write inside and the wait
//     for the answer outside, so the request leaves when it is written;
//   - the async dispatcher (async.go) corks around a run of queued
//     requests; while a run is on, the interceptor leaves the corking to it.
//     A request another goroutine writes meanwhile leaves when a segment
//     fills (64 KiB on loopback) or the dispatcher uncorks: at the end of
//     its run, before it waits for a slot, and before a request to another
//     topic (whose route the SDK may look up first).
//
// Nothing stays held: every cork is followed by an uncork of the same
// connections by whoever corked them, and clearing TCP_CORK sends what the
// connection holds (the kernel sends corked data after 200 ms in any case).
// Uncorking another writer's data early only costs that writer a segment.
//
// The SDK does not expose its connections nor its interceptor: sdkConns
// reads them from its internals by reflection and finds nothing (no
// corking) when their layout is not the one of v2.1.2;
// TestSDKConnsFindsTheSDKsInternals fails then. An SDK client with
// credentials replaces the interceptor with its request signer when it
// starts: its synchronous requests are not corked.
//
// Consumers are not corked: with their client corked, a consumer that
// closed on a loaded machine sometimes left the offsets of some queues
// uncommitted (tests/test_cli_ops.py, group lag: 3 failures in 18 runs
// beside three busy loops, none in 12 without the cork), for a drain CPU
// gain within noise (benchmarks/PROFILE.md, 6.9).

import (
	"context"
	"net"
	"reflect"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"github.com/apache/rocketmq-client-go/v2/primitive"
)

// sdkConns is one SDK client's connection table.
type sdkConns struct {
	table *sync.Map    // broker address -> *remote.tcpConnWrapper
	runs  atomic.Int32 // dispatcher runs holding the connections corked now
}

// newSDKConns finds the connection table of the SDK client of a producer
// made by producer.NewDefaultProducer (or nil) and
// installs the corking interceptor; call it before the client starts
// (reap.go has the helpers).
func newSDKConns(p any) (conns *sdkConns) {
	defer func() {
		if recover() != nil {
			conns = nil
		}
	}()
	// *internal.rmqClient .remoteClient -> *remote.remotingClient .connectionTable
	c, ok := sdkClientOf(p)
	if !ok {
		return nil
	}
	remote, ok := sdkField(c, "remoteClient")
	if !ok {
		return nil
	}
	t, ok := sdkField(remote, "connectionTable")
	if !ok || t.Type() != reflect.TypeOf(sync.Map{}) || !t.CanAddr() {
		return nil
	}
	conns = &sdkConns{table: (*sync.Map)(unsafe.Pointer(t.UnsafeAddr()))}
	if remote, ok = opened(remote); ok && corkSupported {
		if rc, ok := remote.Interface().(interface {
			RegisterInterceptor(...primitive.Interceptor)
		}); ok {
			rc.RegisterInterceptor(conns.aroundWrite)
		}
	}
	return conns
}

// aroundWrite is the SDK client's request interceptor: next writes the
// request (the wait for an answer comes after it returns).
func (s *sdkConns) aroundWrite(ctx context.Context, req, reply any, next primitive.Invoker) error {
	if s.runs.Load() > 0 { // a dispatcher run holds them corked and will uncork
		return next(ctx, req, reply)
	}
	var buf [4]syscall.RawConn
	held := s.corkAll(buf[:0])
	err := next(ctx, req, reply)
	uncorkAll(held)
	return err
}

// corkAll corks every connection of the table and appends it to dst.
func (s *sdkConns) corkAll(dst []syscall.RawConn) []syscall.RawConn {
	s.table.Range(func(_, w any) bool {
		v := reflect.ValueOf(w)
		if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
			return true
		}
		f := v.Elem().FieldByName("Conn") // the wrapper embeds the net.Conn
		if !f.IsValid() || !f.CanInterface() {
			return true
		}
		tc, ok := f.Interface().(*net.TCPConn)
		if !ok {
			return true
		}
		rc, err := tc.SyscallConn()
		if err == nil && setCork(rc, true) {
			dst = append(dst, rc)
		}
		return true
	})
	return dst
}

// uncorkAll sends what the connections hold and uncorks them.
func uncorkAll(held []syscall.RawConn) {
	for _, rc := range held {
		setCork(rc, false)
	}
}

// corker is a dispatcher's hold on the connections of its SDK client.
type corker struct {
	conns *sdkConns         // nil: nothing to cork
	held  []syscall.RawConn // corked now
}

// cork corks every connection of the client until uncork.
func (c *corker) cork() {
	if c.conns == nil || !corkSupported {
		return
	}
	c.conns.runs.Add(1)
	c.held = c.conns.corkAll(c.held[:0])
}

// uncork sends what the corked connections hold and uncorks them.
func (c *corker) uncork() {
	if c.conns == nil || !corkSupported {
		return
	}
	uncorkAll(c.held)
	clear(c.held)
	c.held = c.held[:0]
	c.conns.runs.Add(-1)
}
