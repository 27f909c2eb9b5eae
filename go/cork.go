package main

// Corking the broker connections while the dispatcher writes (async.go).
//
// The SDK (v2.1.2) writes a request with four write calls (frame length,
// header length, header, body) on a connection with TCP_NODELAY, so every
// request leaves as four TCP segments, each sent and, on a local broker,
// received by the kernel within the write. With TCP_CORK set around the
// dispatcher's writes the kernel sends them as one segment per request (or
// per burst of requests): fewer segments for the client's and the broker's
// kernel and the broker's reads. A request another goroutine writes to a
// corked connection (a synchronous send of the same SDK client) leaves
// when a segment fills (64 KiB on loopback) or the dispatcher uncorks: at
// the end of its run of queued requests, before it waits for a slot, and
// before a request to another topic (whose route the SDK may look up
// first). The kernel sends corked data after 200 ms in any case.
//
// The SDK does not expose its connections: brokerConns reads them from its
// internals by reflection, read only, and finds nothing (no corking) when
// their layout is not the one of v2.1.2; TestBrokerConnsFindsTheSDKsTable
// fails then.

import (
	"net"
	"reflect"
	"sync"
	"syscall"
	"unsafe"
)

// sdkConnTable returns the SDK client's connection table (broker address ->
// *remote.tcpConnWrapper) of a producer made by producer.NewDefaultProducer,
// or nil.
func sdkConnTable(p any) (table *sync.Map) {
	defer func() {
		if recover() != nil {
			table = nil
		}
	}()
	field := func(v reflect.Value, name string) reflect.Value {
		for v.IsValid() && (v.Kind() == reflect.Interface || v.Kind() == reflect.Pointer) && !v.IsNil() {
			v = v.Elem()
		}
		if !v.IsValid() || v.Kind() != reflect.Struct {
			return reflect.Value{}
		}
		return v.FieldByName(name)
	}
	// *producer.defaultProducer .client -> *internal.rmqClient .remoteClient
	// -> *remote.remotingClient .connectionTable
	t := field(field(field(reflect.ValueOf(p), "client"), "remoteClient"), "connectionTable")
	if !t.IsValid() || t.Type() != reflect.TypeOf(sync.Map{}) || !t.CanAddr() {
		return nil
	}
	return (*sync.Map)(unsafe.Pointer(t.UnsafeAddr()))
}

// corker sets TCP_CORK on the connections of one SDK client.
type corker struct {
	table *sync.Map         // nil: nothing to cork
	conns []syscall.RawConn // corked now
}

// cork corks every connection of the table.
func (c *corker) cork() {
	if c.table == nil || !corkSupported {
		return
	}
	c.table.Range(func(_, w any) bool {
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
			c.conns = append(c.conns, rc)
		}
		return true
	})
}

// uncork sends what the corked connections hold and uncorks them.
func (c *corker) uncork() {
	for i, rc := range c.conns {
		setCork(rc, false)
		c.conns[i] = nil
	}
	c.conns = c.conns[:0]
}
