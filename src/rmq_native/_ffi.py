"""The only module that touches the native library.

It holds the cffi (ABI mode) declarations of the hand-written C header
shipped next to the library, and loads the library lazily, by absolute
path, once per process. A Go shared library can never be unloaded, so it is
kept for the life of the process.

The declarations come from ``_ffi_decls.py``, which ``build_dll.py`` writes
next to the header (cffi's out-of-line ABI mode: the header parsed once, at
build time). Parsing it at run time imports cffi's C parser (pycparser),
which cost about 130 ms of CPU and 5 MiB at every start; that is still done
when the module is missing or was made from another header.
"""

from __future__ import annotations

import importlib
import os
import re
import struct
import sys
import threading
import zlib
from pathlib import Path
from typing import Any

from cffi import FFI

from ._version import __version__
from .errors import LibraryError, RocketMQError, error_for_code

_HERE = Path(__file__).resolve().parent
HEADER = _HERE / "rmq_native.h"

_EXT = {"linux": "so", "windows": "dll", "darwin": "dylib"}
_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}

DECLS_MODULE = "_ffi_decls"
"""The generated declarations (see :func:`write_declarations`)."""


def header_digest(text: str) -> str:
    """What ties the generated declarations to the header they were made
    from (a checksum against stale files, not a security check; hashlib
    would load OpenSSL, 2 MiB, at every start)."""
    data = text.encode("utf-8")
    return f"{len(data)}-{zlib.crc32(data):08x}"


def write_declarations(header: Path, out_dir: Path) -> Path:
    """Write ``_ffi_decls.py`` (cffi out-of-line ABI mode) for header into
    out_dir; build_dll.py calls it next to the header it copies."""
    text = header.read_text(encoding="utf-8")
    builder = FFI()
    builder.cdef(cdef_from_header(text))
    builder.set_source(f"rmq_native.{DECLS_MODULE}", None)
    out = Path(out_dir) / f"{DECLS_MODULE}.py"
    tmp = out.with_suffix(".tmp")
    builder.emit_python_code(str(tmp))
    with open(tmp, "a", encoding="utf-8") as f:
        f.write(f"\nHEADER_DIGEST = {header_digest(text)!r}\n")
    os.replace(tmp, out)
    return out


def _declarations() -> Any:
    """The generated declarations when they match the header, else a blank
    FFI that :func:`_load` fills by parsing the header."""
    try:
        text = HEADER.read_text(encoding="utf-8")
        decls = importlib.import_module(f"{__package__}.{DECLS_MODULE}")  # written by build_dll.py
        if getattr(decls, "HEADER_DIGEST", None) == header_digest(text):
            return decls.ffi
    except (OSError, ImportError):
        pass
    return FFI()


ffi: Any = _declarations()  # typed loosely: cdata types are only known at run time
_lib: Any = None
_lock = threading.Lock()
_forked = False
_runtime_started = False  # the library was loaded: the Go runtime runs in this process


def cdef_from_header(text: str) -> str:
    """Turn the C header into a cffi cdef: keep the declarations and the
    integer ``#define RMQ_*`` constants; drop comments, other preprocessor
    lines and the ``#ifdef __cplusplus`` blocks."""
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    out = []
    skipping = False
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("#ifdef __cplusplus"):
            skipping = True
        elif skipping:
            skipping = not s.startswith("#endif")
        elif s.startswith("#"):
            if re.match(r"#define\s+RMQ_\w+\s+-?\d+$", s):
                out.append(s)
        else:
            out.append(line)
    return "\n".join(out)


def _machine() -> str:
    """The machine's architecture as ``platform.machine()`` gives it (the
    module itself, which import pays for, only on Windows)."""
    if sys.platform == "win32":
        import platform

        return platform.machine()
    return os.uname().machine


def library_filename() -> str:
    """The library file name for this platform and architecture."""
    system = sys.platform
    if system.startswith("linux"):
        goos = "linux"
    elif system in ("win32", "cygwin"):
        goos = "windows"
    elif system == "darwin":
        goos = "darwin"
    else:
        goos = system
    machine = _machine().lower()
    arch = _ARCH.get(machine, machine)
    if struct.calcsize("P") == 4:  # a 32-bit Python on a 64-bit system
        arch = {"amd64": "386", "arm64": "arm"}.get(arch, arch)
    return f"rmq_native-{goos}-{arch}.{_EXT.get(goos, 'so')}"


def state_dir() -> Path:
    """Where the library keeps files (broadcasting consumers' offsets):
    ``RMQ_NATIVE_STATE_DIR``, else ``%LOCALAPPDATA%\\rmq_native`` on Windows,
    else ``$XDG_STATE_HOME/rmq_native`` (``~/.local/state/rmq_native``)."""
    env = os.environ.get("RMQ_NATIVE_STATE_DIR")
    if env:
        return Path(env)
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
    else:
        base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "rmq_native"


def _after_fork_in_child() -> None:
    # Only a parent that loaded the library (and so started the Go runtime)
    # leaves the child unusable; a child of a parent that never loaded it
    # loads its own copy on first use.
    global _forked
    if _runtime_started:
        _forked = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _load() -> Any:
    path = _HERE / library_filename()
    if not path.exists():
        available = sorted(p.name for p in _HERE.glob("rmq_native-*.*") if p.suffix != ".h")
        raise LibraryError(
            f"rmq_native: no native library for this platform ({sys.platform} "
            f"{_machine()}): expected {path.name} in {_HERE}"
            + (f"; found only {', '.join(available)}" if available else "")
            + ". Install a wheel for your platform, or build it from source with "
            "'python build_dll.py' (needs Go and a C compiler)."
        )
    if isinstance(ffi, FFI):  # not the generated declarations: parse the header now
        ffi.cdef(cdef_from_header(HEADER.read_text(encoding="utf-8")))
    global _runtime_started
    try:
        lib = ffi.dlopen(str(path))
    except OSError as e:
        hint = ""
        if sys.platform == "win32":
            hint = (
                " (the released DLL needs only Windows system DLLs: a DLL built with another"
                " toolchain may need its runtime DLLs; reinstall the rmq-native wheel)"
            )
        raise LibraryError(f"rmq_native: cannot load {path}: {e}{hint}") from e
    _runtime_started = True
    buf = ffi.new("char[]", 64)
    lib.rmq_version(buf, 64)
    version = ffi.string(buf).decode()
    if version != __version__:
        raise LibraryError(
            f"rmq_native: native library {path.name} is version {version}, but the "
            f"Python package is {__version__}; reinstall rmq_native or rebuild the library"
        )
    state = str(state_dir().resolve()).encode("utf-8")
    if lib.rmq_set_state_dir(state, len(state)) != 0:
        raise LibraryError(f"rmq_native: cannot use state directory {state_dir()}")
    return lib


def lib() -> Any:
    """The loaded library (loaded on first use)."""
    global _lib
    if _forked:
        raise RocketMQError(
            "rmq_native: the native library cannot be used in a process created by "
            "fork() after it was loaded (the Go runtime does not survive fork); "
            "create clients in the child only, or use multiprocessing's 'spawn' start method",
            code=RocketMQError.code_state,
        )
    if _lib is None:
        with _lock:
            if _lib is None:
                _lib = _load()
    return _lib


def last_error() -> str:
    """The calling thread's last error message from the library."""
    lb = lib()
    buf = ffi.new("char[]", 1024)
    n = lb.rmq_last_error(buf, 1024)
    if n >= 1024:
        buf = ffi.new("char[]", n + 1)
        lb.rmq_last_error(buf, n + 1)
    return str(ffi.string(buf).decode("utf-8", "replace"))


def check(rc: int) -> None:
    """Raise the exception for a non-zero status code."""
    if rc != 0:
        raise error_for_code(rc, last_error())


def take_buffer(ptr: Any, length: int) -> bytes:
    """Copy a library-allocated buffer into bytes and release it."""
    if ptr == ffi.NULL:
        return b""
    try:
        return bytes(ffi.buffer(ptr, length))
    finally:
        lib().rmq_free(ptr)
