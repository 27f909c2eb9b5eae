"""Consumer modes and guarantees, against the real broker."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from collections import defaultdict
from pathlib import Path

from conftest import unique

import rmq_native
from rmq_native import Consumer, Producer, aio

SRC = str(Path(__file__).resolve().parents[1] / "src")


def child_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.update(extra)
    return env


def test_nack_three_times_then_dead_letter(rocketmq_namesrv: str, producer: Producer, topic: str, make_topic) -> None:
    group = unique("G")
    producer.send(topic, b"retry me", properties={"origin": "test"})
    seen = []
    with Consumer(rocketmq_namesrv, group, topic, from_where="first") as c:
        for _ in range(4):
            m = c.receive(timeout=60)
            assert m is not None and m.body == b"retry me"
            seen.append(m.reconsume_times)
            if len(seen) < 4:
                m.nack(delay_level=1)
            else:
                m.ack()
    assert seen == [0, 1, 2, 3]

    dlq_group = unique("G")
    poison_topic = make_topic()
    producer.send(poison_topic, b"poison")
    with Consumer(rocketmq_namesrv, dlq_group, poison_topic, from_where="first", max_reconsume_times=2) as c:
        times = []
        for _ in range(3):
            m = c.receive(timeout=60)
            assert m is not None and m.body == b"poison"
            times.append(m.reconsume_times)
            m.nack(delay_level=1)
        assert times == [0, 1, 2]
        assert c.receive(timeout=5) is None  # gone to the dead-letter topic
    with Consumer(rocketmq_namesrv, unique("G"), f"%DLQ%{dlq_group}", from_where="first") as dlq:
        dead = dlq.receive(timeout=60)
        assert dead is not None and dead.body == b"poison"
        dead.ack()


def test_orderly_per_key_order_with_random_nacks(
    rocketmq_namesrv: str, producer: Producer, make_topic, group: str
) -> None:
    topic = make_topic(queues=8)
    n, keys = 2000, 8
    for i in range(n):
        producer.send(topic, f"{i % keys}:{i}", sharding_key=f"key-{i % keys}")
    rnd = random.Random(7)
    delivered: dict[str, list[int]] = defaultdict(list)
    acked: dict[str, list[int]] = defaultdict(list)
    nacked: set[int] = set()
    with Consumer(rocketmq_namesrv, group, topic, from_where="first", orderly=True) as c:
        deadline = time.monotonic() + 180
        while sum(map(len, acked.values())) < n and time.monotonic() < deadline:
            m = c.receive(timeout=30)
            assert m is not None, "orderly consumer stalled"
            key, i = m.body.decode().split(":")
            delivered[key].append(int(i))
            if int(i) not in nacked and rnd.random() < 0.01:
                nacked.add(int(i))
                m.nack()
            else:
                m.ack()
                acked[key].append(int(i))
    assert nacked, "the test nacked nothing"
    for key in map(str, range(keys)):
        expected = list(range(int(key), n, keys))
        assert acked[key] == expected, f"key {key}: acknowledged out of order"
        seq = delivered[key]
        # a nacked message comes back before the ones after it
        assert all(b >= a for a, b in zip(seq, seq[1:])), f"key {key}: delivered out of order"


def test_broadcasting_every_consumer_gets_everything(
    rocketmq_namesrv: str, producer: Producer, topic: str, group: str
) -> None:
    with Consumer(rocketmq_namesrv, group, topic, model="broadcasting", from_where="first") as c1, \
            Consumer(rocketmq_namesrv, group, topic, model="broadcasting", from_where="first") as c2:
        for i in range(500):
            producer.send(topic, f"b{i}")
        want = {f"b{i}".encode() for i in range(500)}
        got1: set[bytes] = set()
        got2: set[bytes] = set()
        deadline = time.monotonic() + 90
        while (got1 != want or got2 != want) and time.monotonic() < deadline:
            for c, got in ((c1, got1), (c2, got2)):
                m = c.receive(timeout=0.2)
                while m is not None:
                    got.add(m.body)
                    m.ack()
                    m = c.receive(timeout=0)
    assert got1 == want and got2 == want


def test_broadcasting_offsets_live_in_the_state_dir(rocketmq_namesrv: str, producer: Producer, topic: str,
                                                    tmp_path: Path) -> None:
    """HOME is not needed (Windows has none): offsets go to RMQ_NATIVE_STATE_DIR."""
    group = unique("G")
    producer.send(topic, b"x")
    code = textwrap.dedent(f"""
        import rmq_native
        with rmq_native.Consumer({rocketmq_namesrv!r}, {group!r}, {topic!r}, model="broadcasting",
                                 from_where="first", instance_name="bcast-1") as c:
            m = c.receive(timeout=60)
            assert m is not None and m.body == b"x"
            m.ack()
    """)
    env = child_env(RMQ_NATIVE_STATE_DIR=str(tmp_path))
    env.pop("HOME", None)
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=120)
    files = list((tmp_path / "offsets").rglob("offset.json"))
    assert files and group in str(files[0]) and "bcast-1" in str(files[0]), files
    assert topic in files[0].read_text()
    # a restart with the same instance name resumes from the stored offset
    producer.send(topic, b"y")
    code2 = code.replace('b"x"', 'b"y"')
    subprocess.run([sys.executable, "-c", code2], env=env, check=True, timeout=120)


CONSUMER_SCRIPT = """
import json, sys, time, rmq_native
ns, group, topic, out, seconds = sys.argv[1:6]
with rmq_native.Consumer(ns, group, topic, from_where="first") as c, open(out, "w") as f:
    end = time.monotonic() + float(seconds)
    while time.monotonic() < end:
        for m in c.messages(timeout=0.5):
            f.write(m.body.decode() + "\\n")
            f.flush()
            if time.monotonic() > end:
                break
"""


def test_clustering_two_processes_share_the_work(
    rocketmq_namesrv: str, producer: Producer, topic: str, group: str, tmp_path: Path
) -> None:
    outs = [tmp_path / f"c{i}.txt" for i in range(2)]
    procs = [
        subprocess.Popen([sys.executable, "-c", CONSUMER_SCRIPT, rocketmq_namesrv, group, topic, str(o), "45"],
                         env=child_env())
        for o in outs
    ]
    try:
        time.sleep(8)  # both join the group and share the queues
        for i in range(2000):
            producer.send(topic, f"c{i}")
        for p in procs:
            p.wait(timeout=90)
    finally:
        for p in procs:
            p.kill()
    per = [set(o.read_text().split()) for o in outs]
    assert per[0] | per[1] == {f"c{i}" for i in range(2000)}
    assert per[0] and per[1], "both consumers should have had a share"


def test_sql92_selects_exactly_the_matching_messages(
    rocketmq_namesrv: str, producer: Producer, topic: str, group: str
) -> None:
    expected = set()
    for i in range(40):
        a, b = i % 10, "xy"[i % 2]
        producer.send(topic, f"s{i}", properties={"a": str(a), "b": b})
        if a > 5 and b == "x":
            expected.add(f"s{i}".encode())
    with Consumer(rocketmq_namesrv, group, topic, "a > 5 AND b = 'x'", selector="sql92", from_where="first") as c:
        got = set()
        for m in c.messages(timeout=10):
            got.add(m.body)
    assert got == expected and expected


def test_from_where_first_gets_earlier_messages(rocketmq_namesrv: str, producer: Producer, topic: str) -> None:
    producer.send(topic, b"old")
    time.sleep(1)
    producer.send(topic, b"new")
    with Consumer(rocketmq_namesrv, unique("G"), topic, from_where="first") as c:
        assert {m.body for m in c.messages(timeout=10)} == {b"old", b"new"}


def test_several_topics_in_one_consumer(rocketmq_namesrv: str, producer: Producer, make_topic, group: str) -> None:
    t1, t2 = make_topic(), make_topic()
    producer.send(t1, b"one", tags="a")
    producer.send(t1, b"skipped", tags="b")
    producer.send(t2, b"two", tags="z")
    with Consumer(rocketmq_namesrv, group, subscriptions={t1: "a", t2: "*"}, from_where="first") as c:
        got = {(m.topic, m.body) for m in c.messages(timeout=10)}
    assert got == {(t1, b"one"), (t2, b"two")}


BACKPRESSURE_SCRIPT = """
import sys, time, rmq_native
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
ns, group, topic = sys.argv[1:4]
with rmq_native.Consumer(ns, group, topic, from_where="first") as c:
    first = c.receive(timeout=60)
    first.ack()
    base, peak, n = rss(), 0.0, 0
    end = time.monotonic() + 20
    for m in c.messages(timeout=30):
        time.sleep(0.002)
        n += 1
        peak = max(peak, rss())
        if time.monotonic() > end:
            break
print(base, peak, n)
"""


def test_slow_consumer_memory_is_bounded(rocketmq_namesrv: str, topic: str, group: str) -> None:
    body = os.urandom(1024)
    # a generous send timeout: 50,000 sends on a loaded machine may wait
    # more than the default 3 s for the broker (this test is about the consumer)
    with Producer(rocketmq_namesrv, unique("P"), send_timeout=20) as producer:
        futures = [producer.send_async(topic, body) for _ in range(50_000)]
        for f in futures:
            f.result(timeout=120)
    r = subprocess.run([sys.executable, "-c", BACKPRESSURE_SCRIPT, rocketmq_namesrv, group, topic],
                       env=child_env(), capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr
    base, peak, n = map(float, r.stdout.split())
    # 50 MiB of messages wait in the broker; the slow client holds at most the
    # SDK's pull buffer (1,024 messages a queue) and its own small batch.
    assert n > 1000
    assert peak - base < 64, f"RSS grew by {peak - base:.1f} MiB while consuming slowly"


LARGE_BACKLOG_SCRIPT = """
import sys, time, rmq_native
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
ns, group, topic, total = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
with rmq_native.Consumer(ns, group, topic, from_where="first") as c:
    base = rss()
    held = c.receive(timeout=60)  # the application is busy with it: the rest waits in the prefetch
    peak = base
    for _ in range(40):
        time.sleep(0.1)
        peak = max(peak, rss())
    ids = {held.msg_id}
    held.ack()
    for m in c.messages(timeout=20):
        ids.add(m.msg_id)
        if len(ids) == total:
            break
print(base, peak, len(ids))
"""


def test_slow_consumer_memory_is_bounded_for_large_messages(rocketmq_namesrv: str, make_topic,
                                                             group: str) -> None:
    """A backlog of 1 MiB messages: a consumer busy with one of them
    prefetches at most max_prefetch_mib (8) MiB of bodies per queue, not
    the whole backlog (the SDK's own limit is 512 MiB a queue: 8 queues
    with 192 MiB waiting grew the process by ~260 MiB), and every message
    still arrives once the application goes on."""
    topic, total = make_topic(queues=8), 192
    body = os.urandom(1 << 20)
    with Producer(rocketmq_namesrv, unique("P"), send_timeout=20) as producer:
        for _ in range(total):
            producer.send(topic, body)
    r = subprocess.run([sys.executable, "-c", LARGE_BACKLOG_SCRIPT, rocketmq_namesrv, group, topic, str(total)],
                       env=child_env(), capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr
    base, peak, got = r.stdout.split()
    assert int(got) == total
    # 8 queues x (8 + 1) MiB of bodies at most, and the Go heap's headroom
    assert float(peak) - float(base) < 140, f"RSS grew by {float(peak) - float(base):.1f} MiB with a 192 MiB backlog"


# A process started with SIGINT ignored (a suite run in the background by a
# shell without job control, or under nohup) passes that on to its children,
# and Python then leaves SIGINT ignored: the child would wait for ever (the
# hang seen once in a full run). Ask for Python's handler explicitly.
SIGINT_SCRIPT = """
import signal, sys, time
signal.signal(signal.SIGINT, signal.default_int_handler)
import rmq_native
ns, group, topic = sys.argv[1:4]
c = rmq_native.Consumer(ns, group, topic)
print("waiting", flush=True)
try:
    for m in c.messages(timeout=None):
        pass
except KeyboardInterrupt:
    print("interrupted", time.time(), flush=True)
    c.close()
    raise
"""


def test_sigint_interrupts_a_blocking_wait(rocketmq_namesrv: str, topic: str, group: str) -> None:
    p = subprocess.Popen([sys.executable, "-c", SIGINT_SCRIPT, rocketmq_namesrv, group, topic],
                         env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.stdout is not None
    assert p.stdout.readline().strip() == "waiting"
    time.sleep(2)
    sent = time.time()
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=30)
    interrupted = float(out.split()[1])
    assert interrupted - sent < 1.0
    assert p.returncode != 0 and "KeyboardInterrupt" in err


def test_asyncio_loop_keeps_running_while_waiting(rocketmq_namesrv: str, topic: str, group: str) -> None:
    async def main() -> tuple[list[float], list[bytes]]:
        ticks: list[float] = []

        async def ticker() -> None:
            while True:
                ticks.append(time.monotonic())
                await asyncio.sleep(0.01)

        tick_task = asyncio.create_task(ticker())
        async with aio.Producer(rocketmq_namesrv) as p, \
                aio.Consumer(rocketmq_namesrv, group, topic, from_where="first") as c:
            got = []
            start = time.monotonic()
            async for m in c.messages(timeout=2):  # nothing there yet: waits 2 s
                got.append(m.body)
            waited = time.monotonic() - start
            r = await p.send(topic, b"async hello")
            assert r.status == rmq_native.SendStatus.SEND_OK
            async for m in c.messages(timeout=30):
                got.append(m.body)
                break
        tick_task.cancel()
        assert waited >= 1.9
        return ticks, got

    ticks, got = asyncio.run(main())
    assert got == [b"async hello"]
    gaps = [b - a for a, b in zip(ticks, ticks[1:])]
    assert len(ticks) > 150
    assert max(gaps) < 0.1, f"the event loop was blocked for {max(gaps):.3f} s"
