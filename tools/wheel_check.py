#!/usr/bin/env python3
"""Checks a release workflow runs on the wheels it publishes (standard
library only, so that it runs on a bare hosted runner; tests/test_wheel_check.py
runs it on Linux).

    python tools/wheel_check.py imports LIB.dll [LIB.dll ...]
        Reads each PE file's import table (no objdump needed) and fails
        unless it imports only DLLs every Windows installation has.

    python tools/wheel_check.py install --wheel-dir DIST --venv VENV
        Creates a fresh virtual environment and installs rmq-native into it
        from DIST only (pip --no-index), with a PATH holding the venv and the
        system directories only (no MinGW, no Go, no compiler); then checks
        that the package imports from the venv, loads the library the wheel
        holds, and that the library's imports are system DLLs (Windows).
        Prints the venv's python. Exit status 0 only if every check passes.

    python tools/wheel_check.py clean-path
        Prints that PATH (the workflow runs the tests with it).
"""

from __future__ import annotations

import argparse
import os
import struct
import subprocess
import sys
from pathlib import Path

# DLLs every Windows installation has (the library may import nothing else)
WINDOWS_SYSTEM_DLLS = frozenset({
    "kernel32.dll", "msvcrt.dll", "ntdll.dll", "advapi32.dll", "ws2_32.dll", "user32.dll",
    "bcrypt.dll", "bcryptprimitives.dll", "winmm.dll", "shell32.dll", "ole32.dll", "iphlpapi.dll",
    "ucrtbase.dll",
})  # fmt: skip
# API sets of the Universal C runtime, part of Windows 10 and later (every
# Windows on ARM64): the loader maps them to ucrtbase.dll. zig's
# aarch64-windows-gnu links against them.
SYSTEM_API_SET_PREFIX = "api-ms-win-crt-"
# what a clean PATH must not hold (a directory with one of these is dropped)
TOOLCHAIN_PROGRAMS = ("gcc", "cc", "go", "x86_64-w64-mingw32-gcc", "clang", "zig")
PE_MACHINES = {0x8664: "amd64", 0xAA64: "arm64", 0x14C: "386"}


class CheckError(Exception):
    pass


def pe_info(path: Path) -> tuple[str, list[str]]:
    """(machine, imported DLL names) of a PE file, from its import directory."""
    data = Path(path).read_bytes()
    if data[:2] != b"MZ":
        raise CheckError(f"{path}: not a PE file")
    (pe,) = struct.unpack_from("<I", data, 0x3C)
    if data[pe : pe + 4] != b"PE\0\0":
        raise CheckError(f"{path}: no PE signature")
    machine, nsections = struct.unpack_from("<HH", data, pe + 4)
    (opt_size,) = struct.unpack_from("<H", data, pe + 20)
    opt = pe + 24
    (magic,) = struct.unpack_from("<H", data, opt)
    dirs = opt + (112 if magic == 0x20B else 96)  # PE32+ / PE32 data directories
    import_rva, _ = struct.unpack_from("<II", data, dirs + 8)  # entry 1: imports
    sections = []
    for i in range(nsections):
        s = opt + opt_size + 40 * i
        vsize, vaddr, rawsize, rawptr = struct.unpack_from("<IIII", data, s + 8)
        sections.append((vaddr, max(vsize, rawsize), rawptr))

    def offset(rva: int) -> int:
        for vaddr, size, rawptr in sections:
            if vaddr <= rva < vaddr + size:
                return rva - vaddr + rawptr
        raise CheckError(f"{path}: RVA {rva:#x} outside every section")

    names = []
    if import_rva:
        pos = offset(import_rva)
        while True:
            desc = struct.unpack_from("<IIIII", data, pos)
            if not any(desc):
                break
            start = offset(desc[3])
            names.append(data[start : data.index(b"\0", start)].decode("ascii"))
            pos += 20
    return PE_MACHINES.get(machine, hex(machine)), names


def is_ucrt_api_set(name: str) -> bool:
    return name.lower().startswith(SYSTEM_API_SET_PREFIX) and name.lower().endswith(".dll")


def check_imports(path: Path) -> list[str]:
    """The DLL's imports; CheckError if one is not a Windows system DLL."""
    machine, names = pe_info(path)
    others = [n for n in names if n.lower() not in WINDOWS_SYSTEM_DLLS and not is_ucrt_api_set(n)]
    if "kernel32.dll" not in {n.lower() for n in names}:
        raise CheckError(f"{path}: no KERNEL32.dll import -- not a Windows DLL? imports: {names}")
    if others:
        raise CheckError(f"{path} ({machine}) imports non-system DLLs {others} (all imports: {names})")
    print(f"{path.name} ({machine}): imports only system DLLs: {', '.join(names)}")
    return names


def clean_path(path: str | None = None) -> str:
    """PATH without directories holding a compiler, MinGW or Go."""
    exts = [""] + (os.environ.get("PATHEXT", ".EXE").lower().split(";") if os.name == "nt" else [])
    keep = []
    for d in (path if path is not None else os.environ.get("PATH", "")).split(os.pathsep):
        low = d.lower()
        if not d or "mingw" in low or "msys" in low or "cygwin" in low or os.sep + "go" in low:
            continue
        if any(Path(d, prog + ext).is_file() for prog in TOOLCHAIN_PROGRAMS for ext in exts):
            continue
        keep.append(d)
    return os.pathsep.join(keep)


PROBE = """
import os, sys, rmq_native, rmq_native._ffi as f
lib_path = os.path.join(os.path.dirname(f.__file__), f.library_filename())
assert os.path.abspath(f.__file__).startswith(os.path.abspath(sys.prefix)), f.__file__
f.lib()
print(rmq_native.__version__)
print(lib_path)
"""


def install(wheel_dir: Path, venv: Path) -> Path:
    """Install rmq-native from wheel_dir only into a new venv; returns its python."""
    import shutil
    import venv as venv_mod

    wheels = sorted(Path(wheel_dir).glob("rmq_native-*.whl"))
    if not wheels:
        raise CheckError(f"no rmq_native wheel in {wheel_dir}")
    venv_mod.EnvBuilder(with_pip=True, clear=True).create(venv)
    py = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    bindir = str(py.parent)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "GO", "CGO", "PIP_"))}
    env["PATH"] = bindir + os.pathsep + clean_path()
    for prog in TOOLCHAIN_PROGRAMS:
        found = shutil.which(prog, path=env["PATH"])
        if found:
            raise CheckError(f"the clean PATH still finds {prog}: {found}")
    cmd = [str(py), "-m", "pip", "install", "--no-index", "--find-links", str(wheel_dir), "--only-binary", ":all:",
           "--disable-pip-version-check", "rmq-native"]  # fmt: skip
    # cffi and its dependency come from the same directory (the workflow downloads them there)
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise CheckError(f"pip install --no-index failed:\n{proc.stdout}{proc.stderr}")
    work = venv / "probe"  # not the source tree: the package must come from the venv
    work.mkdir(exist_ok=True)
    proc = subprocess.run([str(py), "-c", PROBE], env=env, cwd=work, capture_output=True, text=True)
    if proc.returncode != 0:
        raise CheckError(f"the installed package does not load its library:\n{proc.stdout}{proc.stderr}")
    version, lib_path = proc.stdout.split()[:2]
    print(f"installed rmq-native {version} from {wheel_dir} into {venv}; library {lib_path}")
    if lib_path.endswith(".dll"):
        check_imports(Path(lib_path))
    return py


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("imports", help="check the import tables of DLLs")
    p.add_argument("dlls", nargs="+", type=Path)
    p = sub.add_parser("install", help="install from a wheel directory into a clean venv")
    p.add_argument("--wheel-dir", type=Path, required=True)
    p.add_argument("--venv", type=Path, required=True)
    sub.add_parser("clean-path", help="print PATH without compilers, MinGW and Go")
    args = ap.parse_args(argv)
    try:
        if args.cmd == "imports":
            for dll in args.dlls:
                check_imports(dll)
        elif args.cmd == "install":
            print(install(args.wheel_dir.resolve(), args.venv.resolve()))
        else:
            print(clean_path())
    except CheckError as e:
        print(f"wheel_check: FAIL: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
