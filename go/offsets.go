package main

/*
#include "rmq_native.h"
*/
import "C"

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
)

// Broadcasting consumers keep their offsets in files the SDK (v2.1.2)
// writes as <state dir>/offsets/<group>/<client ip>@<instance>/offset.json.
// It replaces the file by removing it and then renaming offset.json.tmp
// (a crash in between leaves no offset.json: the next start began from
// from_where again), and never writes the .bak it reads. The library works
// around both: before the SDK loads the file it installs the newest intact
// copy (offset.json, else offset.json.tmp, else offset.json.bak) atomically,
// and it keeps offset.json.bak as a synced copy of the last intact file.

// windowsReserved are the characters Windows forbids in file names.
const windowsReserved = "<>:\"/\\|?*"

// prepareOffsetFiles refuses a group that cannot be a file name on every
// platform and restores the offset files of the consumer's instance.
func prepareOffsetFiles(group, instance string) error {
	if strings.ContainsAny(group, windowsReserved) {
		return errf(C.RMQ_ERR_INVALID_ARGUMENT,
			"group %q cannot be used by a broadcasting consumer: its offsets are kept in a folder named after the group, and a file name must not contain any of %s", group, windowsReserved)
	}
	for _, dir := range offsetDirs(group, instance) {
		if err := restoreOffsets(dir); err != nil {
			return errf(C.RMQ_ERR_STATE, "cannot restore the broadcasting offsets in %s: %v", dir, err)
		}
	}
	return nil
}

// offsetDirs lists the SDK's offset folders of a group's instance (one per
// client IP the machine had).
func offsetDirs(group, instance string) []string {
	base := filepath.Join(sdkOffsetDir, group)
	entries, err := os.ReadDir(base)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() && strings.HasSuffix(e.Name(), "@"+instance) {
			out = append(out, filepath.Join(base, e.Name()))
		}
	}
	return out
}

// intactOffsets reads an offset file and reports whether it is a complete
// JSON object.
func intactOffsets(path string) ([]byte, bool) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, false
	}
	var v map[string]json.RawMessage
	return data, json.Unmarshal(data, &v) == nil && v != nil
}

// restoreOffsets makes dir/offset.json the newest intact copy and
// dir/offset.json.bak a synced copy of it.
func restoreOffsets(dir string) error {
	path := filepath.Join(dir, "offset.json")
	for _, p := range []string{path, path + ".tmp", path + ".bak"} {
		data, ok := intactOffsets(p)
		if !ok {
			continue
		}
		if p != path {
			if err := writeAtomically(path, data); err != nil {
				return err
			}
		}
		return writeAtomically(path+".bak", data)
	}
	return nil
}

// backupOffsets refreshes the .bak copies after the SDK persisted the
// offsets at close.
func backupOffsets(group, instance string) {
	for _, dir := range offsetDirs(group, instance) {
		path := filepath.Join(dir, "offset.json")
		if data, ok := intactOffsets(path); ok {
			_ = writeAtomically(path+".bak", data)
		}
	}
}

// writeAtomically replaces path with data: a synced temporary file renamed
// over it (os.Rename replaces an existing file on Windows too).
func writeAtomically(path string, data []byte) error {
	tmp := path + ".rmq-tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
	}
	return err
}
