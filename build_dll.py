#!/usr/bin/env python3
"""Build the rmq_native shared library (Go, cgo c-shared) into the package.

    python build_dll.py            # build for this machine

The library is written to src/rmq_native/ as rmq_native-<os>-<arch>.<ext>
next to a copy of the C header (go/rmq_native.h) that the Python loader
reads its cdef from.
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
GO_DIR = ROOT / "go"
PKG_DIR = ROOT / "src" / "rmq_native"
HEADER = "rmq_native.h"

_EXT = {"linux": "so", "windows": "dll", "darwin": "dylib"}
_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


def host_target() -> str:
    """The Go-style target of this machine, for example ``linux-amd64``."""
    system = platform.system().lower()
    arch = _ARCH.get(platform.machine().lower())
    if system not in _EXT or arch is None:
        raise SystemExit(f"build_dll: unsupported platform {platform.system()} {platform.machine()}")
    return f"{system}-{arch}"


def library_name(target: str) -> str:
    goos, _ = target.split("-", 1)
    return f"rmq_native-{target}.{_EXT[goos]}"


def find_go() -> str:
    go = shutil.which("go")
    if go is None:
        raise SystemExit(
            "build_dll: no Go toolchain found on PATH. Install Go 1.21 or newer "
            "(and a C compiler for cgo), or install a prebuilt rmq-native wheel instead."
        )
    return go


def build(target: str, out_dir: Path = PKG_DIR) -> Path:
    """Build the library for ``target`` into ``out_dir`` and return its path."""
    go = find_go()
    goos, goarch = target.split("-", 1)
    out = out_dir / library_name(target)
    env = dict(os.environ, CGO_ENABLED="1", GOOS=goos, GOARCH=goarch)
    cmd = [go, "build", "-buildmode=c-shared", "-trimpath", "-ldflags", "-s -w", "-o", str(out), "."]
    print(f"build_dll: building {out.name}", flush=True)
    subprocess.run(cmd, cwd=GO_DIR, env=env, check=True)
    # cgo writes a generated header next to the library; the package ships
    # the hand-written contract instead.
    out.with_suffix(".h").unlink(missing_ok=True)
    shutil.copyfile(GO_DIR / HEADER, out_dir / HEADER)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--target", default=None, help="os-arch to build for (default: this machine)")
    args = ap.parse_args(argv)
    try:
        path = build(args.target or host_target())
    except subprocess.CalledProcessError as e:
        print(f"build_dll: go build failed with exit code {e.returncode}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
