"""The consumer's delivery paths (issue 11): a nack is settled only by a
send-back the broker confirmed, orderly nacks are paced, broadcasting nacks
never pin the offset, offset files survive an interrupted replace, and
persistent pull errors reach the application. Against real brokers: the
shared dev broker, and a private one (own home and ports) for the tests
that change a broker's permission or configuration."""

from __future__ import annotations

import logging
import random
import socket
import time
from pathlib import Path
from typing import Iterator

import pytest
from conftest import dev_broker_pid, pause_process, receive_and_ack, unique

import rmq_native
from rmq_native import Admin, Consumer, Producer, _ffi, devbroker

UPDATE_BROKER_CONFIG = 25
QUERY_CONSUMER_OFFSET = 14
GET_MAX_OFFSET = 30


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _pick_ports() -> tuple[int, int]:
    """A name server port and a broker port whose VIP (-2) and HA (+1) ports are free too."""
    rnd = random.Random()
    for _ in range(200):
        ns, broker = rnd.randrange(31000, 39000), rnd.randrange(41000, 49000)
        if all(_free(p) for p in (ns, broker, broker - 2, broker + 1)):
            return ns, broker
    raise RuntimeError("no free ports")


class PrivateBroker:
    def __init__(self, namesrv: str, broker: str) -> None:
        self.namesrv = namesrv
        self.broker = broker

    def config(self, **values: object) -> None:
        body = "".join(f"{k}={v}\n" for k, v in values.items()).encode()
        header, _ = devbroker.remoting_request(self.broker, UPDATE_BROKER_CONFIG, body=body)
        assert header["code"] == 0, header

    def committed_offset(self, group: str, topic: str, queue_id: int) -> int:
        header, _ = devbroker.remoting_request(
            self.broker, QUERY_CONSUMER_OFFSET, {"consumerGroup": group, "topic": topic, "queueId": str(queue_id)})
        if header["code"] != 0:  # 22: no offset committed yet
            return -1
        return int(header["extFields"]["offset"])

    def max_offset(self, topic: str, queue_id: int) -> int:
        header, _ = devbroker.remoting_request(self.broker, GET_MAX_OFFSET, {"topic": topic, "queueId": str(queue_id)})
        return int(header["extFields"]["offset"]) if header["code"] == 0 else 0


@pytest.fixture(scope="module")
def private_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateBroker]:
    home = tmp_path_factory.mktemp("delivery_broker")
    ns_port, broker_port = _pick_ports()
    ns = devbroker.start(namesrv_port=ns_port, broker_port=broker_port, home=home, quiet=True, timeout=300)
    try:
        yield PrivateBroker(ns, f"127.0.0.1:{broker_port}")
    finally:
        devbroker.stop(home=home, quiet=True)


# -- item 1: a refused send-back never loses the message -----------------------------


def test_a_refused_send_back_keeps_the_message(private_broker: PrivateBroker) -> None:
    pb = private_broker
    topic, group = unique("T"), unique("G")
    with Admin(pb.namesrv) as admin:
        admin.create_topic(topic, queues=1)
    with Producer(pb.namesrv) as p:
        p.send(topic, b"keep me")
    with Consumer(pb.namesrv, group, topic, from_where="first") as c:
        m = c.receive(timeout=60)
        assert m is not None and m.body == b"keep me" and m.reconsume_times == 0
        offset = m.queue_offset
        pb.config(brokerPermission=4)  # read-only: the broker refuses the send-back (code 16)
        try:
            m.nack(delay_level=1)
            again = c.receive(timeout=30)
            # "consume later": back from the library itself, one more reconsume
            assert again is not None, "the nacked message was lost"
            assert again.body == b"keep me" and again.reconsume_times == 1
            assert again.queue_offset == offset and again.topic == topic
            time.sleep(7)  # the SDK commits offsets every 5 s
            assert pb.committed_offset(group, topic, 0) <= offset, "offset committed past an unsettled message"
            assert pb.max_offset(f"%RETRY%{group}", 0) == 0
        finally:
            pb.config(brokerPermission=6)
        again.nack(delay_level=1)  # writable again: sent back to %RETRY%group
        retried = c.receive(timeout=60)
        assert retried is not None and retried.body == b"keep me"
        assert retried.reconsume_times == 1  # the broker's count: one send-back
        retried.ack()
        assert pb.max_offset(f"%RETRY%{group}", 0) >= 1
        deadline = time.monotonic() + 20
        while pb.committed_offset(group, topic, 0) <= offset and time.monotonic() < deadline:
            time.sleep(0.5)
        assert pb.committed_offset(group, topic, 0) > offset
        assert c.receive(timeout=3) is None


def test_a_message_pinned_by_a_refused_send_back_survives_a_restart(private_broker: PrivateBroker) -> None:
    pb = private_broker
    topic, group = unique("T"), unique("G")
    with Admin(pb.namesrv) as admin:
        admin.create_topic(topic, queues=1)
    with Producer(pb.namesrv) as p:
        p.send(topic, b"pinned")
        p.send(topic, b"after")
    with Consumer(pb.namesrv, group, topic, from_where="first") as c:
        first = {m.body: m for m in (c.receive(timeout=60) for _ in range(2)) if m is not None}
        assert sorted(first) == [b"after", b"pinned"]
        first[b"after"].ack()
        pb.config(brokerPermission=4)
        try:
            first[b"pinned"].nack(delay_level=5)  # refused; it would come back locally in 30 s
            time.sleep(7)  # the SDK commits offsets every 5 s
        finally:
            pb.config(brokerPermission=6)
    with Consumer(pb.namesrv, group, topic, from_where="first") as c:
        # the committed offset stayed before "pinned": both come again (any order)
        got = [c.receive(timeout=60) for _ in range(2)]
        assert sorted(m.body for m in got if m is not None) == [b"after", b"pinned"], \
            "the nacked message was lost across the restart"
        for m in got:
            assert m is not None
            m.ack()


# -- item 16: persistent pull errors reach the application ------------------------------


def test_an_invalid_sql92_expression_is_refused_at_creation(rocketmq_namesrv: str, topic: str) -> None:
    with pytest.raises(rmq_native.InvalidArgumentError, match="sql92"):
        Consumer(rocketmq_namesrv, unique("G"), topic, "a >", selector="sql92")
    with Consumer(rocketmq_namesrv, unique("G"), topic, "a > 1", selector="sql92"):
        pass


def test_a_write_only_broker_surfaces_as_an_error(private_broker: PrivateBroker) -> None:
    pb = private_broker
    topic = unique("T")
    with Admin(pb.namesrv) as admin:
        admin.create_topic(topic, queues=1)
    with Producer(pb.namesrv) as p:
        p.send(topic, b"readable later")
    pb.config(brokerPermission=2)  # write-only: every pull is refused
    try:
        with Consumer(pb.namesrv, unique("G"), topic, from_where="first") as c:
            t0 = time.monotonic()
            with pytest.raises(rmq_native.BrokerError, match="read permission"):
                while time.monotonic() - t0 < 60:
                    assert c.receive(timeout=1) is None
            assert time.monotonic() - t0 < 40
            pb.config(brokerPermission=6)
            deadline = time.monotonic() + 60
            got = None
            while got is None and time.monotonic() < deadline:
                try:
                    got = c.receive(timeout=2)
                except rmq_native.BrokerError:
                    time.sleep(1)  # until the next check clears it
            assert got is not None and got.body == b"readable later"
            got.ack()
    finally:
        pb.config(brokerPermission=6)


def test_a_topic_deleted_while_consuming_surfaces_when_topics_are_not_auto_created(
        private_broker: PrivateBroker) -> None:
    """(A topic missing at creation already fails there with NoRouteError.)"""
    pb = private_broker
    topic = unique("T")
    with Admin(pb.namesrv) as admin:
        admin.create_topic(topic, queues=1)
        pb.config(autoCreateTopicEnable="false")
        try:
            with Consumer(pb.namesrv, unique("G"), topic) as c:
                assert c.receive(timeout=3) is None
                admin.delete_topic(topic)
                t0 = time.monotonic()
                with pytest.raises(rmq_native.NoRouteError, match="create it first"):
                    while time.monotonic() - t0 < 60:
                        assert c.receive(timeout=1) is None
                assert time.monotonic() - t0 < 40
        finally:
            pb.config(autoCreateTopicEnable="true")


# -- item 5: orderly nacks are paced ----------------------------------------------------


def test_orderly_nack_is_paced_and_honours_the_delay_level(rocketmq_namesrv: str, producer: Producer,
                                                            topic: str) -> None:
    producer.send(topic, b"slow down", sharding_key="k")
    times, recons = [], []
    with Consumer(rocketmq_namesrv, unique("G"), topic, from_where="first", orderly=True) as c:
        for i in range(5):
            m = c.receive(timeout=60)
            assert m is not None and m.body == b"slow down"
            times.append(time.monotonic())
            recons.append(m.reconsume_times)
            if i < 3:
                m.nack()
            elif i == 3:
                m.nack(delay_level=2)  # 5 s
            else:
                m.ack()
        assert c.receive(timeout=3) is None
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert recons == [0, 1, 2, 3, 4]
    assert all(0.9 <= g < 10 for g in gaps[:3]), gaps
    assert 4.8 <= gaps[3] < 20, gaps


def test_orderly_dead_letters_after_max_reconsume_times(rocketmq_namesrv: str, producer: Producer,
                                                        topic: str) -> None:
    group = unique("G")
    producer.send(topic, b"poison", sharding_key="k")
    with Consumer(rocketmq_namesrv, group, topic, from_where="first", orderly=True, max_reconsume_times=1) as c:
        for expected in (0, 1):
            m = c.receive(timeout=60)
            assert m is not None and m.body == b"poison" and m.reconsume_times == expected
            m.nack()
        assert c.receive(timeout=4) is None
    with Consumer(rocketmq_namesrv, unique("G"), f"%DLQ%{group}", from_where="first") as dlq:
        dead = dlq.receive(timeout=60)
        assert dead is not None and dead.body == b"poison"
        dead.ack()


# -- item 6: broadcasting nacks ----------------------------------------------------------


def test_broadcasting_nack_redelivers_locally_then_drops_without_pinning(
        rocketmq_namesrv: str, producer: Producer, topic: str, caplog: pytest.LogCaptureFixture) -> None:
    group, instance = unique("G"), unique("bc")
    producer.send(topic, b"bad")
    recons = []
    with caplog.at_level(logging.WARNING, logger="rmq_native"):
        with Consumer(rocketmq_namesrv, group, topic, model="broadcasting", from_where="first",
                      instance_name=instance, max_reconsume_times=2) as c:
            for _ in range(3):
                m = c.receive(timeout=60)
                assert m is not None and m.body == b"bad"
                recons.append(m.reconsume_times)
                m.nack(delay_level=1)
            for i in range(5):
                producer.send(topic, f"good {i}")
            got = [c.receive(timeout=60) for _ in range(5)]
            assert sorted(g.body for g in got if g is not None) == [f"good {i}".encode() for i in range(5)]
            for g in got:
                assert g is not None
                g.ack()
            assert c.receive(timeout=2) is None
            deadline = time.monotonic() + 10
            while "drops message" not in caplog.text and time.monotonic() < deadline:
                time.sleep(0.2)
                c.receive(timeout=0.1)
    assert recons == [0, 1, 2]
    assert "drops message" in caplog.text
    producer.send(topic, b"after restart")
    with Consumer(rocketmq_namesrv, group, topic, model="broadcasting", from_where="first",
                  instance_name=instance) as c:
        m = c.receive(timeout=60)
        assert m is not None and m.body == b"after restart", "a restart redelivered what was settled"
        m.ack()


# -- item 14: broadcasting offset files --------------------------------------------------


def test_broadcasting_refuses_a_group_that_is_no_file_name(rocketmq_namesrv: str, topic: str) -> None:
    with pytest.raises(rmq_native.InvalidArgumentError, match="file name"):
        Consumer(rocketmq_namesrv, unique("G") + "|x", topic, model="broadcasting")
    with Consumer(rocketmq_namesrv, unique("G") + "|x", topic):  # clustering keeps no file
        pass


def test_broadcasting_offsets_survive_an_interrupted_replace(rocketmq_namesrv: str, producer: Producer,
                                                            topic: str) -> None:
    group, instance = unique("G"), unique("bc")
    producer.send(topic, b"old")
    with Consumer(rocketmq_namesrv, group, topic, model="broadcasting", from_where="first",
                  instance_name=instance) as c:
        m = c.receive(timeout=60)
        assert m is not None and m.body == b"old"
        m.ack()
    files = list((_ffi.state_dir() / "offsets" / group).glob(f"*@{instance}/offset.json"))
    assert len(files) == 1, files
    path: Path = files[0]
    # the SDK replaces the file by removing it, then renaming offset.json.tmp:
    # a crash in between leaves only the .tmp (and it never writes a .bak)
    path.rename(str(path) + ".tmp")
    Path(str(path) + ".bak").unlink(missing_ok=True)
    producer.send(topic, b"new")
    with Consumer(rocketmq_namesrv, group, topic, model="broadcasting", from_where="first",
                  instance_name=instance) as c:
        bodies = []
        m = c.receive(timeout=60)
        while m is not None:
            bodies.append(m.body)
            m.ack()
            m = c.receive(timeout=3)
        assert bodies == [b"new"], "the offsets were lost: everything came again"
    assert path.exists()
    # the library keeps a synced .bak of the last intact file
    assert Path(str(path) + ".bak").read_bytes() == path.read_bytes()


def test_acknowledged_messages_are_committed_at_close(rocketmq_namesrv: str, producer: Producer,
                                                      topic: str, group: str) -> None:
    """Messages acknowledged right before close() are committed by it: a
    consumer of the same group started afterwards gets none of them (a close
    that unsubscribed first let a rebalance drop those commits)."""
    for i in range(10):
        producer.send(topic, f"m{i}")
    assert receive_and_ack(rocketmq_namesrv, group, topic, 10) == 10
    with Consumer(rocketmq_namesrv, group, topic, from_where="first") as c:
        again = [m.text for m in c.messages(timeout=8)]
    assert again == [], f"acknowledged messages came back: {again}"


@pytest.mark.parametrize("where", ["single", "cluster"])
def test_close_returns_once_the_brokers_confirmed_the_commits(request: pytest.FixtureRequest, where: str) -> None:
    """close() sends the offsets of the queues it delivered from itself and
    waits for each broker's answer (the SDK's own commit at shutdown is
    one-way, its connections closed right after): the moment close()
    returns, every broker reports the acknowledged messages committed —
    read once, no waiting. Three consumers of one group in turn, on one
    broker and on both brokers of a cluster."""
    ns = str(request.getfixturevalue("rocketmq_namesrv" if where == "single" else "cluster2_namesrv"))
    topic, group = unique("COMMIT"), unique("G")
    with Admin(ns) as admin, Producer(ns, unique("P")) as producer:
        admin.create_topic(topic, queues=4)
        try:
            for rnd in range(3):
                bodies = {f"r{rnd}-{i}" for i in range(16)}
                for b in sorted(bodies):
                    producer.send(topic, b)
                got: set[str] = set()
                deadline = time.monotonic() + 60
                with Consumer(ns, group, topic, from_where="first") as c:
                    while not bodies <= got and time.monotonic() < deadline:
                        msg = c.receive(timeout=2)
                        if msg is not None:
                            got.add(msg.text)
                            msg.ack()
                assert got == bodies, f"round {rnd}: {sorted(bodies - got)} missing, {sorted(got - bodies)} again"
                lags = [(q.broker_name, q.queue_id, q.lag) for q in admin.consumer_lag(group, topic) if q.lag]
                assert lags == [], f"round {rnd}: not committed when close() returned: {lags}"
        finally:
            admin.delete_topic(topic)


def test_close_with_a_stalled_broker_ends_and_says_so(rocketmq_namesrv: str, producer: Producer, topic: str,
                                                     group: str, caplog: pytest.LogCaptureFixture) -> None:
    """The broker stalls (stopped, sockets open) right before close(): close
    gives up on the confirmed commit after its 3 s and logs it, instead of
    hanging; once the broker continues, the acknowledged messages are not
    delivered again (the SDK's one-way commit, queued in the socket, lands)."""
    broker_pid = dev_broker_pid(rocketmq_namesrv)
    for i in range(8):
        producer.send(topic, f"s{i}")
    with caplog.at_level(logging.WARNING, logger="rmq_native"):
        c = Consumer(rocketmq_namesrv, group, topic, from_where="first")
        try:
            got: list[str] = []
            deadline = time.monotonic() + 60
            while len(got) < 8 and time.monotonic() < deadline:
                msg = c.receive(timeout=2)
                if msg is not None:
                    got.append(msg.text)
                    msg.ack()
            assert sorted(got) == [f"s{i}" for i in range(8)]
            pause_process(broker_pid, True)
            try:
                t0 = time.monotonic()
                c.close()
                took = time.monotonic() - t0
            finally:
                pause_process(broker_pid, False)
        finally:
            c.close()
        assert 2.5 < took < 8, f"close() took {took:.1f} s with the broker stalled"
        deadline = time.monotonic() + 10
        while "could not commit the offsets" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.1)
    assert "could not commit the offsets" in caplog.text
    with Consumer(rocketmq_namesrv, group, topic, from_where="first") as again:
        back = [m.text for m in again.messages(timeout=8)]
    assert back == [], f"acknowledged messages came back: {back}"
