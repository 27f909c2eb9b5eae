"""Operations against real brokers (the shared dev broker, and a private
two-broker cluster): topic list and stats, consumer lag, offset reset,
message lookup, namespace and error cases."""

from __future__ import annotations

import datetime as dt
import os
import tempfile
import time
from typing import Callable, Iterator

import pytest
from conftest import unique

import rmq_native
from rmq_native import Admin, Consumer, InvalidArgumentError, NoRouteError, Producer, QueueLag, QueueStats


@pytest.fixture(params=["single", "cluster"])
def ns(request: pytest.FixtureRequest) -> str:
    """The name server of one broker, then of a two-broker cluster."""
    name = "rocketmq_namesrv" if request.param == "single" else "cluster2_namesrv"
    return str(request.getfixturevalue(name))


@pytest.fixture
def ops(ns: str) -> Iterator[tuple[Admin, Producer, Callable[[], str]]]:
    """An admin, a producer and a topic factory (topics deleted afterwards) on ``ns``."""
    made: list[str] = []
    with Admin(ns) as admin, Producer(ns, unique("P")) as producer:

        def make() -> str:
            t = unique("OPS")
            admin.create_topic(t, queues=4)
            made.append(t)
            return t

        yield admin, producer, make
        for t in made:
            try:
                admin.delete_topic(t)
            except rmq_native.RocketMQError:
                pass



def send(producer: Producer, topic: str, prefix: str, n: int, **kw: object) -> list[str]:
    bodies = [f"{prefix}-{i}" for i in range(n)]
    for b in bodies:
        producer.send(topic, b, **kw)  # type: ignore[arg-type]
    return bodies


def consume_all(ns: str, group: str, topic: str, expected: set[str], timeout: float = 90) -> set[str]:
    """Consume with ``group`` until every expected body arrived; close (commits)."""
    got: set[str] = set()
    deadline = time.monotonic() + timeout
    with Consumer(ns, group, topic, from_where="first") as c:
        while not expected <= got and time.monotonic() < deadline:
            for msg in c.messages(timeout=2):
                got.add(msg.text)
                if expected <= got:
                    msg.ack()  # leaving the loop gives an unacknowledged message back
                    break
    assert expected <= got, f"missing {sorted(expected - got)[:5]}"
    return got


def poll(fn: Callable[[], object], want: object, timeout: float = 30) -> object:
    """fn() once it equals want (offsets commit and the index grows a moment
    after the fact); its last value or error at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = fn()
        except InvalidArgumentError:
            if time.monotonic() > deadline:
                raise
        else:
            if value == want or time.monotonic() > deadline:
                return value
        time.sleep(0.3)


def reset(admin: Admin, group: str, topic: str, to: object) -> dict[tuple[str, int], int]:
    """reset_offset once the broker has noticed that the group's last consumer closed."""
    deadline = time.monotonic() + 30
    while True:
        try:
            return admin.reset_offset(group, topic, to)  # type: ignore[arg-type]
        except rmq_native.ClientStateError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def test_list_topics_and_stats(ns: str, ops: tuple[Admin, Producer, Callable[[], str]]) -> None:
    admin, producer, make = ops
    topic = make()
    topics = admin.list_topics()
    assert topic in topics
    assert "TBW102" not in topics and not any(t.startswith(("%RETRY%", "rmq_sys_")) for t in topics)
    assert "TBW102" in admin.list_topics(include_system=True)
    before = time.time()
    send(producer, topic, "s", 12)
    # the broker indexes a stored message a moment after the send returns
    poll(lambda: sum(s.max_offset - s.min_offset for s in admin.topic_stats(topic)), 12)
    stats = admin.topic_stats(topic)
    assert all(isinstance(s, QueueStats) for s in stats)
    n_brokers = 2 if ns.endswith(":25876") else 1
    assert sorted({s.broker_name for s in stats}) == (["broker-a", "broker-b"] if n_brokers == 2 else ["broker-a"])
    assert len(stats) == 4 * n_brokers
    assert sum(s.max_offset - s.min_offset for s in stats) == 12
    used = [s for s in stats if s.max_offset > 0]
    assert used and all(s.last_update is not None and s.last_update.timestamp() >= before - 5 for s in used)
    assert all(s.last_update is None for s in stats if s.max_offset == 0)


def test_lag_goes_to_zero_as_a_consumer_catches_up(ns: str, ops: tuple[Admin, Producer, Callable[[], str]]) -> None:
    admin, producer, make = ops
    topic, group = make(), unique("G")
    first = send(producer, topic, "a", 10)
    consume_all(ns, group, topic, set(first))
    assert poll(lambda: admin.total_lag(group, topic), 0) == 0
    second = send(producer, topic, "b", 15)
    lags = admin.consumer_lag(group, topic)
    assert all(isinstance(q, QueueLag) and q.topic == topic for q in lags)
    assert len(lags) == 4 * (2 if ns.endswith(":25876") else 1)  # every queue, also the never-used ones
    assert all(q.lag == q.broker_offset - q.consumer_offset for q in lags)
    assert admin.total_lag(group, topic) == 15
    assert admin.total_lag(group) == 15  # every topic of the group
    with Consumer(ns, group, topic) as c:  # catches up; the lag falls to 0
        got: set[str] = set()
        deadline = time.monotonic() + 90
        while not set(second) <= got and time.monotonic() < deadline:
            got.update(m.text for m in c.messages(timeout=2))
        assert set(second) <= got
        assert poll(lambda: admin.total_lag(group, topic), 0) == 0
        with pytest.raises(rmq_native.ClientStateError, match="online"):
            admin.reset_offset(group, topic, "first")  # refused while a consumer runs
        assert admin.total_lag(group, topic) == 0


def test_reset_offset_to_a_time_between_two_batches(ns: str, ops: tuple[Admin, Producer, Callable[[], str]]) -> None:
    admin, producer, make = ops
    topic, group = make(), unique("G")
    early = send(producer, topic, "early", 10)
    time.sleep(1.5)
    middle = dt.datetime.now()
    time.sleep(1.5)
    late = send(producer, topic, "late", 7)
    consume_all(ns, group, topic, set(early + late))
    assert poll(lambda: admin.total_lag(group, topic), 0) == 0

    offsets = reset(admin, group, topic, middle)
    stats = {(s.broker_name, s.queue_id): s for s in admin.topic_stats(topic)}
    assert set(offsets) == set(stats)
    assert sum(stats[q].max_offset - o for q, o in offsets.items()) == 7
    assert admin.total_lag(group, topic) == 7
    got: list[str] = []
    with Consumer(ns, group, topic) as c:
        deadline = time.monotonic() + 90
        while len(set(got)) < 7 and time.monotonic() < deadline:
            got += [m.text for m in c.messages(timeout=2)]
    assert set(got) == set(late)  # exactly the second batch again, none of the first

    assert sum(stats[q].max_offset - o for q, o in reset(admin, group, topic, "first").items()) == 17
    assert admin.total_lag(group, topic) == 17
    reset(admin, group, topic, "last")
    assert admin.total_lag(group, topic) == 0


def test_find_messages_by_key_and_id(ns: str, ops: tuple[Admin, Producer, Callable[[], str]]) -> None:
    admin, producer, make = ops
    topic = make()
    results = [producer.send(topic, f"order-{i}", keys=[f"order-{i}", "batch-x"], tags="t") for i in range(6)]
    found = poll(lambda: [m.text for m in admin.find_messages(topic, key="order-3")], ["order-3"])
    assert found == ["order-3"]
    everything = poll(lambda: len(admin.find_messages(topic, key="batch-x")), 6)
    assert everything == 6
    assert len(admin.find_messages(topic, key="batch-x", limit=2)) == 2
    msgs = admin.find_messages(topic, key="batch-x")
    assert [m.store_timestamp for m in msgs] == sorted(m.store_timestamp for m in msgs)
    by_id = admin.find_messages(topic, msg_id=results[4].msg_id)
    assert [m.text for m in by_id] == ["order-4"]
    m = by_id[0]
    assert (m.broker_name, m.queue_id, m.queue_offset) == (results[4].broker_name, results[4].queue_id,
                                                          results[4].queue_offset)
    assert m.keys == ["order-4", "batch-x"] and m.tags == "t" and m.topic == topic
    assert [x.text for x in admin.find_messages(topic, msg_id=results[2].offset_msg_id)] == ["order-2"]
    assert admin.find_messages(topic, key="no-such-key") == []
    future = dt.datetime.now() + dt.timedelta(hours=1)
    assert admin.find_messages(topic, key="batch-x", begin=future) == []
    with pytest.raises(InvalidArgumentError):
        admin.find_messages(topic)
    with pytest.raises(InvalidArgumentError):
        admin.find_messages(topic, key="a", msg_id="b")


def test_missing_topic_or_group_is_an_error_not_empty(ns: str, ops: tuple[Admin, Producer, Callable[[], str]]) -> None:
    admin, producer, make = ops
    topic = make()
    missing = unique("NOPE")
    with pytest.raises(NoRouteError):
        admin.topic_stats(missing)
    with pytest.raises(NoRouteError):
        admin.find_messages(missing, key="k")
    with pytest.raises(NoRouteError):
        admin.consumer_lag(unique("G"), missing)
    with pytest.raises(NoRouteError):
        admin.reset_offset(unique("G"), missing, "first")
    with pytest.raises(InvalidArgumentError, match="no offsets"):
        admin.consumer_lag(unique("G"))
    with pytest.raises(InvalidArgumentError, match="no offsets"):
        admin.total_lag(unique("G"), topic)
    with pytest.raises(InvalidArgumentError, match="does not exist"):
        admin.reset_offset(unique("NEVERG"), topic, "first")
    with pytest.raises(InvalidArgumentError):
        admin.reset_offset(unique("G"), topic, "yesterday")  # type: ignore[arg-type]


def test_namespace(rocketmq_namesrv: str) -> None:
    space = unique("NS")
    topic = unique("T")
    with Admin(rocketmq_namesrv, namespace=space) as admin, \
            Producer(rocketmq_namesrv, unique("P"), namespace=space) as producer:
        admin.create_topic(topic, queues=2)
        try:
            send(producer, topic, "n", 5, keys="nk")
            assert admin.list_topics() == [topic]  # only this namespace's topics, without the prefix
            with Admin(rocketmq_namesrv) as plain:
                assert f"{space}%{topic}" in plain.list_topics()
            assert poll(lambda: sum(s.max_offset for s in admin.topic_stats(topic)), 5) == 5
            found = poll(lambda: len(admin.find_messages(topic, key="nk")), 5)
            assert found == 5
            assert {m.topic for m in admin.find_messages(topic, key="nk")} == {topic}
            group = unique("G")
            with Consumer(rocketmq_namesrv, group, topic, from_where="first", namespace=space) as c:
                got = {m.text for m in c.messages(timeout=10)}
            assert got == {f"n-{i}" for i in range(5)}
            assert poll(lambda: admin.total_lag(group, topic), 0) == 0
            assert {q.topic for q in admin.consumer_lag(group)} == {topic}
            reset(admin, group, topic, "first")
            assert admin.total_lag(group, topic) == 5
        finally:
            admin.delete_topic(topic)


ACL_HOME = os.path.join(tempfile.gettempdir(), "rmq_native_ops_acl")


@pytest.fixture(scope="module")
def acl_namesrv() -> Iterator[str]:
    """A private broker with authentication (never the shared one); reused when running."""
    from rmq_native import devbroker

    running = devbroker.status(ACL_HOME) is not None
    addr = devbroker.start(acl=True, home=ACL_HOME, namesrv_port=25886, broker_port=26941, quiet=True)
    yield addr
    if not running:
        devbroker.stop(home=ACL_HOME, quiet=True)


def test_operations_with_acl_credentials(acl_namesrv: str) -> None:
    from rmq_native import AuthenticationError, Reader, devbroker

    ns = acl_namesrv
    creds = {"access_key": devbroker.ACL_ACCESS_KEY, "secret_key": devbroker.ACL_SECRET_KEY}
    topic, group = unique("ACL"), unique("G")
    with Admin(ns, **creds) as admin, Producer(ns, unique("P"), **creds) as producer:
        admin.create_topic(topic, queues=2)
        try:
            sent = [producer.send(topic, f"s{i}", keys="acl-key") for i in range(4)]
            assert topic in admin.list_topics()
            assert poll(lambda: sum(s.max_offset for s in admin.topic_stats(topic)), 4) == 4
            assert poll(lambda: len(admin.find_messages(topic, key="acl-key")), 4) == 4
            assert [m.text for m in admin.find_messages(topic, msg_id=sent[1].msg_id)] == ["s1"]  # signed flag
            with Reader(ns, topic, end="last", **creds) as reader:
                assert sorted(m.text for m in reader.messages()) == [f"s{i}" for i in range(4)]
            with Consumer(ns, group, topic, from_where="first", **creds) as c:
                assert len({m.text for m in c.messages(timeout=10)}) == 4
            assert poll(lambda: admin.total_lag(group, topic), 0) == 0
            reset(admin, group, topic, "first")
            assert admin.total_lag(group, topic) == 4
            with Admin(ns, access_key=creds["access_key"], secret_key="wrong-secret") as bad:
                with pytest.raises(AuthenticationError):
                    bad.topic_stats(topic)
                with pytest.raises(AuthenticationError):
                    bad.find_messages(topic, key="acl-key")
            with pytest.raises(AuthenticationError):
                Reader(ns, topic)  # no credentials
        finally:
            admin.delete_topic(topic)
