"""The release artefacts: cross-built libraries and the wheels holding them.

Everything is built once per session (``build_dll.build_all``: the libraries
are reused while up to date, the Go build cache keeps rebuilds short) into a
temporary dist directory -- or, when RMQ_NATIVE_DIST names a directory, the
wheels found there are checked instead (the release workflow checks the very
files it publishes). Needs mingw-w64 with both thread models
(gcc-mingw-w64-x86-64-posix and -win32), zig (PyPI ziglang) and auditwheel;
runs on Linux only. The Windows DLLs' import tables are read by
tools/wheel_check.py, the script the release workflow runs on Windows.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
import uuid
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HEADER = ROOT / "go" / "rmq_native.h"

pytestmark = [
    pytest.mark.wheels,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="cross builds run on Linux"),
]

PLATFORMS = {
    "windows-amd64": "win_amd64",
    "windows-arm64": "win_arm64",
    "linux-amd64": "manylinux_2_17_x86_64",
    "linux-arm64": "manylinux_2_17_aarch64",
}
sys.path.insert(0, str(ROOT / "tools"))
import wheel_check  # noqa: E402


def abi_functions() -> set:
    """The function names declared in the C header (the contract)."""
    text = re.sub(r"/\*.*?\*/", "", HEADER.read_text(encoding="utf-8"), flags=re.S)
    names = set(re.findall(r"^\s*(?:int32_t|void)\s+(rmq_\w+)\s*\(", text, flags=re.M))
    assert len(names) > 20, names
    return names


@pytest.fixture(scope="session")
def build_dll_module():
    sys.path.insert(0, str(ROOT))
    import build_dll

    return build_dll


@pytest.fixture(scope="session")
def artefacts(build_dll_module, tmp_path_factory) -> dict:
    """{"windows-amd64": wheel, ..., "sdist": path} built once per session
    (or the ones in RMQ_NATIVE_DIST)."""
    given = os.environ.get("RMQ_NATIVE_DIST")
    if given:
        paths = sorted(Path(given).iterdir())
    else:
        dist = tmp_path_factory.mktemp("dist")
        try:
            paths = build_dll_module.build_all(tuple(PLATFORMS), dist_dir=dist, sdist=True)
        except SystemExit as e:  # build_dll reports missing tools this way
            pytest.fail(f"cannot build the wheels: {e}", pytrace=False)
        except subprocess.CalledProcessError as e:
            pytest.fail(f"cannot build the wheels: {e}", pytrace=False)
    out = {"sdist": next(p for p in paths if p.name.endswith(".tar.gz"))}
    for target, plat in PLATFORMS.items():
        (out[target],) = [p for p in paths if p.name.endswith(f"-py3-none-{plat}.whl")]
    return out


def library_of(artefacts, build_dll_module, target: str, tmp_path_factory) -> Path:
    """The library inside the target's wheel (the file users get)."""
    name = build_dll_module.library_name(target)
    out = tmp_path_factory.mktemp(f"lib-{target}") / name
    with zipfile.ZipFile(artefacts[target]) as z:
        out.write_bytes(z.read(f"rmq_native/{name}"))
    return out


def objdump_p(dll: Path, objdump: str = "x86_64-w64-mingw32-objdump") -> str:
    found = shutil.which(objdump)
    assert found, f"{objdump} not found (Debian: binutils-mingw-w64-x86-64 / llvm)"
    return subprocess.run([found, "-p", str(dll)], capture_output=True, text=True, check=True).stdout


@pytest.fixture(scope="session")
def windows_dll_info(artefacts, build_dll_module, tmp_path_factory) -> str:
    return objdump_p(library_of(artefacts, build_dll_module, "windows-amd64", tmp_path_factory))


def assert_system_imports_only(dll: Path, machine: str) -> None:
    """tools/wheel_check.py's reading of the import table (what the release
    workflow checks on Windows), cross-checked with objdump (mingw's for
    x86_64, LLVM's for ARM64)."""
    got_machine, names = wheel_check.pe_info(dll)
    assert got_machine == machine
    wheel_check.check_imports(dll)  # raises CheckError naming a non-system import
    objdump = "x86_64-w64-mingw32-objdump" if machine == "amd64" else "llvm-objdump"
    assert re.findall(r"DLL Name:\s*(\S+)", objdump_p(dll, objdump)) == names


@pytest.mark.parametrize("target, machine", [("windows-amd64", "amd64"), ("windows-arm64", "arm64")])
def test_released_windows_dlls_import_only_system_dlls(
    artefacts, build_dll_module, tmp_path_factory, target: str, machine: str
) -> None:
    assert_system_imports_only(library_of(artefacts, build_dll_module, target, tmp_path_factory), machine)


@pytest.mark.parametrize("thread_model", ["posix", "win32"])
def test_windows_dll_of_either_mingw_thread_model_imports_only_system_dlls(
    build_dll_module, monkeypatch: pytest.MonkeyPatch, thread_model: str
) -> None:
    """Whichever MinGW-w64 builds it (posix threads: MSYS2, GitHub's Windows
    images; win32 threads), the DLL needs no MinGW runtime DLL. With __thread
    in go/errstore.c the posix build imported libwinpthread-1.dll."""
    cc = f"x86_64-w64-mingw32-gcc-{thread_model}"
    assert shutil.which(cc), f"{cc} not found (Debian: apt-get install gcc-mingw-w64-x86-64-{thread_model})"
    monkeypatch.setenv("RMQ_NATIVE_CC", cc)
    try:
        # the win32 build is the release build (same compiler): reused when up to date
        out = "windows-amd64" if cc == build_dll_module.MINGW_CC else f"mingw-{thread_model}"
        dll = build_dll_module.release_build("windows-amd64", build_dll_module.NATIVE_DIR / out)
    except subprocess.CalledProcessError as e:
        pytest.fail(f"cannot build with {cc}: {e}", pytrace=False)
    assert_system_imports_only(dll, "amd64")


def test_release_builds_use_the_pinned_toolchains(build_dll_module, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RMQ_NATIVE_CC", raising=False)
    assert build_dll_module.toolchain_env("windows-amd64")["CC"] == "x86_64-w64-mingw32-gcc-win32"
    assert build_dll_module.toolchain_env("windows-arm64")["CC"].endswith("cc -target aarch64-windows-gnu")


def test_windows_dll_exports_exactly_the_header_functions(windows_dll_info: str) -> None:
    table = windows_dll_info.split("[Ordinal/Name Pointer] Table", 1)
    assert len(table) == 2, "no export table"
    exports = set(re.findall(r"^\s*\[\s*\d+\]\s+(\w+)\s*$", table[1], flags=re.M))
    want = abi_functions()
    assert not want - exports, f"missing exports: {sorted(want - exports)}"
    extra = {e for e in exports if e.startswith("rmq_")} - want
    assert not extra, f"exported but not in rmq_native.h: {sorted(extra)}"


def test_windows_arm64_dll_exports_exactly_the_header_functions(artefacts, build_dll_module, tmp_path_factory) -> None:
    dll = library_of(artefacts, build_dll_module, "windows-arm64", tmp_path_factory)
    table = objdump_p(dll, "llvm-objdump").split("Export Table:", 1)
    assert len(table) == 2, "no export table"
    exports = set(re.findall(r"^\s*\d+\s+0x[0-9a-f]+\s+(\w+)\s*$", table[1], flags=re.M))
    exported = {e for e in exports if e.startswith("rmq_")}
    assert exported == abi_functions(), (sorted(abi_functions() - exported), sorted(exported - abi_functions()))


def test_linux_library_exports_the_header_functions(artefacts, build_dll_module, tmp_path_factory) -> None:
    so = library_of(artefacts, build_dll_module, "linux-amd64", tmp_path_factory)
    out = subprocess.run(["nm", "-D", "--defined-only", str(so)], capture_output=True, text=True, check=True).stdout
    exports = {line.split()[-1] for line in out.splitlines() if line.strip()}
    assert not abi_functions() - exports, f"missing exports: {sorted(abi_functions() - exports)}"


@pytest.mark.parametrize("target", ["linux-amd64", "linux-arm64"])
def test_auditwheel_agrees_linux_wheels_are_manylinux_2_17(artefacts, target: str) -> None:
    auditwheel = shutil.which("auditwheel") or str(Path(sys.executable).with_name("auditwheel"))
    proc = subprocess.run([auditwheel, "show", str(artefacts[target])], capture_output=True, text=True)
    text = " ".join(proc.stdout.split())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    plat = PLATFORMS[target]
    assert f'is consistent with the following platform tag: "{plat}"' in text, proc.stdout
    assert "requires no external shared libraries" in text or "system-provided shared libraries" in text


@pytest.mark.parametrize("target", list(PLATFORMS))
def test_wheel_holds_one_library_for_its_platform_and_tags_match(artefacts, build_dll_module, target: str) -> None:
    wheel = artefacts[target]
    plat = PLATFORMS[target]
    assert wheel.name == f"rmq_native-{wheel.name.split('-')[1]}-py3-none-{plat}.whl"
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        libraries = [n for n in names if re.search(r"\.(so|dll|dylib)$", n)]
        assert libraries == [f"rmq_native/{build_dll_module.library_name(target)}"], names
        assert "rmq_native/rmq_native.h" in names
        assert not [n for n in names if ".data/" in n], "everything belongs in the wheel root (platlib)"
        assert z.read("rmq_native/rmq_native.h") == HEADER.read_bytes()
        meta = z.read(next(n for n in names if n.endswith(".dist-info/WHEEL"))).decode()
        assert f"Tag: py3-none-{plat}" in meta.splitlines(), meta
        assert "Root-Is-Purelib: false" in meta, meta
        library = z.read(libraries[0])
    # the library inside is the one built for that platform
    magic = {"windows-amd64": b"MZ", "windows-arm64": b"MZ", "linux-amd64": b"\x7fELF", "linux-arm64": b"\x7fELF"}[
        target
    ]
    assert library[: len(magic)] == magic
    if magic == b"\x7fELF":
        machine = int.from_bytes(library[18:20], "little")
        assert machine == {"linux-amd64": 62, "linux-arm64": 183}[target]  # EM_X86_64, EM_AARCH64
    else:
        pe = int.from_bytes(library[0x3C:0x40], "little")
        machine = {"windows-amd64": 0x8664, "windows-arm64": 0xAA64}[target]
        assert library[pe : pe + 4] == b"PE\0\0" and int.from_bytes(library[pe + 4 : pe + 6], "little") == machine


def test_sdist_holds_the_go_sources_and_no_library(artefacts) -> None:
    import tarfile

    with tarfile.open(artefacts["sdist"]) as t:
        names = [n.split("/", 1)[1] for n in t.getnames() if "/" in n]
    assert "build_dll.py" in names and "setup.py" in names
    assert {"go/go.mod", "go/go.sum", "go/lib.go", "go/rmq_native.h", "go/errstore.c"} <= set(names)
    assert not [n for n in names if re.search(r"rmq_native-.*\.(so|dll|dylib)$", n)], names


ROUND_TRIP = textwrap.dedent(
    """
    import os, shutil, sys, time
    assert shutil.which("go") is None, "Go is on PATH"
    import rmq_native
    from rmq_native import Admin, Consumer, Producer
    here = os.path.dirname(rmq_native.__file__)
    assert here.startswith(sys.prefix), here  # the installed wheel, not the source tree
    ns, topic, group = sys.argv[1:4]
    with Admin(ns) as admin:
        admin.create_topic(topic, queues=2)
        sent = {}
        with Producer(ns, group + "_P") as p:
            for i in range(10):
                body = f"wheel-{i}-".encode() + os.urandom(8)
                r = p.send(topic, body, tags=f"t{i % 2}", keys=[f"k{i}"], properties={"i": str(i)})
                assert r.msg_id, r
                sent[body] = i
        got = {}
        with Consumer(ns, group, topic, from_where="first") as c:
            deadline = time.monotonic() + 60
            for m in c.messages(timeout=60):
                got[m.body] = m
                if len(got) == len(sent) or time.monotonic() > deadline:
                    break
        admin.delete_topic(topic)
    assert set(got) == set(sent), (len(got), len(sent))
    for body, m in got.items():
        i = sent[body]
        assert (m.topic, m.tags, m.keys, m.properties) == (topic, f"t{i % 2}", [f"k{i}"], {"i": str(i)}), m
    print("ROUND TRIP OK", rmq_native.__version__, os.listdir(here))
    """
)


def test_linux_wheel_installs_without_go_and_round_trips(artefacts, rocketmq_namesrv: str, tmp_path: Path) -> None:
    if os.uname().machine not in ("x86_64", "amd64"):
        pytest.skip("the x86_64 wheel installs on x86_64 only")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    # PATH: the venv only -- no Go, no compiler
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "GO", "CGO"))}
    env["PATH"] = str(venv / "bin")
    env.pop("RMQ_NAMESRV", None)
    pip = subprocess.run(
        [str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(artefacts["linux-amd64"])],
        env=env, cwd=tmp_path, capture_output=True, text=True,
    )  # fmt: skip
    assert pip.returncode == 0, pip.stdout + pip.stderr
    tag = f"{os.getpid()}_{uuid.uuid4().hex[:8]}"
    script = tmp_path / "round_trip.py"
    script.write_text(ROUND_TRIP, encoding="utf-8")
    proc = subprocess.run(
        [str(py), str(script), rocketmq_namesrv, f"WheelT_{tag}", f"WheelG_{tag}"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ROUND TRIP OK" in proc.stdout
    assert "rmq_native-linux-amd64.so" in proc.stdout
