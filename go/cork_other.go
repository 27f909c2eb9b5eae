//go:build !linux

package main

import "syscall"

const corkSupported = false // TCP_CORK is Linux's

// setCork does nothing where TCP_CORK does not exist.
func setCork(syscall.RawConn, bool) bool { return false }
