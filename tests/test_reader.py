"""The Reader against real brokers (the shared dev broker and a private
two-broker cluster): time ranges, resuming, no offsets touched, bounded
memory over a 100,000-message range, and the asyncio variant."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from typing import Iterator

import pytest
from conftest import unique

import rmq_native
from rmq_native import Admin, Consumer, InvalidArgumentError, NoRouteError, Producer, Reader, aio


@pytest.fixture(params=["single", "cluster"])
def ns(request: pytest.FixtureRequest) -> str:
    name = "rocketmq_namesrv" if request.param == "single" else "cluster2_namesrv"
    return str(request.getfixturevalue(name))


@pytest.fixture
def env(ns: str) -> Iterator[tuple[str, Admin, Producer, str]]:
    """(name server, admin, producer, a fresh 4-queue topic)."""
    with Admin(ns) as admin, Producer(ns, unique("P")) as producer:
        topic = unique("RD")
        admin.create_topic(topic, queues=4)
        yield ns, admin, producer, topic
        try:
            admin.delete_topic(topic)
        except rmq_native.RocketMQError:
            pass


def send(producer: Producer, topic: str, prefix: str, n: int, **kw: object) -> list[str]:
    bodies = [f"{prefix}-{i}" for i in range(n)]
    for b in bodies:
        producer.send(topic, b, **kw)  # type: ignore[arg-type]
    return bodies


def where(msgs: list[rmq_native.Message]) -> list[tuple[str, int, int]]:
    return [(m.broker_name, m.queue_id, m.queue_offset) for m in msgs]


def in_queue_order(msgs: list[rmq_native.Message]) -> bool:
    last: dict[tuple[str, int], int] = {}
    for b, q, o in where(msgs):
        if last.get((b, q), -1) >= o:
            return False
        last[(b, q)] = o
    return True


def test_reader_between_two_times_yields_exactly_the_messages_stored_between(
        env: tuple[str, Admin, Producer, str]) -> None:
    ns, admin, producer, topic = env
    send(producer, topic, "before", 8)
    time.sleep(1.2)
    start = dt.datetime.now()
    between = send(producer, topic, "between", 11)
    time.sleep(1.2)
    end = dt.datetime.now(dt.timezone.utc)  # aware and naive datetimes both work
    send(producer, topic, "after", 6)
    with Reader(ns, topic, start=start, end=end) as reader:
        msgs = list(reader.messages(timeout=30))
        assert reader.finished
    assert sorted(m.text for m in msgs) == sorted(between)
    assert len({(m.broker_name, m.queue_id, m.queue_offset) for m in msgs}) == 11
    assert in_queue_order(msgs)
    assert all(m.topic == topic and m.broker_name for m in msgs)
    if ns.endswith(":25876"):
        assert {m.broker_name for m in msgs} == {"broker-a", "broker-b"}
    with Reader(ns, topic, end="last") as reader:  # the whole topic, up to its end at opening
        assert sorted(m.text for m in reader.messages()) == sorted(
            [f"before-{i}" for i in range(8)] + between + [f"after-{i}" for i in range(6)])


def test_reader_resumed_from_positions_has_no_duplicates_and_no_gaps(env: tuple[str, Admin, Producer, str]) -> None:
    ns, admin, producer, topic = env
    bodies = send(producer, topic, "m", 50)
    first: list[rmq_native.Message] = []
    with Reader(ns, topic, end="last", batch_size=4) as reader:
        for msg in reader.messages():
            first.append(msg)
            if len(first) == 17:
                break
        positions = reader.positions()
    assert len(positions) == (8 if ns.endswith(":25876") else 4)
    with Reader(ns, topic, start=positions, end="last") as reader:
        rest = list(reader.messages(timeout=30))
    places = where(first) + where(rest)
    assert len(places) == len(set(places)) == 50  # no duplicates
    assert sorted(m.text for m in first + rest) == sorted(bodies)  # no gaps
    stats = admin.topic_stats(topic)
    assert set(places) == {(s.broker_name, s.queue_id, o) for s in stats for o in range(s.min_offset, s.max_offset)}


def test_reader_never_changes_offsets(rocketmq_namesrv: str, env: tuple[str, Admin, Producer, str]) -> None:
    ns, admin, producer, topic = env
    group = unique("G")
    send(producer, topic, "a", 6)
    with Consumer(ns, group, topic, from_where="first") as c:
        got = {m.text for m in c.messages(timeout=10)}
    assert len(got) == 6
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if admin.total_lag(group, topic) == 0:
                break
        except InvalidArgumentError:
            pass
        time.sleep(0.3)
    send(producer, topic, "b", 5)
    # the brokers index a stored message a moment later: wait until all 5 count
    deadline = time.monotonic() + 30
    before = admin.consumer_lag(group, topic)
    while sum(q.lag for q in before) < 5 and time.monotonic() < deadline:
        time.sleep(0.3)
        before = admin.consumer_lag(group, topic)
    assert sum(q.lag for q in before) == 5
    with Reader(ns, topic) as reader:
        assert len(list(reader.messages(timeout=2))) == 11
    assert admin.consumer_lag(group, topic) == before
    with pytest.raises(InvalidArgumentError):
        admin.consumer_lag("rmq_native_reader")  # the reader's requests committed nothing


def test_reader_follow_seek_filter_and_queue_offsets(rocketmq_namesrv: str) -> None:
    ns = rocketmq_namesrv
    with Admin(ns) as admin, Producer(ns, unique("P")) as producer:
        topic = unique("RD")
        admin.create_topic(topic, queues=2)
        try:
            with pytest.raises(NoRouteError):
                Reader(ns, unique("NOPE"))
            with Reader(ns, topic, start="last", expression="red || green") as reader:
                assert list(reader.messages(timeout=0.5)) == []
                send(producer, topic, "red", 3, tags="red")
                send(producer, topic, "blue", 3, tags="blue")
                send(producer, topic, "green", 1, tags="green")
                got = [m.text for m in reader.messages(timeout=3)]  # follows: end=None
                assert sorted(got) == ["green-0", "red-0", "red-1", "red-2"]
                reader.seek("first")
                assert sorted(m.text for m in reader.messages(timeout=2)) == sorted(got)
            with Reader(ns, topic, start={0: 1}, end="last") as reader:  # {queue_id: offset}
                msgs = list(reader.messages())
                stats = {s.queue_id: s for s in admin.topic_stats(topic)}
                assert [m.queue_offset for m in msgs] == list(range(1, stats[0].max_offset))
                assert {m.queue_id for m in msgs} == {0}
                assert reader.positions() == {("broker-a", 0): stats[0].max_offset}
            with Reader(ns, topic, selector="sql92", expression="TAGS = 'blue'", end="last") as reader:
                assert sorted(m.text for m in reader.messages()) == ["blue-0", "blue-1", "blue-2"]
            with pytest.raises(InvalidArgumentError):
                Reader(ns, topic, start={7: 0})
            with pytest.raises(InvalidArgumentError):
                Reader(ns, topic, start="yesterday")  # type: ignore[arg-type]
        finally:
            admin.delete_topic(topic)


def test_aio_reader(env: tuple[str, Admin, Producer, str]) -> None:
    ns, admin, producer, topic = env
    bodies = send(producer, topic, "x", 9)

    async def main() -> tuple[list[str], dict[tuple[str, int], int]]:
        async with aio.Reader(ns, topic, end="last", batch_size=2) as reader:
            got = [m.text async for m in reader.messages(timeout=10)]
            positions = reader.positions()
            await reader.seek("first")
            again = [m.text async for m in reader.messages(timeout=10)]
            assert sorted(again) == sorted(got)
            return got, positions

    got, positions = asyncio.run(main())
    assert sorted(got) == sorted(bodies)
    assert positions == {(s.broker_name, s.queue_id): s.max_offset for s in admin.topic_stats(topic)}


def rss() -> int:
    """The resident set size of this process, in bytes (Linux)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def test_reader_streams_100000_messages_with_bounded_memory(rocketmq_namesrv: str) -> None:
    ns = rocketmq_namesrv
    total, batch = 100_000, 1000
    with Admin(ns) as admin, Producer(ns, unique("P")) as producer:
        topic = unique("BIG")
        admin.create_topic(topic, queues=4)
        try:
            for start in range(0, total, batch):
                producer.send_batch(topic, [f"{i:08d}" for i in range(start, start + batch)])
            # the broker builds its consume queues a moment after the store:
            # wait until every message is indexed (end="last" is read once)
            deadline = time.monotonic() + 60
            while sum(s.max_offset for s in admin.topic_stats(topic)) < total and time.monotonic() < deadline:
                time.sleep(0.5)
            assert sum(s.max_offset for s in admin.topic_stats(topic)) == total
            seen = bytearray(total)
            count, base, peak = 0, 0, 0
            with Reader(ns, topic, end="last", batch_size=256) as reader:
                for msg in reader.messages(timeout=30):
                    seen[int(msg.body)] = 1
                    count += 1
                    assert len(reader._buffer) <= 256
                    if count == 5000:
                        base = rss()
                    elif count % 5000 == 0:
                        peak = max(peak, rss())
            assert count == total and all(seen)
            # keeping 100,000 messages would take > 100 MiB; the reader holds one batch
            assert peak - base < 40 * 2**20, f"RSS grew by {(peak - base) / 2**20:.1f} MiB"
        finally:
            admin.delete_topic(topic)
