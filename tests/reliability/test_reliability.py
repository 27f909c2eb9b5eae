"""The reliability suite (``pytest -m reliability``, ~15-20 minutes). It runs
on its own dev brokers (see conftest.py), which it stops and kills.

Also part of the reliability story, but in the normal run:
tests/test_ffi.py::test_go_panic_becomes_internal_error_and_process_lives
(a Go panic is an InternalError and the process lives) and
tests/test_ffi.py::test_fork_child_gets_clear_error_instead_of_hanging;
tests/test_reliability_sample.py::test_spawned_process_sends_and_receives
(multiprocessing with the spawn method)."""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import unique

import rmq_native
from reliability import harness
from rmq_native import Admin, Consumer, Producer, devbroker

pytestmark = pytest.mark.reliability

AK, SK = devbroker.ACL_ACCESS_KEY, devbroker.ACL_SECRET_KEY


def _topic(ns: str, queues: int = 4, **creds: str) -> str:
    t = unique("R")
    with Admin(ns, **creds) as a:
        a.create_topic(t, queues=queues)
    # brokers report new topics to the name server asynchronously: wait for the route of every broker
    brokers = len(devbroker.get_cluster_info(ns).get("brokerAddrTable") or {}) or 1
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        route = devbroker.get_route_info(ns, t)
        if route and len(route.get("queueDatas") or []) >= brokers:
            break
        time.sleep(0.5)
    return t


class Traffic:
    """Sends numbered messages in a thread and consumes them in another,
    recording every outcome with its time."""

    def __init__(self, ns: str, topic: str, send_timeout: float = 3.0, interval: float = 0.02,
                 **creds: str) -> None:
        self.ns, self.topic, self.creds = ns, topic, creds
        self.consumer = self._new_consumer(ns, topic, **creds)
        self.producer = Producer(ns, send_timeout=send_timeout, **creds)
        self.interval = interval
        self.acked: dict[int, float] = {}  # seq -> time of the acknowledged send
        self.failures: list[tuple[float, float, str, bool]] = []  # (time, duration, type, retriable)
        self.received: set[int] = set()
        self.stop = threading.Event()
        self.seq = 0
        self.threads = [threading.Thread(target=self._send, daemon=True),
                        threading.Thread(target=self._consume, daemon=True)]

    @staticmethod
    def _new_consumer(ns: str, topic: str, **creds: str) -> Consumer:
        # NoRouteError is retriable: right after create_topic the SDK's route query can still miss
        # the topic on an ACL cluster (seen with two brokers), so retry like an application would
        deadline = time.monotonic() + 60
        while True:
            try:
                return Consumer(ns, unique("G"), topic, from_where="first", **creds)
            except rmq_native.NoRouteError as e:
                print(f"[reliability] consumer start: {e}; retrying", flush=True)
                if time.monotonic() > deadline:
                    raise
                time.sleep(2)

    def __enter__(self) -> Traffic:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(60)
        self.producer.close()
        self.consumer.close()

    def _send(self) -> None:
        while not self.stop.is_set():
            i = self.seq
            self.seq += 1
            t0 = time.monotonic()
            try:
                self.producer.send(self.topic, str(i))
                self.acked[i] = time.monotonic()
            except rmq_native.RocketMQError as e:
                self.failures.append((t0, time.monotonic() - t0, type(e).__name__, e.retriable))
            time.sleep(self.interval)

    def _consume(self) -> None:
        while not self.stop.is_set():
            m = self.consumer.receive(timeout=0.5)
            if m is not None:
                self.received.add(int(m.body))
                m.ack()

    def wait_all_received(self, timeout: float) -> set[int]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not set(self.acked) <= self.received:
            time.sleep(0.5)
        return set(self.acked) - self.received

    def sends_ok_after(self, t: float) -> int:
        return sum(1 for v in self.acked.values() if v > t)


# --------------------------------------------------------------------------- consumer SIGKILL


def test_consumer_sigkill_20_trials_10000_messages(single_cluster: dict[str, str], tmp_path: Path) -> None:
    ns = single_cluster["ns"]
    res = harness.consumer_kill_trials(ns, _topic(ns), unique("G"), 10_000, 20, tmp_path, seed=2024)
    harness.record_result("consumer_sigkill", res)
    assert res["acknowledged_sends"] == 10_000
    assert res["missing"] == 0, res


# --------------------------------------------------------------------------- broker / name server down


def test_broker_stopped_and_started_during_traffic(single_cluster: dict[str, str]) -> None:
    ns, home = single_cluster["ns"], single_cluster["home"]
    send_timeout = 3.0
    with Traffic(ns, _topic(ns), send_timeout=send_timeout) as tr:
        time.sleep(5)
        assert tr.acked and not tr.failures
        t_stop = time.monotonic()
        devbroker.stop_broker("broker-a", home=home, quiet=True)
        time.sleep(10)
        down_failures = [f for f in tr.failures if f[0] >= t_stop]
        t_start = time.monotonic()
        devbroker.start_broker("broker-a", home=home, quiet=True)
        t_ready = time.monotonic()
        deadline = time.monotonic() + 90
        while tr.sends_ok_after(t_ready) < 20 and time.monotonic() < deadline:
            time.sleep(0.5)
        recovered = [v for v in tr.acked.values() if v > t_start]
        missing = tr.wait_all_received(120)
    res = {
        "acknowledged_sends": len(tr.acked),
        "failures": len(tr.failures),
        "failure_types": sorted({f[2] for f in tr.failures}),
        "max_failed_send_seconds": round(max((f[1] for f in tr.failures), default=0), 2),
        "broker_start_seconds": round(t_ready - t_start, 1),
        "first_ok_send_after_broker_ready_s": round(min(recovered) - t_ready, 1) if recovered else None,
        "missing_after_restart": len(missing),
    }
    harness.record_result("broker_stop_start", res)
    assert down_failures, "sends did not fail while the broker was down"
    assert all(f[3] for f in tr.failures), f"non-retriable failures: {tr.failures}"
    # never hang: a failed send returns within its timeout (+ slack for a loaded machine)
    assert res["max_failed_send_seconds"] <= send_timeout + 2, res
    assert tr.sends_ok_after(t_ready) >= 20, res
    assert not missing, f"{len(missing)} acknowledged sends never consumed: {sorted(missing)[:20]}"


def test_name_server_down_at_start_and_restarted(single_cluster: dict[str, str]) -> None:
    ns, home = single_cluster["ns"], single_cluster["home"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{s.getsockname()[1]}"
    for make in (lambda: Producer(dead), lambda: Consumer(dead, "g", "t"), lambda: Admin(dead).create_topic("t")):
        with pytest.raises(rmq_native.UnreachableError):
            make()
    topic = _topic(ns)
    with Traffic(ns, topic) as tr:
        time.sleep(5)
        devbroker.stop_broker("namesrv", home=home, quiet=True)
        t_down = time.monotonic()
        # a new client cannot start without a name server: a clear error
        with pytest.raises(rmq_native.UnreachableError) as ei:
            Producer(ns)
        assert ns in str(ei.value)
        time.sleep(10)
        during = tr.sends_ok_after(t_down)  # routes are cached: running clients carry on
        devbroker.start_broker("namesrv", home=home, quiet=True)
        t_up = time.monotonic()
        with Producer(ns) as p:  # new clients work again
            p.send(topic, b"-1")
        time.sleep(35)  # one SDK route refresh against the new name server
        after = tr.sends_ok_after(t_up)
        missing = tr.wait_all_received(60)
    res = {"sends_ok_while_name_server_down": during, "sends_ok_after_restart": after,
           "failures": len(tr.failures), "missing": len(missing)}
    harness.record_result("name_server_restart", res)
    assert during > 0 and after > 0, res
    assert not missing, res


# --------------------------------------------------------------------------- two brokers


def test_two_broker_cluster_survives_one_broker_killed(acl_cluster: dict[str, str]) -> None:
    ns, home = acl_cluster["ns"], acl_cluster["home"]
    creds = {"access_key": AK, "secret_key": SK}
    topic = _topic(ns, 4, **creds)
    with Traffic(ns, topic, send_timeout=3.0, **creds) as tr:
        time.sleep(8)
        t_kill = time.monotonic()
        devbroker.stop_broker("broker-b", home=home, kill=True, quiet=True)
        time.sleep(45)  # > the SDK's 30 s route refresh
        after_kill = [f for f in tr.failures if f[0] >= t_kill]
        last_failure = max((f[0] + f[1] for f in after_kill), default=t_kill) - t_kill
        ok_after = tr.sends_ok_after(t_kill + last_failure)
        late_failures = [f for f in after_kill if f[0] > t_kill + 35]
        received_before = len(tr.received)
        time.sleep(5)
        consuming = len(tr.received) > received_before
        devbroker.start_broker("broker-b", home=home, quiet=True)
        missing = tr.wait_all_received(120)
    res = {
        "failed_sends_after_kill": len(after_kill),
        "failover_seconds": round(last_failure, 1),
        "sends_ok_after_failover": ok_after,
        "failures_later_than_35s": len(late_failures),
        "consumer_kept_consuming": consuming,
        "missing_after_broker_back": len(missing),
        "acknowledged_sends": len(tr.acked),
    }
    harness.record_result("two_broker_failover", res)
    assert ok_after > 50 and not late_failures, res
    assert all(f[3] for f in after_kill), after_kill
    assert consuming, res
    assert not missing, res


# --------------------------------------------------------------------------- ACL


def test_acl_right_credentials_work(acl_cluster: dict[str, str]) -> None:
    ns = acl_cluster["ns"]
    creds = {"access_key": AK, "secret_key": SK}
    topic = _topic(ns, 2, **creds)
    with Producer(ns, **creds) as p:
        p.send(topic, b"with credentials", tags="t", keys=["k"], properties={"a": "b"})
    with Consumer(ns, unique("G"), topic, from_where="first", **creds) as c:
        m = c.receive(timeout=30)
        assert m is not None and m.body == b"with credentials"
        m.ack()
    with Admin(ns, **creds) as a:
        a.delete_topic(topic)


@pytest.mark.parametrize("creds", [{"access_key": AK, "secret_key": "wrong-secret"},
                                   {"access_key": "nobody", "secret_key": "whatever1"}, {}],
                         ids=["wrong-secret", "unknown-user", "none"])
def test_acl_wrong_credentials_clear_authentication_error(acl_cluster: dict[str, str], creds: dict[str, str]) -> None:
    ns = acl_cluster["ns"]
    topic = _topic(ns, 2, access_key=AK, secret_key=SK)
    errors: dict[str, BaseException | None] = {}
    t = time.monotonic()
    with Producer(ns, send_timeout=5, **creds) as p:
        try:
            p.send(topic, b"x")
            errors["send"] = None
        except rmq_native.RocketMQError as e:
            errors["send"] = e
    with Admin(ns, **creds) as a:
        try:
            a.create_topic(unique("ACLX"), queues=1)
            errors["admin"] = None
        except rmq_native.RocketMQError as e:
            errors["admin"] = e
    assert time.monotonic() - t < 30
    auth_cls = getattr(rmq_native, "AuthenticationError", None)
    for what, e in errors.items():
        assert e is not None, f"{what} with {creds or 'no credentials'} succeeded on an ACL broker"
        assert auth_cls is not None and isinstance(e, auth_cls), \
            f"{what}: expected rmq_native.AuthenticationError, got {type(e).__name__}: {e}"
        assert not e.retriable, f"{what}: authentication failures are not retriable: {e!r}"


def test_acl_secret_never_logged_or_shown(acl_cluster: dict[str, str]) -> None:
    ns = acl_cluster["ns"]
    topic = _topic(ns, 2, access_key=AK, secret_key=SK)
    res = harness.run_child("secret_leak_check", ns, topic, AK, SK, env={"RMQ_NATIVE_LOG_LEVEL": "DEBUG"})
    harness.record_result("acl_secret_check", {k: v for k, v in res.items() if k != "leaks"})
    assert res["log_records"] > 0, "no DEBUG records captured"
    assert not res["leaks"], res["leaks"]


# --------------------------------------------------------------------------- fuzzing


def test_fuzz_python_api(single_cluster: dict[str, str]) -> None:
    ns = single_cluster["ns"]
    res = harness.fuzz_python_api(ns, _topic(ns), unique("G"), examples=2600)
    harness.record_result("fuzz_python_api", res)
    assert res["cases"] >= 10_000
    assert res["undocumented_count"] == 0, res["undocumented"]


def test_fuzz_c_abi(single_cluster: dict[str, str]) -> None:
    ns = single_cluster["ns"]
    res = harness.run_child("abi_fuzz", ns, _topic(ns), 20_000, 99, True, timeout=900)
    harness.record_result("fuzz_c_abi", res)
    assert res["cases"] == 20_000
    assert res["problem_count"] == 0, res["problems"]


# --------------------------------------------------------------------------- resources


def test_rss_200000_messages(single_cluster: dict[str, str]) -> None:
    ns = single_cluster["ns"]
    res = harness.run_child("rss_growth", ns, _topic(ns, 8), 200_000, 20_000, timeout=1200)
    harness.record_result("rss_200k", res)
    assert res["rss_growth_mib"] < 20, res


def test_200_create_close_cycles(single_cluster: dict[str, str]) -> None:
    ns = single_cluster["ns"]
    res = harness.run_child("create_close_cycles", ns, _topic(ns), unique("G"), 200, timeout=1500)
    harness.record_result("create_close_200", res)
    before, settled = res["before"], res["settled"]
    assert settled["handles"] == before["handles"], res
    assert settled.get("producers", 0) == 0 and settled.get("consumers", 0) == 0, res
    # every goroutine counts: what stays is the bounded residue of each closed consumer
    assert settled["goroutines"] <= before["goroutines"] + harness.CONSUMER_RESIDUE_GOROUTINES * 200, res


def test_spawn_child_pid_differs(single_cluster: dict[str, str]) -> None:
    """multiprocessing spawn against the reliability broker (the sample does it on the shared one)."""
    import multiprocessing

    ns = single_cluster["ns"]
    topic = _topic(ns)
    token = f"spawn-{os.getpid()}"
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        got = pool.starmap(harness.spawn_child_roundtrip, [(ns, topic, unique("G"), token),
                                                           (ns, topic, unique("G"), token)])
    assert got == [token, token]
