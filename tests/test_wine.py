"""The Windows DLL, cross-built with mingw-w64, driven through its C ABI by a
small Windows program (tests/wine/harness.c) under Wine, against the real
broker.

Needs (Debian): gcc-mingw-w64-x86-64 and wine64 -- CI installs them, so a
missing tool is a failure, not a skip. Builds are reused while up to date
(build/native/windows-amd64, build/wine); the Wine prefix is fresh for each
session and removed afterwards.
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
def windows_dll() -> Path:
    sys.path.insert(0, str(ROOT))
    import build_dll

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
        "-O2", "-Wall", "-std=gnu11", f"-I{header.parent}", str(WINE_SRC / "harness.c"),
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


def test_windows_dll_round_trip_under_wine(wine: WineSetup, rocketmq_namesrv: str, tmp_path: Path) -> None:
    tag = f"{os.getpid()}_{uuid.uuid4().hex[:8]}"
    topic, group = f"WineT_{tag}", f"WineG_{tag}"
    cwd, state = tmp_path / "cwd", tmp_path / "state"
    cwd.mkdir()
    started = time.monotonic()
    # an empty working directory: the library must not need (or litter) it;
    # HOME is not set in Wine's Windows environment, as on Windows
    proc = subprocess.run(
        [wine.loader, str(wine.harness), windows_path(wine.dll), rocketmq_namesrv, topic, group, "50",
         windows_path(state)],
        env=wine.env, cwd=cwd, capture_output=True, text=True, errors="replace", timeout=300,
    )  # fmt: skip
    took = time.monotonic() - started
    out = proc.stdout + ("\n--- stderr ---\n" + proc.stderr[-5000:] if proc.stderr.strip() else "")
    print(out)
    print(f"harness under Wine took {took:.1f}s")
    assert proc.returncode == 0, f"harness exited {proc.returncode}:\n{out}"
    assert "OK: 50 messages sent and received intact" in proc.stdout, out
    assert "FAIL" not in proc.stdout, out
    assert list(cwd.iterdir()) == [], "the library wrote into the working directory"
    # the broadcasting consumer's offsets went to the state dir
    offsets = list((state / "offsets" / f"{group}_B").glob("*/offset.json"))
    assert len(offsets) == 1 and offsets[0].stat().st_size > 0, sorted(state.rglob("*"))
