package main

import (
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
	c := corker{table: &table}
	c.cork()
	if len(c.conns) != 1 || !corkedNow(t, conn.(*net.TCPConn)) {
		t.Fatalf("not corked (%d connections)", len(c.conns))
	}
	c.uncork()
	if len(c.conns) != 0 || corkedNow(t, conn.(*net.TCPConn)) {
		t.Fatal("still corked")
	}
}
