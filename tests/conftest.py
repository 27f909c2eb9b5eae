"""Shared fixtures: a real broker (rmq_native.testing), unique topics and
groups, and clients that are always closed."""

from __future__ import annotations

import itertools
import os
import signal
import sys
import tempfile
import time
import uuid
from typing import Callable, Iterator

import pytest

import rmq_native
from rmq_native import Admin, Producer

pytest_plugins = ["rmq_native.testing"]

_counter = itertools.count()


def unique(prefix: str) -> str:
    return f"{prefix}_{os.getpid()}_{next(_counter)}_{uuid.uuid4().hex[:6]}"


def dev_broker_pid(namesrv: str) -> int:
    """Pid of the broker of this machine's dev broker behind namesrv; skips
    the test when namesrv is another name server (RMQ_NAMESRV), whose broker
    it cannot pause."""
    from rmq_native import devbroker

    st = devbroker.status()
    if not st or st["namesrv_addr"] != namesrv or not st["broker_pid"]:
        pytest.skip(f"the broker behind {namesrv} is not this machine's dev broker: the test cannot pause it")
    return int(st["broker_pid"])


def pause_process(pid: int, pause: bool) -> None:
    """Stop (pause=True) or continue a process: a broker that stalls, as in
    a long garbage collection, with its sockets open."""
    if sys.platform == "win32":
        import ctypes
        from ctypes import wintypes

        kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
        kernel32.OpenProcess.restype = wintypes.HANDLE
        kernel32.OpenProcess.argtypes = [wintypes.DWORD, wintypes.BOOL, wintypes.DWORD]
        ntdll = ctypes.WinDLL("ntdll")
        call = ntdll.NtSuspendProcess if pause else ntdll.NtResumeProcess
        call.argtypes = [wintypes.HANDLE]
        h = kernel32.OpenProcess(0x0800, False, pid)  # PROCESS_SUSPEND_RESUME
        if not h:
            raise ctypes.WinError(ctypes.get_last_error())
        try:
            status = call(h)
            if status:
                raise OSError(f"{call.__name__}({pid}): NTSTATUS {status & 0xFFFFFFFF:#x}")
        finally:
            kernel32.CloseHandle(h)
    else:
        os.kill(pid, signal.SIGSTOP if pause else signal.SIGCONT)
        if pause:
            _wait_stopped(pid)


def _wait_stopped(pid: int, timeout: float = 10.0) -> None:
    """Wait until every thread of pid has stopped. A stop signal is handled
    by one thread, which then stops the others: until it runs (on a loaded
    machine, milliseconds after kill returned) the process's other threads
    go on, and a broker answers requests sent after the "pause" (seen in CI:
    a batch sent after it was stored and answered). Linux only (/proc)."""
    tasks = f"/proc/{pid}/task"
    if not os.path.isdir(tasks):
        return
    deadline = time.monotonic() + timeout
    while True:
        running = 0
        for tid in os.listdir(tasks):
            try:
                with open(f"{tasks}/{tid}/stat", "rb") as f:
                    stat = f.read()
            except OSError:  # the thread ended
                continue
            if stat[stat.rindex(b")") + 2:][:1] not in (b"T", b"t", b"Z", b"X"):
                running += 1
        if not running:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"process {pid}: {running} threads still running {timeout} s after SIGSTOP")
        time.sleep(0.001)


@pytest.fixture(scope="session")
def admin(rocketmq_namesrv: str) -> Iterator[Admin]:
    with Admin(rocketmq_namesrv) as a:
        yield a


@pytest.fixture
def make_topic(admin: Admin) -> Iterator[Callable[..., str]]:
    """Create fresh topics (deleted at the end of the test)."""
    made: list[str] = []

    def make(queues: int = 4) -> str:
        t = unique("T")
        admin.create_topic(t, queues=queues)
        made.append(t)
        return t

    yield make
    for t in made:
        try:
            admin.delete_topic(t)
        except rmq_native.RocketMQError:
            pass


@pytest.fixture
def topic(make_topic: Callable[..., str]) -> str:
    return make_topic()


@pytest.fixture
def group() -> str:
    return unique("G")


@pytest.fixture
def producer(rocketmq_namesrv: str) -> Iterator[Producer]:
    with Producer(rocketmq_namesrv, unique("P")) as p:
        yield p


# A private two-broker cluster (broker-a, broker-b) for the operations tests
# (tests/test_admin_ops.py, tests/test_reader.py, tests/test_cli_ops.py); it
# never touches the shared dev broker. Reused when already running.
CLUSTER2_HOME = os.path.join(tempfile.gettempdir(), "rmq_native_ops_cluster2")
CLUSTER2_PORTS = (25876, 26911)  # name server; brokers 26911 and 26921 (below the ephemeral range)


def receive_and_ack(ns: str, group: str, topic: str, count: int, timeout: float = 60) -> int:
    """Receive and acknowledge up to ``count`` messages of ``topic`` with a
    new consumer of ``group`` (from the first offset), then close it (which
    commits); the number acknowledged."""
    from rmq_native import Consumer

    got = 0
    deadline = time.monotonic() + timeout
    with Consumer(ns, group, topic, from_where="first") as c:
        while got < count and time.monotonic() < deadline:
            msg = c.receive(timeout=2)
            if msg is not None:
                msg.ack()
                got += 1
    return got


def _warm_up(addr: str) -> None:
    """A round trip through both brokers of a cluster that just started: its
    first sends, pulls and offset commits are slow while the brokers warm up,
    which made the first operations test flaky on a loaded machine."""
    topic, group = unique("WARM"), unique("G")
    with Admin(addr) as admin:
        admin.create_topic(topic, queues=4)
        try:
            with Producer(addr, unique("P")) as p:
                for i in range(16):
                    p.send(topic, f"warm-{i}")
            receive_and_ack(addr, group, topic, 16)
        finally:
            admin.delete_topic(topic)


@pytest.fixture(scope="session")
def cluster2_namesrv() -> Iterator[str]:
    from rmq_native import devbroker

    running = devbroker.status(CLUSTER2_HOME) is not None
    addr = devbroker.start(brokers=2, home=CLUSTER2_HOME, namesrv_port=CLUSTER2_PORTS[0],
                           broker_port=CLUSTER2_PORTS[1], quiet=True)
    if not running:
        _warm_up(addr)
    yield addr
    if not running:
        devbroker.stop(home=CLUSTER2_HOME, quiet=True)
