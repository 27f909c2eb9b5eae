"""Windows behaviour of the Python side, checked on any platform: the
library file chosen and the load errors for win32 (platform faked), the
state directory under %LOCALAPPDATA%, names that are not valid Windows file
names, a non-ASCII install path, and Ctrl+C (the Go runtime of the DLL must
not claim it). The DLL itself runs under Wine in tests/test_wine.py."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from cffi import FFI

import rmq_native
from rmq_native import Consumer, _ffi
from rmq_native.errors import LibraryError

ROOT = Path(__file__).resolve().parent.parent


def fake_windows(monkeypatch: pytest.MonkeyPatch, machine: str = "AMD64", pointer_size: int = 8) -> None:
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setattr(_ffi, "_machine", lambda: machine)

    class FakeStruct:
        @staticmethod
        def calcsize(fmt: str) -> int:
            return pointer_size

    monkeypatch.setattr(_ffi, "struct", FakeStruct)


@pytest.mark.parametrize(
    "machine, pointer_size, name",
    [
        ("AMD64", 8, "rmq_native-windows-amd64.dll"),
        ("ARM64", 8, "rmq_native-windows-arm64.dll"),
        ("AMD64", 4, "rmq_native-windows-386.dll"),  # 32-bit Python: no wheel, a clear error
    ],
)
def test_library_filename_on_windows(
    monkeypatch: pytest.MonkeyPatch, machine: str, pointer_size: int, name: str
) -> None:
    fake_windows(monkeypatch, machine, pointer_size)
    assert _ffi.library_filename() == name


def isolated_package(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, files: dict) -> Path:
    """_ffi looking at a package directory holding `files` (name -> bytes),
    with a fresh FFI so that the real one stays untouched."""
    pkg = tmp_path / "rmq_native"
    pkg.mkdir()
    shutil.copyfile(ROOT / "go" / "rmq_native.h", pkg / "rmq_native.h")
    for name, data in files.items():
        (pkg / name).write_bytes(data)
    monkeypatch.setattr(_ffi, "_HERE", pkg)
    monkeypatch.setattr(_ffi, "HEADER", pkg / "rmq_native.h")
    monkeypatch.setattr(_ffi, "ffi", FFI())
    return pkg


def test_missing_windows_library_names_the_expected_and_the_present_files(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # an x64 wheel installed into an ARM64 Python
    pkg = isolated_package(monkeypatch, tmp_path, {"rmq_native-windows-amd64.dll": b"MZ"})
    fake_windows(monkeypatch, "ARM64")
    with pytest.raises(LibraryError) as ei:
        _ffi._load()
    msg = str(ei.value)
    assert msg.startswith("rmq_native: no native library for this platform (win32 ARM64)"), msg
    assert "expected rmq_native-windows-arm64.dll in " + str(pkg) in msg
    assert "found only rmq_native-windows-amd64.dll" in msg and "Install a wheel for your platform" in msg


def test_unloadable_windows_library_gives_library_error_with_the_path(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # what a user sees when the DLL exists but the loader refuses it (a
    # broken download, or a DLL needing a DLL the machine lacks)
    pkg = isolated_package(monkeypatch, tmp_path, {"rmq_native-windows-amd64.dll": b"MZ not really a DLL"})
    fake_windows(monkeypatch)
    with pytest.raises(LibraryError) as ei:
        _ffi._load()
    msg = str(ei.value)
    assert msg.startswith(f"rmq_native: cannot load {pkg / 'rmq_native-windows-amd64.dll'}: "), msg
    assert "needs only Windows system DLLs" in msg and "reinstall the rmq-native wheel" in msg
    assert isinstance(ei.value.__cause__, OSError)


def test_state_dir_on_windows_is_under_localappdata(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake_windows(monkeypatch)
    monkeypatch.delenv("RMQ_NATIVE_STATE_DIR", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))  # ignored on Windows
    local = tmp_path / "Users" / "Zoë Ünïcode" / "AppData" / "Local"
    monkeypatch.setenv("LOCALAPPDATA", str(local))
    assert _ffi.state_dir() == local / "rmq_native"
    # no LOCALAPPDATA (a service account, a stripped environment): the profile's
    monkeypatch.delenv("LOCALAPPDATA")
    monkeypatch.setattr(Path, "home", classmethod(lambda cls: tmp_path / "home"))
    assert _ffi.state_dir() == tmp_path / "home" / "AppData" / "Local" / "rmq_native"
    # the environment variable wins everywhere
    monkeypatch.setenv("RMQ_NATIVE_STATE_DIR", str(tmp_path / "mine"))
    assert _ffi.state_dir() == tmp_path / "mine"


def test_state_dir_off_windows_ignores_localappdata(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.delenv("RMQ_NATIVE_STATE_DIR", raising=False)
    monkeypatch.setenv("LOCALAPPDATA", str(tmp_path / "win"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert _ffi.state_dir() == tmp_path / "xdg" / "rmq_native"


# RocketMQ allows '|' in group names, and Windows reserves CON, NUL, COM1...:
# the Python side accepts every group name the broker accepts and passes
# group and instance name on unchanged (the library maps names to file names
# and rejects instance names it cannot use); it never builds a path from them.
WINDOWS_UNFRIENDLY_GROUPS = ["CON", "nul", "COM1", "a|b", "%x%|LPT9"]


@pytest.mark.parametrize("group", WINDOWS_UNFRIENDLY_GROUPS)
def test_group_names_that_are_no_windows_file_names_are_accepted(monkeypatch: pytest.MonkeyPatch, group: str) -> None:
    sent: list = []

    def fake_init(self: Any, new_fn: str, close_fn: str, config: bytes) -> None:
        sent.append(config)
        raise RuntimeError("stop here")

    monkeypatch.setattr(rmq_native._client.NativeClient, "__init__", fake_init)
    with pytest.raises(RuntimeError, match="stop here"):
        Consumer("127.0.0.1:9876", group, "T", model="broadcasting", instance_name='inst:<1>/"?*\\')
    import json

    config = json.loads(sent[0])
    assert config["group"] == group and config["instance_name"] == 'inst:<1>/"?*\\'


def test_broadcasting_offsets_of_unfriendly_names_stay_inside_the_state_dir(
    rocketmq_namesrv: str, tmp_path: Path
) -> None:
    """In a child process with its own state dir: a broadcasting group that
    holds a character Windows forbids in file names is refused clearly; one
    whose group and instance names are reserved device names (CON, NUL)
    keeps its offsets inside <state dir>/offsets and nowhere else."""
    state = tmp_path / "state ✓"
    script = textwrap.dedent(
        """
        import sys, time
        from rmq_native import Admin, Consumer, InvalidArgumentError, Producer
        ns, topic = sys.argv[1:3]
        with Admin(ns) as admin:
            admin.create_topic(topic, queues=1)
            with Producer(ns) as p:
                p.send(topic, b"x")
            try:
                Consumer(ns, "CON|" + topic, topic, model="broadcasting")
            except InvalidArgumentError as e:
                assert "file name" in str(e), e
            else:
                raise AssertionError("a broadcasting group with '|' was accepted")
            with Consumer(ns, "CON", topic, model="broadcasting", from_where="first",
                          instance_name="NUL") as c:
                m = next(iter(c.messages(timeout=60)), None)
                assert m is not None and m.body == b"x", m
            admin.delete_topic(topic)
        print("DONE")
        """
    )
    topic = f"WinNames_{os.getpid()}_{os.urandom(3).hex()}"
    env = dict(os.environ, RMQ_NATIVE_STATE_DIR=str(state), HOME=str(tmp_path / "home"),
               PYTHONPATH=os.pathsep.join([str(Path(rmq_native.__file__).parent.parent)] + sys.path))  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", script, rocketmq_namesrv, topic], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=180)  # fmt: skip
    assert proc.returncode == 0 and "DONE" in proc.stdout, proc.stdout + proc.stderr
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert written, "no offset file written"
    outside = [p for p in written if (state / "offsets") not in p.parents]
    assert not outside, f"files outside the state dir: {outside}"


def test_package_loads_from_a_non_ascii_install_path(rocketmq_namesrv: str, tmp_path: Path) -> None:
    """A copy of the package (library included) under a non-ASCII folder,
    imported by a fresh interpreter, loads its library and sends."""
    src = Path(rmq_native.__file__).parent
    _ffi.lib()  # make sure this platform's library exists in the source package
    site = tmp_path / "Prögram Fïles ✓ 数据" / "site-packages"
    shutil.copytree(src, site / "rmq_native", ignore=shutil.ignore_patterns("__pycache__", "*.stamp", ".build.lock"))
    script = textwrap.dedent(
        """
        import sys, rmq_native, rmq_native._ffi as f
        from rmq_native import Producer
        assert rmq_native.__file__.startswith(sys.argv[2]), rmq_native.__file__
        f.lib()
        with Producer(sys.argv[1]) as p:
            pass
        print("LOADED", f.library_filename())
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(PYTHONPATH=str(site), PYTHONIOENCODING="utf-8", RMQ_NATIVE_STATE_DIR=str(tmp_path / "ßtate"))
    proc = subprocess.run([sys.executable, "-c", script, rocketmq_namesrv, str(site)], env=env, cwd=tmp_path,
                          capture_output=True, text=True, encoding="utf-8", timeout=120)  # fmt: skip
    assert proc.returncode == 0 and "LOADED" in proc.stdout, proc.stdout + proc.stderr


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inspects the Go sources (the Linux CI has Go)")
def test_windows_library_leaves_ctrl_c_to_the_application() -> None:
    """The Go runtime of a DLL installs a console control handler that passes
    Ctrl+C on unless the Go program asked for it (os/signal). The library must
    never link os/signal for Windows, or Ctrl+C would no longer reach
    Python's handler (KeyboardInterrupt). The Wine test proves it at run time."""
    go = shutil.which("go")
    assert go, "Go is needed to inspect the library's dependencies"
    env = dict(os.environ, GOOS="windows", GOARCH="amd64", CGO_ENABLED="1")
    deps = subprocess.run([go, "list", "-deps", "."], cwd=ROOT / "go", env=env, capture_output=True, text=True,
                          check=True).stdout.split()  # fmt: skip
    assert "runtime" in deps and "os/signal" not in deps


def test_waiting_calls_return_in_short_slices_so_ctrl_c_is_handled(rocketmq_namesrv: str, topic: str) -> None:
    """Python handles Ctrl+C (KeyboardInterrupt) only between library calls:
    a long wait must be made of short calls (here: a consumer's poll with a
    60 s timeout calls the library with at most 200 ms)."""
    seen: list = []
    real = _ffi.lib()

    class Spy:
        def __getattr__(self, name: str) -> Any:
            fn = getattr(real, name)
            if name != "rmq_consumer_poll":
                return fn

            def poll(h: int, n: int, ms: int, *rest: Any) -> int:
                seen.append(ms)
                if len(seen) >= 3:
                    raise KeyboardInterrupt
                return int(fn(h, n, ms, *rest))

            return poll

    import rmq_native.consumer as consumer_mod

    c = Consumer(rocketmq_namesrv, f"CtrlC_{os.getpid()}", topic)
    try:
        mp = pytest.MonkeyPatch()
        mp.setattr(consumer_mod._ffi, "lib", lambda: Spy())
        try:
            with pytest.raises(KeyboardInterrupt):
                c.receive(timeout=60)
        finally:
            mp.undo()
    finally:
        c.close()
    assert seen and max(seen) <= 200, seen
