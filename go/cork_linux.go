package main

import "syscall"

const corkSupported = true

// setCork sets or clears TCP_CORK on a connection; false if it failed.
func setCork(rc syscall.RawConn, on bool) bool {
	v := 0
	if on {
		v = 1
	}
	var err error
	if cerr := rc.Control(func(fd uintptr) {
		err = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_CORK, v)
	}); cerr != nil {
		return false
	}
	return err == nil
}
