"""Sending and receiving against the real broker."""

from __future__ import annotations

import os
import time

import pytest
from conftest import unique

import rmq_native
from rmq_native import Consumer, Producer


def drain(consumer: Consumer, want: int, timeout: float = 60) -> list[rmq_native.Message]:
    got: list[rmq_native.Message] = []
    deadline = time.monotonic() + timeout
    for msg in consumer.messages(timeout=timeout):
        got.append(msg)
        if len(got) >= want or time.monotonic() > deadline:
            msg.ack()  # handled: leaving the loop would give it back
            break
    return got


def test_thousand_messages_arrive_once_with_tags_keys_properties(
    rocketmq_namesrv: str, producer: Producer, topic: str, group: str
) -> None:
    n = 1000
    sent = {}
    for i in range(n):
        body = f"message-{i}-{os.urandom(4).hex()}".encode()
        r = producer.send(topic, body, tags=f"tag{i % 3}", keys=[f"k{i}", "common"],
                          properties={"index": str(i), "ünï": "çødé ✓"})
        assert r.status == rmq_native.SendStatus.SEND_OK and r.msg_id
        sent[body] = i
    with Consumer(rocketmq_namesrv, group, topic, from_where="first") as c:
        got = drain(c, n)
        # nothing more arrives: each message exactly once
        extra = list(c.messages(timeout=3))
    bodies = [m.body for m in got + extra]
    assert len(bodies) == n and set(bodies) == set(sent)
    for m in got:
        i = sent[m.body]
        assert m.topic == topic
        assert m.tags == f"tag{i % 3}"
        assert m.keys == [f"k{i}", "common"]
        assert m.properties == {"index": str(i), "ünï": "çødé ✓"}
        assert m.reconsume_times == 0 and m.msg_id and m.store_timestamp >= m.born_timestamp > 0


def test_tag_expression_selects_only_matching_tags(
    rocketmq_namesrv: str, producer: Producer, topic: str, group: str
) -> None:
    for i in range(30):
        producer.send(topic, f"m{i}", tags="abc"[i % 3])
    with Consumer(rocketmq_namesrv, group, topic, "a || b", from_where="first") as c:
        got = drain(c, 20)
        got += list(c.messages(timeout=3))
    assert sorted(m.tags or "" for m in got) == ["a"] * 10 + ["b"] * 10


def test_binary_and_4mib_bodies_round_trip(
    rocketmq_namesrv: str, producer: Producer, topic: str, group: str
) -> None:
    binary = b"\x00\x01\x02\xff" * 64 + b"\x00"
    big = os.urandom(4 * 1024 * 1024)
    producer.send(topic, binary, tags="bin")
    producer.send(topic, big, tags="big", timeout=30)
    with Consumer(rocketmq_namesrv, group, topic, from_where="first") as c:
        got = {m.tags: m.body for m in drain(c, 2)}
    assert got["bin"] == binary
    assert got["big"] == big


def test_str_body_is_utf8(rocketmq_namesrv: str, producer: Producer, topic: str, group: str) -> None:
    producer.send(topic, "héllo wörld ✓")
    with Consumer(rocketmq_namesrv, group, topic, from_where="first") as c:
        (m,) = drain(c, 1)
    assert m.body == "héllo wörld ✓".encode() and m.text == "héllo wörld ✓"


def test_empty_and_oversized_bodies_fail_before_sending(producer: Producer, topic: str) -> None:
    with pytest.raises(rmq_native.InvalidArgumentError, match="empty"):
        producer.send(topic, b"")
    with pytest.raises(rmq_native.InvalidArgumentError, match="exceeds the maximum message size"):
        producer.send(topic, b"x" * (4 * 1024 * 1024 + 1))
    # the C ABI enforces it too, for callers other than Python
    m = producer._message(topic, b"x")
    big = b"x" * (4 * 1024 * 1024 + 1)
    buf = rmq_native._ffi.ffi.from_buffer(big)
    m.body, m.body_len = buf, len(big)
    out = rmq_native._ffi.ffi.new("rmq_send_result *")
    with pytest.raises(rmq_native.InvalidArgumentError, match="exceeds"):
        rmq_native._ffi.check(rmq_native._ffi.lib().rmq_producer_send(producer._h(), m, 1000, out))
    del buf  # alive until here: m points into it


def test_exception_in_loop_body_redelivers(rocketmq_namesrv: str, producer: Producer, topic: str, group: str) -> None:
    producer.send(topic, b"fragile")
    with pytest.raises(RuntimeError):
        with Consumer(rocketmq_namesrv, group, topic, from_where="first") as c:
            for m in c.messages(timeout=30):
                assert m.body == b"fragile"
                raise RuntimeError("processing failed")
    # never acknowledged: the broker delivers it again
    with Consumer(rocketmq_namesrv, group, topic) as c:
        again = drain(c, 1, timeout=60)
    assert [m.body for m in again] == [b"fragile"]


def test_unacknowledged_at_close_is_redelivered(
    rocketmq_namesrv: str, producer: Producer, topic: str, group: str
) -> None:
    producer.send(topic, b"unacked")
    c = Consumer(rocketmq_namesrv, group, topic, from_where="first")
    m = c.receive(timeout=30)
    assert m is not None and m.body == b"unacked"
    c.close()  # never acknowledged
    with pytest.raises(rmq_native.ClosedError):
        m.ack()
    with Consumer(rocketmq_namesrv, group, topic) as c2:
        again = drain(c2, 1, timeout=60)
    assert [x.body for x in again] == [b"unacked"]


def test_nack_redelivers_with_higher_reconsume_times(
    rocketmq_namesrv: str, producer: Producer, topic: str, group: str
) -> None:
    producer.send(topic, b"again")
    with Consumer(rocketmq_namesrv, group, topic, from_where="first") as c:
        m = c.receive(timeout=30)
        assert m is not None
        m.nack(delay_level=1)
        m2 = c.receive(timeout=30)
        assert m2 is not None and m2.body == b"again" and m2.reconsume_times == 1
        m2.ack()


def test_compressible_body_round_trips(rocketmq_namesrv: str, producer: Producer, topic: str, group: str) -> None:
    body = b"abcdefgh" * 200_000  # 1.6 MB, compressed on the wire
    producer.send(topic, body)
    with Consumer(rocketmq_namesrv, group, topic, from_where="first") as c:
        (m,) = drain(c, 1)
    assert m.body == body


def test_namespace_isolates_topics_and_groups(rocketmq_namesrv: str, topic: str, group: str) -> None:
    ns = unique("ns")
    with rmq_native.Admin(rocketmq_namesrv, namespace=ns) as a:
        a.create_topic(topic)
    with Producer(rocketmq_namesrv, namespace=ns) as p:
        p.send(topic, b"namespaced")
    with Consumer(rocketmq_namesrv, group, topic, namespace=ns, from_where="first") as c:
        got = drain(c, 1, timeout=30)
    assert [m.body for m in got] == [b"namespaced"] and got[0].topic == topic
    with Consumer(rocketmq_namesrv, unique("G"), topic, from_where="first") as plain:
        assert list(plain.messages(timeout=3)) == []  # the plain topic never saw it
