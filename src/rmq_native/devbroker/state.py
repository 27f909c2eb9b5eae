"""The state directory of a dev broker: its state file (ports, pids, brokers), the
broker names and roles, the stores and the log files."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from .common import ACL_ACCESS_KEY, ACL_SECRET_KEY, BROKER_NAME, DevBrokerError
from .process import is_ours, marker_of

#: The state file in the state directory (written atomically, under the state dir's lock).
STATE_FILE = "devbroker.json"


def state_dir(home: str | os.PathLike[str] | None = None) -> Path:
    """Dev broker state directory (``RMQ_NATIVE_DEVBROKER_HOME`` or ``~/.cache/rmq_native/devbroker``)."""
    if home is not None:
        return Path(home).expanduser().resolve()
    env = os.environ.get("RMQ_NATIVE_DEVBROKER_HOME")
    if env:
        return Path(env).expanduser().resolve()
    return (Path.home() / ".cache" / "rmq_native" / "devbroker").resolve()


def read_state(sd: Path) -> Optional[Dict[str, Any]]:
    """The recorded state of ``sd``, or None if there is none (or it is unreadable)."""
    try:
        state: Dict[str, Any] = json.loads((sd / STATE_FILE).read_text(encoding="utf-8"))
        return state
    except (OSError, ValueError):
        return None


def write_state(sd: Path, state: Dict[str, Any]) -> None:
    """Record ``state`` for ``sd`` (atomically: write a temporary file, then rename)."""
    path = sd / STATE_FILE
    fd, tmp = tempfile.mkstemp(dir=str(sd), prefix=".devbroker-", suffix=".json")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(state, fh, indent=2)
    os.replace(tmp, path)


def remove_state(sd: Path) -> None:
    """Forget the recorded state of ``sd``."""
    with contextlib.suppress(FileNotFoundError):
        (sd / STATE_FILE).unlink()


def broker_names(count: int) -> List[str]:
    """Names of the brokers of a dev cluster with ``count`` brokers: broker-a, broker-b, ..."""
    if not 1 <= count <= 26:
        raise DevBrokerError(f"brokers must be 1..26, not {count}")
    return [f"broker-{chr(ord('a') + i)}" for i in range(count)]


def role_of(name: str) -> str:
    """Process role (and state key) of a broker: "broker" for broker-a (as before), else its name."""
    return "broker" if name == BROKER_NAME else name


def state_brokers(state: Dict[str, Any]) -> List[str]:
    """The broker names a state records (old states: broker-a only)."""
    return list(state.get("brokers") or [BROKER_NAME])


def state_roles(state: Dict[str, Any]) -> List[str]:
    """The process roles a state records: namesrv first, then the brokers'."""
    return ["namesrv", *(role_of(n) for n in state_brokers(state))]


def credentials_of(state: Dict[str, Any]) -> Optional[Tuple[str, str]]:
    """The test account if the dev broker runs with ACL, else None."""
    return (ACL_ACCESS_KEY, ACL_SECRET_KEY) if state.get("acl") else None


def alive_procs(sd: Path, state: Dict[str, Any]) -> Dict[str, int]:
    """Role -> pid of the recorded processes that are alive and are ours."""
    marker = marker_of(sd)  # derived from the state dir, never trusted from the file
    alive = {}
    for role in state_roles(state):
        pid = int((state.get(role) or {}).get("pid") or 0)
        if pid and is_ours(pid, marker, role):
            alive[role] = pid
    return alive


def broker_store(sd: Path, name: str) -> Path:
    """The message store of broker ``name``: ``store`` for broker-a, ``store-<name>`` for the others."""
    return sd / "store" if name == BROKER_NAME else sd / f"store-{name}"


def log_tail(sd: Path, lines: int = 25) -> str:
    """The last lines of the name server's and broker-a's logs, for error messages."""
    logs = sd / "logs"
    parts = []
    for rel in ("namesrv.out", "broker.out", "rocketmqlogs/namesrv.log", "rocketmqlogs/broker.log"):
        p = logs / rel
        try:
            content = p.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            continue
        if content:
            parts.append(f"--- {p} (last {min(lines, len(content))} lines) ---")
            parts.extend(content[-lines:])
    return "\n".join(parts) if parts else f"(no logs found under {logs})"
