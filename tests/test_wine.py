"""The Windows DLL, cross-built with mingw-w64, driven through its C ABI by a
small Windows program (tests/wine/harness.c) under Wine, against the real
broker: the paths a Python user takes (send sync and async, batch, ack,
nack and redelivery, orderly, broadcasting offsets reloaded after a restart,
transactions with a check, admin, an unreachable name server, close under
traffic, Ctrl+C), each calling the DLL as _ffi.py and the client modules do.
The DLL is loaded from a copy under a non-ASCII directory and keeps its state
under another one (Windows paths, as %LOCALAPPDATA% may be).

Needs (Debian): gcc-mingw-w64-x86-64 and wine64 -- CI installs them, so a
missing tool is a failure, not a skip. Builds are reused while up to date
(build/native/windows-amd64, build/wine); the Wine prefix is fresh for each
session and removed afterwards. With RMQ_NATIVE_DIST set, the DLL comes from
the win_amd64 wheel in that directory.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Iterator, NamedTuple

import pytest

ROOT = Path(__file__).resolve().parent.parent
WINE_SRC = Path(__file__).resolve().parent / "wine"
WINE_BUILD = ROOT / "build" / "wine"
MINGW_CC = "x86_64-w64-mingw32-gcc"

pytestmark = [
    pytest.mark.wine,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the Wine test runs on Linux"),
]


def find_wine() -> tuple[str, str]:
    """(wine64 loader, wineserver) -- Debian's wine64 package puts them in
    /usr/lib/wine without a wine64 command on PATH."""
    for d in ("/usr/lib/wine", "/usr/lib/x86_64-linux-gnu/wine", "/usr/bin"):
        loader, server = Path(d) / "wine64", Path(d) / "wineserver"
        if loader.exists() and server.exists():
            return str(loader), str(server)
    loader = shutil.which("wine64") or shutil.which("wine")
    server = shutil.which("wineserver")
    if loader and server:
        return loader, server
    pytest.fail("Wine not found: install it (Debian: apt-get install wine64)", pytrace=False)


def windows_path(p: Path) -> str:
    """Wine maps the Unix root to drive Z:."""
    return "Z:" + str(p.resolve()).replace("/", "\\")


def _up_to_date(out: Path, *sources: Path) -> bool:
    return out.exists() and all(out.stat().st_mtime >= s.stat().st_mtime for s in sources)


def mingw(out: Path, *args: str, sources: tuple) -> Path:
    if shutil.which(MINGW_CC) is None:
        pytest.fail(f"{MINGW_CC} not found: install mingw-w64 (Debian: apt-get install gcc-mingw-w64-x86-64)",
                    pytrace=False)  # fmt: skip
    if not _up_to_date(out, *sources):
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + f".{os.getpid()}.tmp")
        subprocess.run([MINGW_CC, *args, "-o", str(tmp)], check=True)
        os.replace(tmp, out)
    return out


class WineSetup(NamedTuple):
    loader: str
    env: dict
    dll: Path
    harness: Path


@pytest.fixture(scope="session")
def windows_dll(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The release build of the DLL, or, when RMQ_NATIVE_DIST names the
    release's dist directory, the DLL inside its win_amd64 wheel (the file
    the release publishes)."""
    sys.path.insert(0, str(ROOT))
    import build_dll

    dist = os.environ.get("RMQ_NATIVE_DIST")
    if dist:
        import zipfile

        (wheel,) = Path(dist).glob("*-py3-none-win_amd64.whl")
        out = tmp_path_factory.mktemp("wheel-dll") / build_dll.library_name("windows-amd64")
        with zipfile.ZipFile(wheel) as z:
            out.write_bytes(z.read(f"rmq_native/{out.name}"))
        return out
    try:
        return build_dll.release_build("windows-amd64", build_dll.NATIVE_DIR / "windows-amd64")
    except SystemExit as e:  # build_dll reports missing tools this way
        pytest.fail(f"cannot build the Windows DLL: {e}", pytrace=False)
    except subprocess.CalledProcessError as e:
        pytest.fail(f"cannot build the Windows DLL: {e}", pytrace=False)


@pytest.fixture(scope="session")
def wine(windows_dll: Path) -> Iterator[WineSetup]:
    loader, server = find_wine()
    header = ROOT / "go" / "rmq_native.h"
    harness = mingw(
        WINE_BUILD / "harness.exe",
        "-O2", "-Wall", "-std=gnu11", f"-I{header.parent}", str(WINE_SRC / "harness.c"), "-lshell32",
        sources=(WINE_SRC / "harness.c", header),
    )  # fmt: skip
    shim = mingw(
        WINE_BUILD / "bcryptprimitives.dll",
        "-shared", "-O2", "-s", "-Wall", str(WINE_SRC / "bcryptprimitives.c"), str(WINE_SRC / "bcryptprimitives.def"),
        sources=(WINE_SRC / "bcryptprimitives.c", WINE_SRC / "bcryptprimitives.def"),
    )  # fmt: skip

    prefix = Path(tempfile.mkdtemp(prefix="rmq-wineprefix-"))
    env = dict(
        os.environ,
        WINEPREFIX=str(prefix),
        WINEDEBUG="-all",
        WINEDLLOVERRIDES="mscoree,mshtml=",  # no Mono/Gecko installer dialogs
        WINEARCH="win64",
    )
    env.pop("DISPLAY", None)  # headless
    try:
        boot = subprocess.run([loader, "wineboot", "--init"], env=env, capture_output=True, text=True, timeout=300)
        system32 = prefix / "drive_c" / "windows" / "system32"
        if not system32.is_dir():
            pytest.fail(f"wineboot did not create a prefix (exit {boot.returncode}):\n{boot.stderr[-3000:]}",
                        pytrace=False)  # fmt: skip
        # Go >= 1.22 needs bcryptprimitives.dll!ProcessPrng, missing in Wine 8
        shutil.copyfile(shim, system32 / "bcryptprimitives.dll")
        yield WineSetup(loader, env, windows_dll, harness)
    finally:
        subprocess.run([server, "-k"], env=env, capture_output=True, timeout=60)
        shutil.rmtree(prefix, ignore_errors=True)


NON_ASCII = "wïne ✓ 数据"
# the scenarios of tests/wine/harness.c that run on their own
SCENARIOS = ("roundtrip", "async", "batch", "nack", "orderly", "tx", "unreachable", "close")


class Place(NamedTuple):
    dll: Path  # a copy of the DLL under a non-ASCII directory
    state: Path  # the state dir, under another one (as %LOCALAPPDATA% may be)
    cwd: Path  # an empty working directory


def make_place(wine: WineSetup, root: Path) -> Place:
    lib_dir = root / NON_ASCII / "site-packages" / "rmq_native"
    lib_dir.mkdir(parents=True)
    dll = lib_dir / wine.dll.name
    shutil.copyfile(wine.dll, dll)
    cwd = root / "cwd"
    cwd.mkdir()
    return Place(dll, root / "AppData" / "Local" / NON_ASCII / "rmq_native", cwd)


def names() -> tuple:
    tag = f"{os.getpid()}_{uuid.uuid4().hex[:8]}"
    return f"WineT_{tag}", f"WineG_{tag}"


class Run:
    """One harness process (started at once, waited for by its test)."""

    def __init__(self, wine: WineSetup, namesrv: str, scenario: str, place: Place, topic: str, group: str) -> None:
        self.scenario, self.place, self.topic, self.group = scenario, place, topic, group
        self.started = time.monotonic()
        # roundtrip: no state dir given, so the default, %LOCALAPPDATA%\rmq_native
        state = [] if scenario == "roundtrip" else [windows_path(place.state)]
        self.proc = subprocess.Popen(
            [wine.loader, str(wine.harness), windows_path(place.dll), namesrv, scenario, topic, group, *state],
            env=wine.env, cwd=place.cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8",
            errors="replace",
        )  # fmt: skip

    def result(self) -> str:
        try:
            stdout, stderr = self.proc.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            stdout, stderr = self.proc.communicate()
        out = stdout + ("\n--- stderr ---\n" + stderr[-5000:] if stderr.strip() else "")
        print(out)
        print(f"harness {self.scenario} under Wine: done after {time.monotonic() - self.started:.1f}s")
        assert self.proc.returncode == 0, f"harness {self.scenario} exited {self.proc.returncode}:\n{out}"
        assert f"OK: {self.scenario}" in stdout and "FAIL" not in stdout, out
        # an empty working directory: the library must not need (or litter)
        # it; HOME is not set in Wine's Windows environment, as on Windows
        assert list(self.place.cwd.iterdir()) == [], "the library wrote into the working directory"
        return stdout


@pytest.fixture(scope="session")
def runs(wine: WineSetup, rocketmq_namesrv: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """Every independent scenario, started together: each uses its own topic
    and group, and the broker and the Wine server serve them concurrently,
    so the session takes about as long as the slowest one."""
    out = {}
    for scenario in SCENARIOS:
        place = make_place(wine, tmp_path_factory.mktemp(f"wine-{scenario}"))
        out[scenario] = Run(wine, rocketmq_namesrv, scenario, place, *names())
    yield out
    for r in out.values():
        if r.proc.poll() is None:
            r.proc.kill()
            r.proc.wait()


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_windows_dll_under_wine(wine: WineSetup, runs: dict, scenario: str) -> None:
    run = runs[scenario]
    run.result()
    if scenario == "roundtrip":
        # the broadcasting consumer's offsets went to the default state dir,
        # %LOCALAPPDATA%\rmq_native (C:\users\<user>\AppData\Local under Wine)
        users = Path(wine.env["WINEPREFIX"]) / "drive_c" / "users"
        offsets = list(users.glob(f"*/AppData/Local/rmq_native/offsets/{run.group}_B/*/offset.json"))
        assert len(offsets) == 1 and offsets[0].stat().st_size > 0, sorted(users.rglob("rmq_native/**/*"))


def test_broadcasting_offsets_persist_under_a_windows_path_across_restarts(
    wine: WineSetup, rocketmq_namesrv: str, runs: dict, tmp_path: Path
) -> None:
    place = make_place(wine, tmp_path)
    topic, group = names()
    Run(wine, rocketmq_namesrv, "broadcast1", place, topic, group).result()
    (offsets,) = list((place.state / "offsets" / group).glob("*/offset.json"))
    saved = offsets.read_bytes()
    assert topic.encode() in saved, saved
    # a new process, same group and instance name: only the new messages come
    out = Run(wine, rocketmq_namesrv, "broadcast2", place, topic, group).result()
    assert "received exactly the 5 new messages" in out
    assert offsets.read_bytes() != saved, "the second run did not advance the stored offsets"


def test_ctrl_c_reaches_the_application_with_the_dll_loaded(
    wine: WineSetup, rocketmq_namesrv: str, runs: dict, tmp_path: Path
) -> None:
    """A console handler registered before the DLL loads (as Python's is)
    gets CTRL_C_EVENT while the Go runtime runs: Go's own handler passes it
    on. Console events need a console: Wine gives the program one on a
    terminal, so the harness runs on a pseudo-terminal here."""
    import pty
    import re
    import select

    dll, state, cwd = make_place(wine, tmp_path)
    topic, group = names()
    master, slave = pty.openpty()
    started = time.monotonic()
    proc = subprocess.Popen(
        [wine.loader, str(wine.harness), windows_path(dll), rocketmq_namesrv, "ctrlc", topic, group,
         windows_path(state)],
        env=wine.env, cwd=cwd, stdin=slave, stdout=slave, stderr=slave,
    )  # fmt: skip
    os.close(slave)
    raw = b""
    try:
        while time.monotonic() - started < 120:
            if not select.select([master], [], [], 5)[0]:
                if proc.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the terminal closed: the program ended
                break
            if not chunk:
                break
            raw += chunk
        rc = proc.wait(timeout=60)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
    # Wine's terminal output: drop the cursor control sequences
    out = re.sub(r"\x1b\[1C", " ", raw.decode("utf-8", "replace"))
    out = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out)
    print(out)
    print(f"harness ctrlc under Wine took {time.monotonic() - started:.1f}s")
    assert rc == 0, f"harness ctrlc exited {rc}:\n{out}"
    assert "Ctrl+C reached the application's handler: yes" in out and "OK: ctrlc" in out, out
