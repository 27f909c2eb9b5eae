package main

/*
#include "rmq_native.h"
*/
import "C"

import (
	"os"
	"path/filepath"
	_ "unsafe" // for go:linkname
)

// sdkOffsetDir is the SDK's folder for broadcasting consumers' offsets. The
// SDK sets it once, when the library loads, from the environment variable
// rocketmq.client.localOffsetStoreDir or else $HOME (unset on Windows, which
// sent the files to the current directory). The library sets it instead.
//
//go:linkname sdkOffsetDir github.com/apache/rocketmq-client-go/v2/consumer._LocalOffsetStorePath
var sdkOffsetDir string

// init keeps the offsets out of the current directory for callers that
// never call rmq_set_state_dir: without HOME (Windows) the SDK's default is
// a relative path. It runs after the SDK's own init.
func init() {
	if !filepath.IsAbs(sdkOffsetDir) {
		if d, err := os.UserCacheDir(); err == nil {
			sdkOffsetDir = filepath.Join(d, "rmq_native", "offsets")
		}
	}
}

// rmq_set_state_dir: see rmq_native.h.
//
//export rmq_set_state_dir
func rmq_set_state_dir(dir *C.char, dirLen C.int64_t) C.int32_t {
	return call(func() error {
		d, err := goString(dir, dirLen)
		if err != nil {
			return err
		}
		if d == "" || !filepath.IsAbs(d) {
			return errf(C.RMQ_ERR_INVALID_ARGUMENT, "state directory must be an absolute path, not %q", d)
		}
		sdkOffsetDir = filepath.Join(d, "offsets")
		return nil
	})
}
