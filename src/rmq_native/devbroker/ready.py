"""When a dev broker is ready: the name server answers, and each broker has a
writable route for TBW102 and answers on its own port."""

from __future__ import annotations

import time
from typing import Dict, Optional, Tuple

from .process import CHILDREN, pid_alive
from .remoting import (
    CODE_GET_MAX_OFFSET,
    CODE_SUCCESS,
    DEFAULT_TOPIC,
    get_cluster_info,
    get_route_info,
    remoting_request,
)

_PERM_WRITE = 0x2


def route_ready(
    namesrv_addr: str, broker_addr: str, credentials: Optional[Tuple[str, str]] = None
) -> Tuple[bool, str]:
    """(True, "ready") if the broker at ``broker_addr`` is in the route of TBW102 with a
    writable queue and answers a request itself; else (False, why not)."""
    try:
        route = get_route_info(namesrv_addr, DEFAULT_TOPIC, timeout=2.0)
    except (OSError, ValueError) as exc:
        return False, f"name server not answering ({exc})"
    if not route:
        return False, "broker not registered yet"
    names = {
        bd.get("brokerName")
        for bd in route.get("brokerDatas") or []
        if broker_addr in (bd.get("brokerAddrs") or {}).values()
    }
    if not names:
        return False, f"broker {broker_addr} not in route"
    for qd in route.get("queueDatas") or []:
        if qd.get("brokerName") in names and qd.get("perm", 0) & _PERM_WRITE and qd.get("writeQueueNums", 0) > 0:
            break
    else:
        return False, "route has no writable queues yet"
    try:
        # cheap request that goes through the broker's topic config and message store
        header, _ = remoting_request(
            broker_addr, CODE_GET_MAX_OFFSET, {"topic": DEFAULT_TOPIC, "queueId": "0"}, timeout=2.0,
            credentials=credentials,
        )
    except (OSError, ValueError) as exc:
        return False, f"broker port not answering ({exc})"
    if header.get("code") != CODE_SUCCESS:
        return False, f"broker answered code {header.get('code')}"
    return True, "ready"


def namesrv_answers(namesrv_addr: str, timeout: float = 2.0) -> bool:
    """True if the name server answers a cluster info request."""
    try:
        get_cluster_info(namesrv_addr, timeout=timeout)
        return True
    except (OSError, ValueError):
        return False


def wait_ready(
    namesrv_addr: str, broker_addr: str, pids: Dict[str, int], timeout: float,
    credentials: Optional[Tuple[str, str]] = None,
) -> Tuple[bool, str]:
    """Poll :func:`route_ready` until it says ready (True) or ``timeout`` passes or one of
    ``pids`` (role -> pid) ends (False); returns (ready, why)."""
    deadline = time.monotonic() + max(timeout, 0.0)
    why = "timed out"
    while True:
        for role, pid in pids.items():
            proc = CHILDREN.get(pid)
            if proc is not None and proc.poll() is not None:
                return False, f"{role} exited with code {proc.returncode}"
            if proc is None and not pid_alive(pid):
                return False, f"{role} (pid {pid}) is not running"
        ok, why = route_ready(namesrv_addr, broker_addr, credentials)
        if ok:
            return True, why
        if time.monotonic() >= deadline:
            return False, why
        time.sleep(0.25)
