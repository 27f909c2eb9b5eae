"""Start, stop and query a whole dev broker (a name server and its brokers)."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any, Dict, Optional

from .common import (
    BROKER_NAME,
    BROKER_PORT_STEP,
    DEFAULT_BROKER_PORT,
    DEFAULT_NAMESRV_PORT,
    DEFAULT_STOP_TIMEOUT,
    DEFAULT_TIMEOUT,
    HOST,
    ROCKETMQ_VERSION,
    DevBrokerError,
    progress,
    silent,
)
from .config import write_configs
from .jars import ensure_jars
from .java import BROKER_MAIN, NAMESRV_MAIN, ensure_ha_ext, find_java, java_cmd, java_major
from .lock import file_lock
from .ports import broker_ports, check_ports, port_in_use, wait_ports_free
from .process import marker_of, spawn, terminate_all
from .ready import namesrv_answers, wait_ready
from .state import (
    alive_procs,
    broker_names,
    broker_store,
    credentials_of,
    log_tail,
    read_state,
    remove_state,
    role_of,
    state_brokers,
    state_dir,
    state_roles,
    write_state,
)


def status(home: str | os.PathLike[str] | None = None) -> Optional[Dict[str, Any]]:
    """Return info about the running dev broker of this state dir, or None if it is not up.

    "Up" means the recorded name server and at least one recorded broker are alive, are
    ours, and the name server answers (with one broker: both processes).  ``brokers``
    maps every broker name to its address, port, pid (None when stopped) and ``up``.
    """
    sd = state_dir(home)
    state = read_state(sd)
    if not state:
        return None
    alive = alive_procs(sd, state)
    names = state_brokers(state)
    if "namesrv" not in alive or not any(role_of(n) in alive for n in names):
        return None
    addr = state["namesrv_addr"]
    if not namesrv_answers(addr):
        return None
    brokers = {}
    for n in names:
        port = state[role_of(n)]["port"]
        pid = alive.get(role_of(n))
        brokers[n] = {"addr": f"{HOST}:{port}", "port": port, "pid": pid, "up": pid is not None}
    return {
        "namesrv_addr": addr,
        "broker_addr": state["broker_addr"],
        "namesrv_port": state["namesrv"]["port"],
        "broker_port": state["broker"]["port"],
        "namesrv_pid": alive["namesrv"],
        "broker_pid": alive.get("broker"),
        "brokers": brokers,
        "acl": bool(state.get("acl")),
        "trace": bool(state.get("trace")),
        "state_dir": str(sd),
        "rocketmq_version": state.get("rocketmq_version"),
        "started_at": state.get("started_at"),
    }


def start(
    namesrv_port: Optional[int] = None,
    broker_port: Optional[int] = None,
    timeout: float = DEFAULT_TIMEOUT,
    clean: bool = False,
    home: str | os.PathLike[str] | None = None,
    quiet: bool = False,
    brokers: Optional[int] = None,
    acl: Optional[bool] = None,
    trace: Optional[bool] = None,
    namesrv_idle_timeout: int = 10,
) -> str:
    """Start (or reuse) the dev broker and return the name server address ``127.0.0.1:PORT``.

    Blocks until every broker is registered at the name server with a writable route for
    ``TBW102`` and answers on its own port.  Raises :class:`DevBrokerError` on failure
    (processes started by this call are killed again).

    ``brokers``: how many brokers (broker-a, broker-b, ...; default 1, or what the running
    dev broker of this state dir has); broker *i* uses ``broker_port + 10*i``.
    ``acl``: enable authentication/authorization with the test account
    ``ACL_ACCESS_KEY``/``ACL_SECRET_KEY`` (default off, or as running).
    ``trace``: create the message trace topic ``RMQ_SYS_TRACE_TOPIC``
    (``traceTopicEnable=true``) for clients with ``trace=True`` (default off,
    or as running).
    ``namesrv_idle_timeout``: seconds after which the name server closes an idle client
    connection (RocketMQ's default is 120; applies when this call starts the name server).
    """
    log = silent if quiet else progress
    sd = state_dir(home)
    sd.mkdir(parents=True, exist_ok=True)
    with file_lock(sd / ".lock"):
        state = read_state(sd)
        if state:
            # restarting (clean / unhealthy / leftovers): keep the recorded ports unless told otherwise
            namesrv_port = namesrv_port or state["namesrv"]["port"]
            broker_port = broker_port or state["broker"]["port"]
            if brokers is None:
                brokers = len(state_brokers(state))
            if acl is None:
                acl = bool(state.get("acl"))
            if trace is None:
                trace = bool(state.get("trace"))
            alive = alive_procs(sd, state)
            roles = state_roles(state)
            if set(alive) == set(roles):
                if (namesrv_port, broker_port, brokers, acl, trace) != (
                    state["namesrv"]["port"], state["broker"]["port"], len(roles) - 1, bool(state.get("acl")),
                    bool(state.get("trace")),
                ):
                    raise DevBrokerError(
                        f"a dev broker from {sd} is already running on name server port "
                        f"{state['namesrv']['port']} / broker port {state['broker']['port']} "
                        f"({len(roles) - 1} broker(s), acl {'on' if state.get('acl') else 'off'}, "
                        f"trace topic {'on' if state.get('trace') else 'off'}); "
                        "stop it first to use other ports or settings"
                    )
                if clean:
                    log("restarting the running dev broker with a clean store")
                else:
                    ok, why = True, "ready"
                    for n in state_brokers(state):
                        ok, why = wait_ready(state["namesrv_addr"], f"{HOST}:{state[role_of(n)]['port']}", alive,
                                             min(timeout, 30.0), credentials_of(state))
                        if not ok:
                            break
                    if ok:
                        log(f"dev broker already running (pids {', '.join(str(alive[r]) for r in roles)})")
                        return str(state["namesrv_addr"])
                    log(f"running dev broker is not healthy ({why}); restarting it")
            elif alive:
                log("found a partially running dev broker; stopping its leftovers")
            terminate_all([alive[r] for r in [*roles[1:], "namesrv"] if r in alive], DEFAULT_STOP_TIMEOUT)
            if alive:
                ports = [state["namesrv"]["port"]]
                for r in roles[1:]:
                    ports += broker_ports(state[r]["port"])
                wait_ports_free(ports, 15.0)
            remove_state(sd)

        names = broker_names(int(brokers or 1))
        acl, trace = bool(acl), bool(trace)
        n_port = int(namesrv_port or DEFAULT_NAMESRV_PORT)
        b_port = int(broker_port or DEFAULT_BROKER_PORT)
        b_ports = {n: b_port + BROKER_PORT_STEP * i for i, n in enumerate(names)}
        for p in b_ports.values():
            check_ports(n_port, p)
        all_ports = [n_port]
        for p in b_ports.values():
            all_ports += broker_ports(p)
        busy = [p for p in all_ports if port_in_use(p)]
        if busy:
            raise DevBrokerError(
                f"port(s) {', '.join(map(str, busy))} on {HOST} already in use by another process "
                f"(not a dev broker of {sd}); stop it or choose other ports with "
                "--namesrv-port/--broker-port"
            )

        java = find_java()
        major = java_major(java)
        lib = ensure_jars(ROCKETMQ_VERSION, log=log)
        ext = ensure_ha_ext(lib, java, log)

        if clean:
            for n in names:
                store = broker_store(sd, n)
                log(f"wiping store {store}")
                shutil.rmtree(store, ignore_errors=True)
        namesrv_conf = None
        for n in names:
            broker_store(sd, n).mkdir(parents=True, exist_ok=True)
            namesrv_conf, _ = write_configs(sd, n_port, b_ports[n], n, acl, trace, namesrv_idle_timeout)
        assert namesrv_conf is not None
        namesrv_addr = f"{HOST}:{n_port}"
        broker_addr = f"{HOST}:{b_port}"

        state = {
            "format": 1,
            "rocketmq_version": ROCKETMQ_VERSION,
            "state_dir": str(sd),
            "marker": marker_of(sd),
            "namesrv_addr": namesrv_addr,
            "broker_addr": broker_addr,
            "started_at": time.time(),
            "namesrv": {"pid": 0, "port": n_port},
            "brokers": names,
            "acl": acl,
            "trace": trace,
        }
        for n in names:
            state[role_of(n)] = {"pid": 0, "port": b_ports[n]}
        started: Dict[str, int] = {}
        t0 = time.monotonic()
        deadline = t0 + timeout
        try:
            heap = ["-Xms256m", "-Xmx512m"]
            ncmd = java_cmd(java, major, lib, None, sd, "namesrv", NAMESRV_MAIN, heap,
                            ["-XX:MaxDirectMemorySize=256m"], ["-c", str(namesrv_conf)])
            log(f"starting name server on {namesrv_addr} (RocketMQ {ROCKETMQ_VERSION}, state {sd})")
            nproc = spawn(ncmd, sd, "namesrv.out")
            started["namesrv"] = nproc.pid
            state["namesrv"]["pid"] = nproc.pid
            write_state(sd, state)
            while not namesrv_answers(namesrv_addr, timeout=1.0):
                if nproc.poll() is not None:
                    raise DevBrokerError(f"name server exited with code {nproc.returncode}")
                if time.monotonic() > deadline:
                    raise DevBrokerError(f"name server not answering on {namesrv_addr} after {timeout:.0f}s")
                time.sleep(0.2)
            for n in names:
                log(f"name server up after {time.monotonic() - t0:.1f}s; starting {n} on {HOST}:{b_ports[n]}"
                    + (" (ACL on)" if acl else ""))
                pid = spawn_broker(java, major, lib, ext, sd, n, b_ports[n], namesrv_addr)
                started[role_of(n)] = pid
                state[role_of(n)]["pid"] = pid
                write_state(sd, state)
            for n in names:
                ok, why = wait_ready(namesrv_addr, f"{HOST}:{b_ports[n]}", started, deadline - time.monotonic(),
                                     credentials_of(state))
                if not ok:
                    raise DevBrokerError(f"dev broker {n} not ready after {timeout:.0f}s: {why}")
        except BaseException as exc:
            terminate_all([started[r] for r in [*started][1:] + ["namesrv"] if r in started], 10.0)
            remove_state(sd)
            if isinstance(exc, DevBrokerError):
                raise DevBrokerError(f"{exc}\n{log_tail(sd)}") from None
            raise
        log(f"dev broker ready in {time.monotonic() - t0:.1f}s (name server pid {started['namesrv']}, "
            + ", ".join(f"{n} pid {started[role_of(n)]}" for n in names) + f"); logs in {sd / 'logs'}")
        return namesrv_addr


def spawn_broker(
    java: str, major: int, lib: Path, ext: Optional[Path], sd: Path, name: str, port: int, namesrv_addr: str
) -> int:
    """Start broker ``name`` of the state dir ``sd`` (its config already written); returns its pid."""
    conf = sd / "conf" / ("broker.conf" if name == BROKER_NAME else f"{name}.conf")
    # broker-a logs to <state>/logs/rocketmqlogs (as before); others to <state>/<name>/logs/rocketmqlogs
    user_home = None if name == BROKER_NAME else sd / name
    heap = ["-Xms256m", "-Xmx512m"]
    bextra = ["-XX:MaxDirectMemorySize=1g", f"-Drmq_native.devbroker.haBindAddress={HOST}"]
    bcmd = java_cmd(java, major, lib, ext, sd, role_of(name), BROKER_MAIN, heap, bextra,
                    ["-c", str(conf), "-n", namesrv_addr], user_home=user_home)
    log_name = "broker.out" if name == BROKER_NAME else f"{name}.out"
    return spawn(bcmd, sd, log_name).pid


def stop(
    home: str | os.PathLike[str] | None = None,
    clean: bool = False,
    timeout: float = DEFAULT_STOP_TIMEOUT,
    quiet: bool = False,
) -> bool:
    """Stop the dev broker processes recorded in the state dir. Returns True if any were stopped.

    Only processes whose pid *and* command line match this state dir are signalled
    (SIGTERM, then SIGKILL after ``timeout``).  ``clean=True`` also deletes the store.
    """
    log = silent if quiet else progress
    sd = state_dir(home)
    if not sd.is_dir():
        log("dev broker is not running")
        return False
    with file_lock(sd / ".lock"):
        state = read_state(sd)
        stopped = False
        if state:
            alive = alive_procs(sd, state)
            roles = state_roles(state)
            order = [r for r in [*roles[1:], "namesrv"] if r in alive]  # brokers first: they unregister
            if order:
                log("stopping " + ", ".join(f"{r} (pid {alive[r]})" for r in order))
                terminate_all([alive[r] for r in order], timeout)
                stopped = True
            ports = [state["namesrv"]["port"]]
            for r in roles[1:]:
                ports += broker_ports(state[r]["port"])
            if stopped:
                busy = wait_ports_free(ports, 15.0)
                if busy:
                    log(f"warning: port(s) {busy} still in use after stopping")
            remove_state(sd)
        log("dev broker stopped" if stopped else "dev broker is not running")
        if clean:
            for store in [sd / "store", *sorted(sd.glob("store-broker-*"))]:
                log(f"deleting store {store}")
                shutil.rmtree(store, ignore_errors=True)
        return stopped
