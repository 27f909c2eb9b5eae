#!/usr/bin/env python3
"""Build the rmq_native shared library (Go, cgo c-shared) into the package.

    python build_dll.py                        # build for this machine
    python build_dll.py --target windows-amd64 # cross-build one release target
    python build_dll.py --wheels               # every release target + wheels + sdist

The library is written to src/rmq_native/ as rmq_native-<os>-<arch>.<ext>
next to a copy of the C header (go/rmq_native.h) that the Python loader
reads its cdef from.

Release targets (--target, --wheels) use a fixed C toolchain so that the
result runs on every machine of its platform:

    windows-amd64  x86_64-w64-mingw32-gcc-win32 (Debian mingw-w64; imports system DLLs only)
    windows-arm64  zig cc -target aarch64-windows-gnu  (imports system DLLs only)
    linux-amd64    zig cc -target x86_64-linux-gnu.2.17   (glibc 2.17 floor)
    linux-arm64    zig cc -target aarch64-linux-gnu.2.17  (glibc 2.17 floor)
    darwin-arm64 / darwin-amd64   clang (macOS hosts only)

zig comes from the ``ziglang`` Python package (pip install ziglang). The
environment variable RMQ_NATIVE_CC overrides the C compiler of a release
target. A release build is skipped when a stamp next to the library shows
it was built from the same sources with the same toolchain.

--wheels writes one ``py3-none-<platform>`` wheel per target, holding that
target's library only, and an sdist (which builds the library from source
with Go when installed) into dist/.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
GO_DIR = ROOT / "go"
PKG_DIR = ROOT / "src" / "rmq_native"
HEADER = "rmq_native.h"
NATIVE_DIR = ROOT / "build" / "native"  # release builds of --wheels, one dir per target
DIST_DIR = ROOT / "dist"

_EXT = {"linux": "so", "windows": "dll", "darwin": "dylib"}
_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}

# target -> wheel platform tag
PLATFORM_TAGS = {
    "windows-amd64": "win_amd64",
    "windows-arm64": "win_arm64",
    "linux-amd64": "manylinux_2_17_x86_64",
    "linux-arm64": "manylinux_2_17_aarch64",
    "darwin-arm64": "macosx_12_0_arm64",
    "darwin-amd64": "macosx_12_0_x86_64",
}
# the targets --wheels builds by default (all cross-buildable from Linux)
WHEEL_TARGETS = ("windows-amd64", "windows-arm64", "linux-amd64", "linux-arm64")
_ZIG_TRIPLES = {
    "linux-amd64": "x86_64-linux-gnu.2.17",
    "linux-arm64": "aarch64-linux-gnu.2.17",
    "windows-arm64": "aarch64-windows-gnu",
}
# The MinGW-w64 gcc of windows-amd64 release builds. Either thread model
# gives a DLL importing system DLLs only (go/errstore.c uses the Windows TLS
# API, not __thread); tests/test_wheels.py builds with both.
MINGW_CC = "x86_64-w64-mingw32-gcc-win32"
_MACOS_MIN = "12.0"  # Go 1.25+ needs macOS 12
LDFLAGS = "-s -w"


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
    """Build the library for ``target`` into ``out_dir`` and return its path
    (with the environment's C compiler: the plain host build)."""
    return _go_build(target, out_dir, {})


def _go_build(target: str, out_dir: Path, extra_env: dict) -> Path:
    go = find_go()
    goos, goarch = target.split("-", 1)
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / library_name(target)
    env = dict(os.environ, CGO_ENABLED="1", GOOS=goos, GOARCH=goarch, **extra_env)
    cmd = [go, "build", "-buildmode=c-shared", "-trimpath", "-ldflags", LDFLAGS, "-o", str(out), "."]
    print(f"build_dll: building {out.name}" + (f" (CC={extra_env['CC']})" if "CC" in extra_env else ""), flush=True)
    subprocess.run(cmd, cwd=GO_DIR, env=env, check=True)
    # cgo writes a generated header next to the library; the package ships
    # the hand-written contract instead.
    out.with_suffix(".h").unlink(missing_ok=True)
    install_header(out_dir)
    return out


def install_header(out_dir: Path) -> None:
    """Copy the header next to the library, with the cffi declarations made
    from it (rmq_native/_ffi_decls.py: the package then needs no C parser at
    run time)."""
    shutil.copyfile(GO_DIR / HEADER, out_dir / HEADER)
    sys.path.insert(0, str(PKG_DIR.parent))
    try:
        from rmq_native._ffi import write_declarations
    finally:
        sys.path.pop(0)
    write_declarations(out_dir / HEADER, out_dir)


# ---- release (cross) builds ------------------------------------------------


def _quote(args: list) -> str:
    # cmd/go splits CC like a shell would (quotes group words)
    return " ".join(f"'{a}'" if (" " in a or not a) else a for a in args)


def toolchain_env(target: str) -> dict:
    """The environment (CC and friends) of a release build of ``target``."""
    if target not in PLATFORM_TAGS:
        raise SystemExit(f"build_dll: unknown target {target!r}; known: {', '.join(PLATFORM_TAGS)}")
    env: dict = {}
    override = os.environ.get("RMQ_NATIVE_CC")
    goos, goarch = target.split("-", 1)
    if override:
        env["CC"] = override
    elif target == "windows-amd64":
        cc = MINGW_CC
        if shutil.which(cc) is None and host_target() == "windows-amd64" and shutil.which("gcc"):
            cc = "gcc"  # MinGW-w64 gcc on a Windows host
        if shutil.which(cc) is None:
            raise SystemExit(
                f"build_dll: {MINGW_CC} not found (Debian/Ubuntu: apt-get install gcc-mingw-w64-x86-64-win32)"
            )
        env["CC"] = cc
    elif target in _ZIG_TRIPLES:
        try:
            import ziglang  # noqa: F401
        except ImportError:
            raise SystemExit(f"build_dll: {target} release builds use zig as C compiler: pip install ziglang") from None
        env["CC"] = _quote([sys.executable, "-m", "ziglang", "cc", "-target", _ZIG_TRIPLES[target]])
    elif goos == "darwin":
        if platform.system() != "Darwin":
            raise SystemExit("build_dll: darwin targets build on macOS only")
        arch = "arm64" if goarch == "arm64" else "x86_64"
        env["CC"] = f"clang -arch {arch}"
        env["MACOSX_DEPLOYMENT_TARGET"] = _MACOS_MIN
        env["CGO_CFLAGS"] = f"-O2 -g -mmacosx-version-min={_MACOS_MIN}"
        env["CGO_LDFLAGS"] = f"-mmacosx-version-min={_MACOS_MIN}"
    return env


def _sources_digest(extra: str) -> str:
    h = hashlib.sha256(extra.encode())
    for p in sorted(GO_DIR.iterdir()):
        if p.is_file() and p.suffix in (".go", ".c", ".h", ".mod", ".sum", ".s"):
            h.update(p.name.encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


class _DirLock:
    """An exclusive lock on a directory (POSIX; a no-op elsewhere), so that
    parallel test sessions do not build the same library at once."""

    def __init__(self, d: Path):
        self.path = d / ".build.lock"
        self.f = None

    def __enter__(self):
        try:
            import fcntl
        except ImportError:
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.f = open(self.path, "w")
        fcntl.flock(self.f, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        if self.f is not None:
            self.f.close()  # releases the lock


def release_build(target: str, out_dir: Path = PKG_DIR, force: bool = False) -> Path:
    """Build ``target`` with its release toolchain into ``out_dir``; reuse an
    up-to-date earlier build (same sources, toolchain and Go version)."""
    out_dir = Path(out_dir).resolve()
    with _DirLock(out_dir):
        return _release_build(target, out_dir, force)


def _release_build(target: str, out_dir: Path, force: bool) -> Path:
    env = toolchain_env(target)
    out = out_dir / library_name(target)
    go_version = subprocess.run([find_go(), "version"], capture_output=True, text=True, check=True).stdout.strip()
    digest = _sources_digest(repr(sorted(env.items())) + LDFLAGS + go_version)
    stamp = out.with_name(out.name + ".stamp")
    if not force and out.exists() and stamp.exists() and stamp.read_text().strip() == digest:
        print(f"build_dll: {out.name} is up to date", flush=True)
        install_header(out_dir)
        return out
    t0 = time.monotonic()
    _go_build(target, out_dir, env)
    stamp.write_text(digest + "\n")
    print(f"build_dll: built {out.name} in {time.monotonic() - t0:.0f}s ({out.stat().st_size} bytes)", flush=True)
    return out


# ---- wheels and sdist --------------------------------------------------------


def build_wheel(target: str, library: Path, dist_dir: Path = DIST_DIR) -> Path:
    """Package one ``py3-none-<platform>`` wheel holding only ``library``."""
    dist_dir.mkdir(parents=True, exist_ok=True)
    plat = PLATFORM_TAGS[target]
    for old in dist_dir.glob(f"*-py3-none-{plat}.whl"):
        old.unlink()
    env = dict(os.environ, RMQ_NATIVE_TARGET=target, RMQ_NATIVE_LIBRARY=str(library))
    with tempfile.TemporaryDirectory(prefix=f"rmq-wheel-{target}-") as tmp:
        # a fresh build base per wheel: setuptools would otherwise carry
        # files of an earlier wheel (another platform's library) along
        cmd = [
            sys.executable, "setup.py", "-q",
            "build", "--build-base", str(Path(tmp) / "build"),
            "egg_info", "--egg-base", tmp,
            "bdist_wheel", "--plat-name", plat, "--bdist-dir", str(Path(tmp) / "bdist"),
            "--dist-dir", str(dist_dir),
        ]  # fmt: skip
        subprocess.run(cmd, cwd=ROOT, env=env, check=True)
    wheels = list(dist_dir.glob(f"*-py3-none-{plat}.whl"))
    if len(wheels) != 1:
        raise SystemExit(f"build_dll: expected one {plat} wheel in {dist_dir}, found {wheels}")
    print(f"build_dll: wrote {wheels[0]}", flush=True)
    return wheels[0]


def build_sdist(dist_dir: Path = DIST_DIR) -> Path:
    """The source distribution: Go sources + build_dll.py, no libraries."""
    dist_dir.mkdir(parents=True, exist_ok=True)
    for old in dist_dir.glob("*.tar.gz"):
        old.unlink()
    with tempfile.TemporaryDirectory(prefix="rmq-sdist-") as tmp:
        cmd = [sys.executable, "setup.py", "-q", "egg_info", "--egg-base", tmp, "sdist", "--dist-dir", str(dist_dir)]
        subprocess.run(cmd, cwd=ROOT, check=True)
    (sdist,) = dist_dir.glob("*.tar.gz")
    print(f"build_dll: wrote {sdist}", flush=True)
    return sdist


def build_all(targets: tuple = WHEEL_TARGETS, dist_dir: Path = DIST_DIR, sdist: bool = True) -> list:
    out = []
    for t in targets:
        lib = release_build(t, NATIVE_DIR / t)
        out.append(build_wheel(t, lib, dist_dir))
    if sdist:
        out.append(build_sdist(dist_dir))
    return out


def main(argv: list | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--target", action="append", default=None,
        help=f"release target to build ({', '.join(PLATFORM_TAGS)}); repeatable; with --wheels: the wheels to build",
    )  # fmt: skip
    ap.add_argument("--wheels", action="store_true",
                    help="build wheels (default: " + ", ".join(WHEEL_TARGETS) + ") and an sdist into dist/")
    ap.add_argument("--no-sdist", action="store_true", help="with --wheels: no sdist")
    ap.add_argument("--out-dir", type=Path, default=None,
                    help="where --target writes the library (default: src/rmq_native)")
    ap.add_argument("--dist-dir", type=Path, default=DIST_DIR, help="where --wheels writes (default: dist/)")
    ap.add_argument("--force", action="store_true", help="rebuild even when up to date")
    args = ap.parse_args(argv)
    try:
        if args.wheels:
            for p in build_all(tuple(args.target or WHEEL_TARGETS), args.dist_dir, sdist=not args.no_sdist):
                print(p)
        elif args.target:
            for t in args.target:
                print(release_build(t, args.out_dir or PKG_DIR, force=args.force))
        else:
            print(build(host_target()))
    except subprocess.CalledProcessError as e:
        print(f"build_dll: {Path(str(e.cmd[0])).name} failed with exit code {e.returncode}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
