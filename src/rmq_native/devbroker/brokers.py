"""Stop and start one broker, or the name server, of a running dev broker."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Any, Callable, Dict

from .common import DEFAULT_STOP_TIMEOUT, DEFAULT_TIMEOUT, HOST, ROCKETMQ_VERSION, DevBrokerError, progress, silent
from .jars import ensure_jars
from .java import NAMESRV_MAIN, ensure_ha_ext, find_java, java_cmd, java_major
from .lifecycle import spawn_broker
from .lock import file_lock
from .ports import broker_ports, port_in_use, wait_ports_free
from .process import CHILDREN, send_kill, spawn, terminate_all, wait_dead
from .ready import wait_ready
from .state import alive_procs, credentials_of, log_tail, read_state, role_of, state_brokers, state_dir, write_state


def _broker_state(sd: Path, name: str) -> Dict[str, Any]:
    state = read_state(sd)
    if not state:
        raise DevBrokerError(f"no dev broker recorded in {sd}; start it first")
    if name != "namesrv" and name not in state_brokers(state):
        raise DevBrokerError(f"unknown broker {name!r}; this dev broker has {', '.join(state_brokers(state))} "
                             "(and namesrv)")
    return state


def stop_broker(
    name: str,
    home: str | os.PathLike[str] | None = None,
    kill: bool = False,
    timeout: float = DEFAULT_STOP_TIMEOUT,
    quiet: bool = False,
) -> bool:
    """Stop one broker (``"broker-a"``, ``"broker-b"`` ...) of the running dev broker; the name
    server and the other brokers keep running.  ``kill=True`` sends SIGKILL at once (a crash:
    the broker does not unregister, the name server drops it after its broker channel
    closes); otherwise SIGTERM (a graceful shutdown), SIGKILL after ``timeout``.
    Returns True if it was running."""
    log = silent if quiet else progress
    sd = state_dir(home)
    with file_lock(sd / ".lock"):
        state = _broker_state(sd, name)
        role = role_of(name)
        pid = alive_procs(sd, state).get(role)
        if pid is None:
            log(f"{name} is not running")
            return False
        log(f"{'killing' if kill else 'stopping'} {name} (pid {pid})")
        if kill:
            send_kill(pid)
            wait_dead(pid, 10.0)
            proc = CHILDREN.pop(pid, None)
            if proc is not None:
                with contextlib.suppress(Exception):
                    proc.wait(timeout=5)
        else:
            terminate_all([pid], timeout)
        busy = wait_ports_free([state[role]["port"]] if name == "namesrv" else broker_ports(state[role]["port"]),
                               15.0)
        if busy:
            log(f"warning: port(s) {busy} still in use after stopping {name}")
        state[role]["pid"] = 0
        write_state(sd, state)
        log(f"{name} stopped")
        return True


def start_broker(
    name: str,
    home: str | os.PathLike[str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    quiet: bool = False,
) -> str:
    """Start one broker of the dev broker again (after :func:`stop_broker`), with its store
    and configuration; returns its address once it is registered and writable.  The name
    server must be running.  ``name="namesrv"`` starts the name server again instead and
    returns its address once every running broker has registered again (brokers register
    every 30 s)."""
    log = silent if quiet else progress
    sd = state_dir(home)
    with file_lock(sd / ".lock"):
        state = _broker_state(sd, name)
        role = role_of(name)
        port = state[role]["port"]
        addr = f"{HOST}:{port}"
        alive = alive_procs(sd, state)
        if name == "namesrv":
            return _restart_namesrv(sd, state, alive, timeout, log)
        if "namesrv" not in alive:
            raise DevBrokerError(f"the name server of {sd} is not running; use start() instead")
        if role in alive:
            log(f"{name} already running (pid {alive[role]})")
            return addr
        busy = [p for p in broker_ports(port) if port_in_use(p)]
        if busy:
            raise DevBrokerError(f"port(s) {', '.join(map(str, busy))} on {HOST} already in use")
        java = find_java()
        major = java_major(java)
        lib = ensure_jars(ROCKETMQ_VERSION, log=log)
        ext = ensure_ha_ext(lib, java, log)
        t0 = time.monotonic()
        log(f"starting {name} on {addr}")
        pid = spawn_broker(java, major, lib, ext, sd, name, port, state["namesrv_addr"])
        state[role]["pid"] = pid
        write_state(sd, state)
        ok, why = wait_ready(state["namesrv_addr"], addr, {role: pid}, timeout, credentials_of(state))
        if not ok:
            terminate_all([pid], 10.0)
            state[role]["pid"] = 0
            write_state(sd, state)
            raise DevBrokerError(f"{name} not ready after {timeout:.0f}s: {why}\n{log_tail(sd)}")
        log(f"{name} ready in {time.monotonic() - t0:.1f}s (pid {pid})")
        return addr


def _restart_namesrv(
    sd: Path, state: Dict[str, Any], alive: Dict[str, int], timeout: float, log: Callable[[str], None]
) -> str:
    addr = str(state["namesrv_addr"])
    if "namesrv" in alive:
        log(f"name server already running (pid {alive['namesrv']})")
        return addr
    if port_in_use(state["namesrv"]["port"]):
        raise DevBrokerError(f"port {state['namesrv']['port']} on {HOST} already in use")
    java = find_java()
    major = java_major(java)
    lib = ensure_jars(ROCKETMQ_VERSION, log=log)
    t0 = time.monotonic()
    deadline = t0 + timeout
    ncmd = java_cmd(java, major, lib, None, sd, "namesrv", NAMESRV_MAIN, ["-Xms256m", "-Xmx512m"],
                    ["-XX:MaxDirectMemorySize=256m"], ["-c", str(sd / "conf" / "namesrv.properties")])
    log(f"starting name server on {addr}")
    nproc = spawn(ncmd, sd, "namesrv.out")
    state["namesrv"]["pid"] = nproc.pid
    write_state(sd, state)
    for n in state_brokers(state):
        role = role_of(n)
        if role not in alive:
            continue
        ok, why = wait_ready(addr, f"{HOST}:{state[role]['port']}", {"namesrv": nproc.pid, role: alive[role]},
                             deadline - time.monotonic(), credentials_of(state))
        if not ok:
            raise DevBrokerError(f"name server restarted, but {n} did not register again: {why}")
    log(f"name server ready in {time.monotonic() - t0:.1f}s (pid {nproc.pid})")
    return addr
