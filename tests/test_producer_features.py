"""Every way of sending, against the real broker."""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import os
import sys
import threading
import time
from collections import defaultdict

import pytest
from conftest import pause_process, unique

import rmq_native
from rmq_native import (
    Consumer,
    OutgoingMessage,
    Producer,
    TransactionProducer,
    TransactionState,
    devbroker,
)


def collect(c: Consumer, want: int, timeout: float = 60) -> list[rmq_native.Message]:
    got: list[rmq_native.Message] = []
    deadline = time.monotonic() + timeout
    for m in c.messages(timeout=timeout):
        got.append(m)
        if len(got) >= want or time.monotonic() > deadline:
            m.ack()  # handled: leaving the loop would give it back
            break
    return got


def test_five_thousand_async_sends(rocketmq_namesrv: str, producer: Producer, topic: str, group: str) -> None:
    n = 5000
    t = time.monotonic()
    futures = [producer.send_async(topic, f"async-{i}", keys=[f"k{i}"]) for i in range(n)]
    # the caller never blocks: starting 5,000 sends takes far less than sending them
    started = time.monotonic() - t
    results = [f.result(timeout=60) for f in concurrent.futures.as_completed(futures, timeout=120)]
    assert len(results) == n and all(r.status == rmq_native.SendStatus.SEND_OK for r in results)
    assert len({r.msg_id for r in results}) == n
    assert started < 30
    with Consumer(rocketmq_namesrv, group, topic, from_where="first") as c:
        bodies = {m.body for m in collect(c, n, timeout=120)}
    assert bodies == {f"async-{i}".encode() for i in range(n)}


def test_async_failure_arrives_through_the_future(producer: Producer) -> None:
    with pytest.raises(rmq_native.InvalidArgumentError):
        producer.send_async("bad topic", b"x")  # bad arguments raise at once
    p = Producer(producer.name_server)
    p.close()
    with pytest.raises(rmq_native.ClosedError):
        p.send_async("t", b"x")


def test_close_waits_for_async_sends(rocketmq_namesrv: str, topic: str) -> None:
    p = Producer(rocketmq_namesrv)
    futures = [p.send_async(topic, f"m{i}") for i in range(200)]
    p.close()
    assert all(f.done() for f in futures)
    assert all(f.result().status == rmq_native.SendStatus.SEND_OK for f in futures)


def test_oneway(rocketmq_namesrv: str, producer: Producer, topic: str, group: str) -> None:
    for i in range(20):
        producer.send_oneway(topic, f"oneway-{i}", tags="ow")
    with Consumer(rocketmq_namesrv, group, topic, from_where="first") as c:
        got = collect(c, 20)
    assert {m.body for m in got} == {f"oneway-{i}".encode() for i in range(20)}


def test_batch_of_32_arrives_whole(rocketmq_namesrv: str, producer: Producer, topic: str, group: str) -> None:
    items = [
        OutgoingMessage(f"batch-{i}", tags=f"t{i % 4}", keys=[f"key-{i}", "shared"], properties={"i": str(i), "ü": "ö"})
        if i % 2 else f"batch-{i}"
        for i in range(32)
    ]
    r = producer.send_batch(topic, items)
    assert r.status == rmq_native.SendStatus.SEND_OK and len(r.msg_ids) == 32 and r.msg_id == r.msg_ids[0]
    with Consumer(rocketmq_namesrv, group, topic, from_where="first") as c:
        got = {m.body: m for m in collect(c, 32)}
    assert len(got) == 32
    for i in range(32):
        m = got[f"batch-{i}".encode()]
        assert m.msg_id == r.msg_ids[i]
        if i % 2:
            assert m.tags == f"t{i % 4}" and m.keys == [f"key-{i}", "shared"]
            assert m.properties == {"i": str(i), "ü": "ö"}
        else:
            assert m.tags is None and m.properties == {}
    # one round trip: the whole batch is in one queue, at consecutive offsets
    assert len({m.queue_id for m in got.values()}) == 1
    offsets = sorted(m.queue_offset for m in got.values())
    assert offsets == list(range(offsets[0], offsets[0] + 32))


def test_batches_of_many_sizes_from_four_threads_arrive_intact(
        rocketmq_namesrv: str, producer: Producer, topic: str, group: str) -> None:
    """The library reuses the buffers of sent batches: concurrent batches of
    growing and shrinking sizes must each arrive with their own bytes."""
    sent: dict[str, bytes] = {}
    lock = threading.Lock()

    def worker(t: int) -> None:
        for b in range(12):
            n, size = 1 + (b * 7 + t) % 40, 10 + ((b * 997 + t * 131) % 3) * 3000
            bodies = [f"t{t}-b{b}-m{i}-".encode().ljust(size, bytes([97 + (t + b + i) % 26])) for i in range(n)]
            r = producer.send_batch(topic, bodies)
            with lock:
                sent.update(zip(r.msg_ids, bodies))

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        list(pool.map(worker, range(4)))
    with Consumer(rocketmq_namesrv, group, topic, from_where="first") as c:
        got = {m.msg_id: m.body for m in collect(c, len(sent))}
    assert got == sent


def test_batch_rejects_bad_items(producer: Producer, topic: str) -> None:
    with pytest.raises(ValueError, match="at least one"):
        producer.send_batch(topic, [])
    with pytest.raises(TypeError, match="batch item 1"):
        producer.send_batch(topic, [b"ok", 42])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="batch item 0"):
        producer.send_batch(topic, [b""])


def _first_arrival(ns: str, group: str, topic: str, timeout: float) -> tuple[float, rmq_native.Message]:
    with Consumer(ns, group, topic, from_where="first") as c:
        m = c.receive(timeout=timeout)
        assert m is not None
        m.ack()
        return time.time(), m


def test_delay_level_2_waits_about_5_seconds(rocketmq_namesrv: str, producer: Producer, topic: str, group: str) -> None:
    sent = time.time()
    producer.send(topic, b"later", delay_level=2)
    arrived, m = _first_arrival(rocketmq_namesrv, group, topic, 30)
    assert m.body == b"later"
    assert arrived - sent >= 4.5


@pytest.mark.parametrize("how", ["delay", "deliver_at"])
def test_delivery_time(rocketmq_namesrv: str, producer: Producer, topic: str, group: str, how: str) -> None:
    sent = time.time()
    if how == "delay":
        producer.send(topic, b"timed", delay=4)
    else:
        producer.send(topic, b"timed", deliver_at=dt.datetime.now() + dt.timedelta(seconds=4))
    arrived, m = _first_arrival(rocketmq_namesrv, group, topic, 30)
    assert m.body == b"timed"
    assert arrived - sent >= 3.5


def test_delay_options_are_validated(producer: Producer, topic: str) -> None:
    with pytest.raises(ValueError):
        producer.send(topic, b"x", delay=1, deliver_at=dt.datetime.now())
    with pytest.raises(ValueError):
        producer.send(topic, b"x", delay_level=2, delay=1)
    with pytest.raises(TypeError):
        producer.send(topic, b"x", deliver_at="tomorrow")  # type: ignore[arg-type]


def test_sharding_keys_keep_a_key_on_one_queue(
    rocketmq_namesrv: str, producer: Producer, make_topic, group: str
) -> None:
    topic = make_topic(queues=8)
    queues: dict[str, set[int]] = defaultdict(set)
    for i in range(1000):
        key = f"order-{i % 10}"
        queues[key].add(producer.send(topic, f"{key}:{i}", sharding_key=key).queue_id)
    assert all(len(q) == 1 for q in queues.values())
    assert len({next(iter(q)) for q in queues.values()}) > 1  # keys are spread over queues
    with Consumer(rocketmq_namesrv, group, topic, from_where="first") as c:
        got = collect(c, 1000, timeout=120)
    assert len(got) == 1000
    for m in got:
        key = m.body.decode().split(":")[0]
        assert {m.queue_id} == queues[key]


def test_eight_threads_share_one_producer(rocketmq_namesrv: str, producer: Producer, topic: str, group: str) -> None:
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            for i in range(1000):
                producer.send(topic, f"{t}-{i}")
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    with Consumer(rocketmq_namesrv, group, topic, from_where="first") as c:
        got = {m.body for m in collect(c, 8000, timeout=180)}
    assert got == {f"{t}-{i}".encode() for t in range(8) for i in range(1000)}


def test_transactions_commit_rollback_and_check(rocketmq_namesrv: str, topic: str, group: str) -> None:
    checked: list[str] = []

    def check(msg: rmq_native.Message) -> TransactionState:
        checked.append(msg.body.decode())
        return TransactionState.COMMIT

    with TransactionProducer(rocketmq_namesrv, unique("TXP"), check) as tp:
        seen: list[rmq_native.Message] = []
        r1 = tp.send_in_transaction(topic, b"commit", execute=lambda m: seen.append(m) or TransactionState.COMMIT)
        assert r1.status == rmq_native.SendStatus.SEND_OK and seen[0].body == b"commit"
        tp.send_in_transaction(topic, b"rollback", execute=lambda m: TransactionState.ROLLBACK)
        with pytest.raises(ZeroDivisionError):
            tp.send_in_transaction(topic, b"raised", execute=lambda m: 1 // 0)
        tp.send_in_transaction(topic, b"unknown", execute=lambda m: TransactionState.UNKNOWN)
        with Consumer(rocketmq_namesrv, group, topic, from_where="first") as c:
            got = collect(c, 2, timeout=90)
            got += list(c.messages(timeout=3))
    # a checked transaction may be committed twice (the broker can check
    # again before it saw the first answer): at least once, never a rollback
    assert {m.body for m in got} == {b"commit", b"unknown"}
    assert "unknown" in checked and "rollback" not in checked and "commit" not in checked


def test_send_to_an_unresponsive_broker_fails_within_the_send_timeout(tmp_path) -> None:
    """A broker that accepts connections but never answers (SIGSTOP)."""
    home = tmp_path / "broker"
    ns = devbroker.start(namesrv_port=19976, broker_port=21011, home=home, quiet=True)
    try:
        info = devbroker.status(home=home)
        assert info is not None
        broker_pid = info["broker_pid"]
        with Producer(ns, send_timeout=2, retries=1) as p:
            p.send("stopped_broker_topic", b"warm-up")  # the route is cached from now on
            pause_process(broker_pid, True)
            try:
                t = time.monotonic()
                with pytest.raises(rmq_native.RocketMQError) as ei:
                    p.send("stopped_broker_topic", b"lost?")
                took = time.monotonic() - t
            finally:
                pause_process(broker_pid, False)
        assert took < 2 + 1.0
        assert ei.value.retriable, ei.value
    finally:
        devbroker.stop(home=home)


def _tcp_segments(fds: set[int]) -> int:
    """Segments with data sent on these TCP sockets of this process
    (tcp_info.tcpi_data_segs_out, Linux >= 4.6)."""
    import socket
    import struct

    segments = 0
    for fd in fds:
        try:
            s = socket.socket(fileno=os.dup(fd))
        except OSError:
            continue  # closed meanwhile
        try:
            info = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 160)
        finally:
            s.close()
        segments += struct.unpack_from("I", info, 156)[0]
    return segments


def _tcp_fds() -> set[int]:
    fds = set()
    for name in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{name}").startswith("socket:"):
                fds.add(int(name))
        except OSError:
            pass
    return fds


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="TCP_CORK and tcp_info are Linux's")
def test_a_synchronous_request_leaves_as_one_segment(rocketmq_namesrv: str, topic: str) -> None:
    # The SDK writes a request in four writes on a TCP_NODELAY socket; the
    # library corks the producer's connections around the writing of each
    # request (go/cork.go), so each leaves as one segment, not four.
    before = _tcp_fds()
    with Producer(rocketmq_namesrv, unique("P")) as p:  # a group of its own: an SDK client of its own
        p.send(topic, b"warm")  # route and broker connection
        fds = _tcp_fds() - before
        sends = 200
        start = _tcp_segments(fds)
        for _ in range(sends):
            p.send(topic, b"x" * 1024)
        p.send_batch(topic, [b"y" * 100] * 16)
        segments = _tcp_segments(fds) - start
    assert fds
    # a few more for the heartbeat or a route update that may fall in the window
    assert segments <= (sends + 1) * 1.25, f"{segments} segments for {sends + 1} requests"


_PROCS_CHILD = """
import json, sys, threading, rmq_native
from rmq_native import _ffi
def procs():
    out, n = _ffi.ffi.new("uint8_t **"), _ffi.ffi.new("int64_t *")
    _ffi.check(_ffi.lib().rmq_debug_stats(out, n))
    return json.loads(_ffi.take_buffer(out[0], n[0]))["procs"]
ns, topic, many = sys.argv[1], sys.argv[2], sys.argv[3] == "many"
with rmq_native.Producer(ns, "procs_probe") as p:
    p.send(topic, b"warm")
    start = procs()
    threads = 3 * start if many else 1
    def work():
        for _ in range(150):
            p.send(topic, b"x")
    ts = [threading.Thread(target=work) for _ in range(threads)]
    for t in ts: t.start()
    for t in ts: t.join()
    print(json.dumps([start, procs()]))
"""


@pytest.mark.parametrize("threads,env_procs", [("many", None), ("one", None), ("many", "2")])
def test_ps_rise_only_for_threads_waiting_in_sync_sends(rocketmq_namesrv: str, topic: str, threads: str,
                                                         env_procs: str | None) -> None:
    # go/procs.go: GOMAXPROCS rises (to at most the number of waiting
    # threads) while more threads wait in synchronous sends than there are
    # Ps; one thread leaves the default, GOMAXPROCS in the environment is
    # left alone. "many" is three times the default.
    import json
    import subprocess

    env = {k: v for k, v in os.environ.items() if k != "GOMAXPROCS"}
    if env_procs:
        env["GOMAXPROCS"] = env_procs
    out = subprocess.run([sys.executable, "-c", _PROCS_CHILD, rocketmq_namesrv, topic, threads], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    start, end = json.loads(out.stdout.strip().splitlines()[-1])
    if env_procs:
        assert start == end == int(env_procs)
    elif threads == "one":
        assert end == start
    else:
        assert start < end <= 3 * start, (start, end)
