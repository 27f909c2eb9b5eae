"""The java processes of a dev broker: spawning them, recognising them by their
command line, checking and signalling them by pid."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

from .common import IS_LINUX, IS_WINDOWS

MARKER_PROP = "-Drmq_native.devbroker.home="
ROLE_PROP = "-Drmq_native.devbroker.role="

#: The processes this Python process spawned, by pid (kept so that they can be reaped).
CHILDREN: Dict[int, subprocess.Popen[bytes]] = {}


def marker_of(sd: Path) -> str:
    """The java argument that marks the processes of the state dir ``sd``."""
    return f"{MARKER_PROP}{sd}"


def _reap(pid: int) -> None:
    if IS_WINDOWS:
        return
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def pid_alive(pid: int) -> bool:
    """True if process ``pid`` exists and is not a zombie (reaps it if it is our child)."""
    if pid <= 0:
        return False
    if IS_WINDOWS:
        try:
            out = subprocess.run(
                ["tasklist", "/FI", f"PID eq {pid}", "/NH", "/FO", "CSV"],
                capture_output=True, text=True, stdin=subprocess.DEVNULL,
            ).stdout
        except OSError:
            return False
        return f'"{pid}"' in out
    _reap(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    if IS_LINUX:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            if stat[stat.rindex(")") + 2 :].startswith(("Z", "X")):
                return False
        except (OSError, ValueError):
            return False
    return True


def _cmdline(pid: int) -> Optional[List[str]]:
    if IS_LINUX:
        try:
            raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return None
        return [a.decode("utf-8", "replace") for a in raw.split(b"\0") if a]
    if not IS_WINDOWS:
        try:
            out = subprocess.run(
                ["ps", "-ww", "-p", str(pid), "-o", "command="],
                capture_output=True, text=True, stdin=subprocess.DEVNULL,
            )
        except OSError:
            return None
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip().split(" ")
    return None


def is_ours(pid: int, marker: str, role: str) -> bool:
    """True if ``pid`` is alive and is the ``role`` java process started for this state dir."""
    if not pid_alive(pid):
        return False
    args = _cmdline(pid)
    if args is None:
        # No way to read the command line (Windows, exotic OS): trust the recorded pid.
        return not IS_LINUX
    role_arg = f"{ROLE_PROP}{role}"
    if marker in args and role_arg in args:  # exact argv elements (/proc on Linux)
        return True
    # `ps` output is split on spaces, so a state dir containing spaces needs a joined match
    joined = f" {' '.join(args)} "
    return f" {marker} " in joined and f" {role_arg} " in joined


def _send_term(pid: int) -> None:
    if IS_WINDOWS:
        subprocess.run(["taskkill", "/PID", str(pid), "/T"], capture_output=True, stdin=subprocess.DEVNULL)
    else:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)


def send_kill(pid: int) -> None:
    """SIGKILL ``pid`` (taskkill /F on Windows); no error if it is gone."""
    if IS_WINDOWS:
        subprocess.run(["taskkill", "/PID", str(pid), "/T", "/F"], capture_output=True, stdin=subprocess.DEVNULL)
    else:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def terminate_all(pids: List[int], timeout: float) -> None:
    """Graceful stop in order: SIGTERM the first pid, give it a moment (the broker unregisters
    from the name server right at the start of its shutdown hook), SIGTERM the rest, wait for
    all up to ``timeout`` seconds, then SIGKILL whatever is left."""
    deadline = time.monotonic() + timeout
    for i, pid in enumerate(pids):
        _send_term(pid)
        if i == 0 and len(pids) > 1:
            wait_dead(pid, min(2.0, timeout))
    for pid in pids:
        if not wait_dead(pid, max(0.0, deadline - time.monotonic())):
            send_kill(pid)
            wait_dead(pid, 10.0)
        proc = CHILDREN.pop(pid, None)
        if proc is not None:
            with contextlib.suppress(Exception):
                proc.wait(timeout=5)


def wait_dead(pid: int, timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for ``pid`` to end; True if it did."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.1)
    return not pid_alive(pid)


def spawn(cmd: List[str], sd: Path, log_name: str) -> subprocess.Popen[bytes]:
    """Start ``cmd`` detached in ``sd``, its output appended to ``sd/logs/log_name``."""
    logs = sd / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env["ROCKETMQ_HOME"] = str(sd)
    env.pop("NAMESRV_ADDR", None)
    kwargs: Dict[str, Any] = {}
    if IS_WINDOWS:
        kwargs["creationflags"] = (
            getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0x200) | getattr(subprocess, "DETACHED_PROCESS", 0x8)
        )
    else:
        kwargs["start_new_session"] = True
    with open(logs / log_name, "ab") as out:
        out.write(f"\n==== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(cmd)}\n".encode())
        out.flush()
        proc = subprocess.Popen(
            cmd, cwd=str(sd), env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, **kwargs
        )
    CHILDREN[proc.pid] = proc  # keep a reference so it can be reaped by stop()
    return proc

