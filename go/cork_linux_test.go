package main

import (
	"context"
	"errors"
	"net"
	"sync"
	"syscall"
	"testing"
)

// corkedNow reads TCP_CORK of a connection.
func corkedNow(t *testing.T, c *net.TCPConn) bool {
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	v, gerr := 0, error(nil)
	if err := rc.Control(func(fd uintptr) {
		v, gerr = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_CORK)
	}); err != nil || gerr != nil {
		t.Fatal(err, gerr)
	}
	return v != 0
}

// The corker corks and uncorks the connections of a table laid out as the
// SDK's (address -> pointer to a struct embedding the net.Conn).
func TestCorkerCorksTheTablesConnections(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			defer c.Close()
			_, _ = c.Read(make([]byte, 16))
		}
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	type wrapper struct {
		net.Conn
		sync.Mutex
	}
	var table sync.Map
	table.Store("broker", &wrapper{Conn: conn})
	table.Store("other", "not a connection")
	conns := &sdkConns{table: &table}
	c := corker{conns: conns}
	c.cork()
	if len(c.held) != 1 || !corkedNow(t, conn.(*net.TCPConn)) || conns.runs.Load() != 1 {
		t.Fatalf("not corked (%d connections)", len(c.held))
	}
	// The interceptor leaves a dispatcher's run alone.
	_ = conns.aroundWrite(context.Background(), nil, nil, func(context.Context, any, any) error { return nil })
	if !corkedNow(t, conn.(*net.TCPConn)) {
		t.Fatal("the interceptor uncorked a dispatcher's run")
	}
	c.uncork()
	if len(c.held) != 0 || corkedNow(t, conn.(*net.TCPConn)) || conns.runs.Load() != 0 {
		t.Fatal("still corked")
	}
	// Otherwise it corks around the write, and uncorks after it.
	wantErr := errors.New("write failed")
	during := false
	err = conns.aroundWrite(context.Background(), nil, nil, func(context.Context, any, any) error {
		during = corkedNow(t, conn.(*net.TCPConn))
		return wantErr
	})
	if !during || err != wantErr || corkedNow(t, conn.(*net.TCPConn)) {
		t.Fatalf("corked during the write: %v, after: %v, error %v", during, corkedNow(t, conn.(*net.TCPConn)), err)
	}
}
