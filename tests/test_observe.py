"""Issue 16: client statistics, request/reply, RocketMQ message trace and
OpenTelemetry, against the real dev broker."""

from __future__ import annotations

import concurrent.futures
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

import pytest
from conftest import unique

import rmq_native
from rmq_native import Consumer, Producer, TransactionState

ROOT = Path(__file__).resolve().parent.parent


def _drain(c: Consumer, n: int, deadline: float = 60.0, on_msg: Callable[[Any], None] | None = None) -> list[Any]:
    got: list[Any] = []
    end = time.monotonic() + deadline
    while len(got) < n and time.monotonic() < end:
        m = c.receive(timeout=1.0)
        if m is None:
            continue
        got.append(m)
        if on_msg is not None:
            on_msg(m)
    return got


# -- stats ---------------------------------------------------------------


def test_producer_stats_count_known_traffic(rocketmq_namesrv: str, topic: str) -> None:
    with Producer(rocketmq_namesrv, unique("P")) as p:
        assert p.stats() == {"sent": 0, "send_failed": 0, "in_flight": 0, "queued": 0, "p50_ms": None,
                             "p99_ms": None, "latency_window": 0}
        for i in range(5):
            p.send(topic, f"s{i}")
        futs = [p.send_async(topic, f"a{i}") for i in range(7)]
        p.send_batch(topic, [b"b1", b"b2", b"b3"])
        p.send_oneway(topic, b"o")
        with pytest.raises(rmq_native.InvalidArgumentError, match="reserved"):
            p.send(topic, b"x", properties={"UNIQ_KEY": "x"})  # refused by the library
        with pytest.raises(rmq_native.InvalidArgumentError):
            p.send(topic, b"")
        concurrent.futures.wait(futs, timeout=30)
        assert all(f.result() for f in futs)
        s = p.stats()
        assert s["sent"] == 5 + 7 + 3 + 1
        assert s["send_failed"] == 2
        assert s["in_flight"] == 0 and s["queued"] == 0
        assert s["latency_window"] == 5 + 7 + 1 + 1
        assert 0 < s["p50_ms"] <= s["p99_ms"] < 30_000


def test_producer_stats_in_flight_and_queued(rocketmq_namesrv: str, topic: str) -> None:
    with Producer(rocketmq_namesrv, unique("P")) as p:
        p.send(topic, b"warm")
        futs = [p.send_async(topic, b"x" * 100) for _ in range(200)]
        s = p.stats()
        left = sum(not f.done() for f in futs)
        assert s["queued"] == s["in_flight"] and s["queued"] >= left  # futures finish after the snapshot
        p.flush(30)
        s = p.stats()
        assert (s["sent"], s["in_flight"], s["queued"]) == (201, 0, 0)


def test_transaction_producer_stats(rocketmq_namesrv: str, topic: str) -> None:
    with rmq_native.TransactionProducer(rocketmq_namesrv, unique("TX"), lambda m: TransactionState.COMMIT) as p:
        p.send_in_transaction(topic, b"t", execute=lambda m: TransactionState.COMMIT)
        with pytest.raises(RuntimeError):
            p.send_in_transaction(topic, b"t", execute=lambda m: (_ for _ in ()).throw(RuntimeError("boom")))
        s = p.stats()
        assert (s["sent"], s["send_failed"], s["in_flight"]) == (1, 1, 0)


def test_consumer_stats_count_known_traffic(rocketmq_namesrv: str, topic: str, group: str) -> None:
    with Producer(rocketmq_namesrv, unique("P")) as p:
        for i in range(10):
            p.send(topic, f"m{i}")
    with Consumer(rocketmq_namesrv, group, topic, from_where="first", max_reconsume_times=1) as c:
        first = _drain(c, 10)
        assert len(first) == 10
        s = c.stats()
        assert (s["received"], s["in_flight"], s["acked"]) == (10, 10, 0)
        for m in first[:7]:
            m.ack()
        for m in first[7:]:
            m.nack(delay_level=1)  # redelivered after about 1 s
        s = c.stats()
        assert (s["acked"], s["nacked"], s["in_flight"], s["dlq"]) == (7, 3, 0, 0)
        again = _drain(c, 3)
        assert sorted(m.body for m in again) == sorted(m.body for m in first[7:])
        assert all(m.reconsume_times == 1 for m in again)
        for m in again[:2]:
            m.nack(delay_level=1)  # reconsume_times reached max_reconsume_times=1: dead letters
        again[2].ack()
        s = c.stats()
        assert s == {"received": 13, "acked": 8, "nacked": 5, "redelivered": 3, "in_flight": 0,
                     "buffered": s["buffered"], "dlq": 2}
        assert s["buffered"] == 0


def test_consumer_stats_auto_ack_in_loop(rocketmq_namesrv: str, topic: str, group: str) -> None:
    with Producer(rocketmq_namesrv, unique("P")) as p:
        for i in range(6):
            p.send(topic, f"m{i}")
    with Consumer(rocketmq_namesrv, group, topic, from_where="first") as c:
        n = 0
        last = None
        for msg in c.messages(timeout=10):
            n += 1
            if n == 6:
                last = msg
                break
        s = c.stats()
        # the loop acknowledged five; the sixth, held at the break, went back
        # to the buffer unsettled (counted again when handed out again)
        assert (s["received"], s["acked"], s["in_flight"], s["buffered"]) == (5, 5, 0, 1)
        again = c.receive(timeout=10)
        assert again is last
        again.ack()
        s = c.stats()
        assert (s["received"], s["acked"], s["in_flight"]) == (6, 6, 0)
    assert c.stats()["acked"] == 6


# -- request/reply --------------------------------------------------------


def _replier(ns: str, topic: str, stop: threading.Event, answer: Callable[[Any], bytes]) -> threading.Thread:
    def run() -> None:
        with Consumer(ns, unique("RG"), topic, from_where="first") as c:
            while not stop.is_set():
                for msg in c.messages(timeout=0.5):
                    msg.reply(answer(msg), properties={"echo": msg.properties.get("q", "")})
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_request_answered_by_reply(rocketmq_namesrv: str, topic: str) -> None:
    stop = threading.Event()
    t = _replier(rocketmq_namesrv, topic, stop, lambda m: b"re: " + m.body)
    try:
        with Producer(rocketmq_namesrv, unique("P")) as p:
            # the replier needs a moment to be assigned the queues
            end = time.monotonic() + 60
            while True:
                try:
                    reply = p.request(topic, b"ping", timeout=5, properties={"q": "1"})
                    break
                except rmq_native.TimeoutError:
                    assert time.monotonic() < end, "no reply within 60 s"
            assert reply.body == b"re: ping"
            assert reply.properties["echo"] == "1"
            futs = [p.request_async(topic, f"n{i}", timeout=10) for i in range(5)]
            assert sorted(f.result(timeout=30).body for f in futs) == [f"re: n{i}".encode() for i in range(5)]
            s = p.stats()
            assert s["in_flight"] == 0 and s["sent"] >= 6
        # a new producer's first request is answered at once: the library
        # registers it with the broker first (the SDK would leave the broker
        # unable to push the reply for up to 30 s)
        with Producer(rocketmq_namesrv, unique("P")) as fresh:
            assert fresh.request(topic, b"first", timeout=10).body == b"re: first"
    finally:
        stop.set()
        t.join(10)


def test_unanswered_request_times_out(rocketmq_namesrv: str, topic: str) -> None:
    with Producer(rocketmq_namesrv, unique("P")) as p:
        start = time.monotonic()
        with pytest.raises(rmq_native.TimeoutError):
            p.request(topic, b"anyone?", timeout=1.5)
        assert 1.0 < time.monotonic() - start < 20
        fut = p.request_async(topic, b"anyone?", timeout=1)
        with pytest.raises(rmq_native.TimeoutError):
            fut.result(timeout=20)


_GONE_REQUESTER = """
import sys
from rmq_native import Producer, TimeoutError
with Producer(sys.argv[1]) as p:
    try:
        p.request(sys.argv[2], b"old", timeout=1)
    except TimeoutError:
        pass
"""


def test_reply_to_a_gone_requester_raises(rocketmq_namesrv: str, topic: str, group: str) -> None:
    # a request whose requester exited (what a new group meets reading a
    # topic's history): the reply is refused with a clear error, and the
    # server goes on answering live requests
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    subprocess.run([sys.executable, "-c", _GONE_REQUESTER, rocketmq_namesrv, topic], env=env, check=True, timeout=60)
    with Consumer(rocketmq_namesrv, group, topic, from_where="first") as c:
        (m,) = _drain(c, 1)
        assert m.body == b"old"
        end = time.monotonic() + 30
        while True:  # the broker may take a moment to see the exited client's connection close
            try:
                m.reply(b"late")
            except rmq_native.BrokerError as e:
                assert "requester is gone" in str(e)
                break
            assert time.monotonic() < end, "a reply to an exited requester was accepted for 30 s"
            time.sleep(0.5)
        m.ack()
        with Producer(rocketmq_namesrv, unique("P")) as p:
            fut = p.request_async(topic, b"live", timeout=20)
            (live,) = _drain(c, 1)
            live.reply(b"re: live")
            assert fut.result(timeout=30).body == b"re: live"


def test_reply_rules(rocketmq_namesrv: str, topic: str, group: str) -> None:
    with Producer(rocketmq_namesrv, unique("P"), trace=True) as traced:
        with pytest.raises(rmq_native.ClientStateError):
            traced.request(topic, b"x")
        traced.send(topic, b"plain")
    with Consumer(rocketmq_namesrv, group, topic, from_where="first") as c:
        (m,) = _drain(c, 1)
        with pytest.raises(rmq_native.InvalidArgumentError, match="not a request"):
            m.reply(b"r")
        m.ack()
        with pytest.raises(rmq_native.ClientStateError):
            m.reply(b"r")


def test_aio_request_reply(rocketmq_namesrv: str, topic: str) -> None:
    import asyncio

    from rmq_native import aio

    stop = threading.Event()
    t = _replier(rocketmq_namesrv, topic, stop, lambda m: m.body.upper())

    async def main() -> bytes:
        async with aio.Producer(rocketmq_namesrv, unique("P")) as p:
            end = time.monotonic() + 60
            while True:
                try:
                    return (await p.request(topic, b"hello", timeout=5)).body
                except rmq_native.TimeoutError:
                    assert time.monotonic() < end

    try:
        assert asyncio.run(main()) == b"HELLO"
    finally:
        stop.set()
        t.join(10)


# -- RocketMQ message trace -------------------------------------------------


def _trace_records(ns: str, trace_topic: str, msg_id: str, kinds: set[str],
                   deadline: float = 60.0) -> dict[str, list[str]]:
    """Read the trace topic until records of every kind in ``kinds`` mention
    msg_id. A record is ``kind \\x01 time \\x01 region \\x01 group \\x01 ...``;
    records end with \\x02."""
    found: dict[str, list[str]] = {}
    end = time.monotonic() + deadline
    with Consumer(ns, unique("TRG"), trace_topic, from_where="first") as c:
        while not kinds <= set(found) and time.monotonic() < end:
            for m in c.messages(timeout=1.0):
                for rec in m.body.decode("utf-8", "replace").split("\x02"):
                    fields = rec.split("\x01")
                    if msg_id in fields:
                        found.setdefault(fields[0], fields)
                if kinds <= set(found):
                    break
    return found


def test_message_trace_records_send_and_consume(rocketmq_namesrv: str, make_topic: Callable[..., str],
                                                group: str) -> None:
    topic, trace_topic = make_topic(), make_topic(1)
    pgroup = unique("P")
    with Producer(rocketmq_namesrv, pgroup, trace=True, trace_topic=trace_topic) as p:
        r = p.send(topic, b"traced", tags="tg", keys="k1")
    with Consumer(rocketmq_namesrv, group, topic, from_where="first", trace=True, trace_topic=trace_topic) as c:
        (m,) = _drain(c, 1)
        assert m.msg_id == r.msg_id
        m.ack()
        time.sleep(1.0)  # the SDK sends trace records in batches, every few ms
    found = _trace_records(rocketmq_namesrv, trace_topic, r.msg_id, {"Pub", "SubBefore", "SubAfter"})
    assert set(found) >= {"Pub", "SubBefore", "SubAfter"}, found
    pub = found["Pub"]
    assert pub[3] == pgroup and pub[4] == topic and pub[6] == "tg" and pub[7] == "k1"
    assert found["SubBefore"][3] == group
    after = found["SubAfter"]  # SubAfter, request id, msg id, cost, success, keys, context code, time, group
    assert after[2] == r.msg_id and after[4] == "true" and after[8] == group
    with rmq_native.TransactionProducer(rocketmq_namesrv, unique("TX"), lambda m: TransactionState.COMMIT,
                                        trace=True, trace_topic=trace_topic) as tp:
        tr = tp.send_in_transaction(topic, b"traced tx", execute=lambda m: TransactionState.COMMIT)
    assert "Pub" in _trace_records(rocketmq_namesrv, trace_topic, tr.msg_id, {"Pub"})


def test_traced_async_sends_are_sent_and_recorded(rocketmq_namesrv: str, make_topic: Callable[..., str]) -> None:
    """The SDK's trace interceptor fails the SDK's own SendAsync ("ProducerCtx
    Not Exist"): a traced producer without retries lost every send_async to
    it, and with retries spent one on each. Traced producers send with the
    SDK's SendSync, which the interceptor records."""
    topic, trace_topic = make_topic(), make_topic(1)
    with Producer(rocketmq_namesrv, unique("P"), trace=True, trace_topic=trace_topic, retries=0) as p:
        results = [f.result(30) for f in [p.send_async(topic, f"a{i}") for i in range(20)]]
    assert {r.status for r in results} == {rmq_native.SendStatus.SEND_OK}
    assert len({r.msg_id for r in results}) == 20
    assert "Pub" in _trace_records(rocketmq_namesrv, trace_topic, results[-1].msg_id, {"Pub"})


def test_trace_options_are_checked(rocketmq_namesrv: str) -> None:
    with pytest.raises(TypeError):
        Producer(rocketmq_namesrv, trace="yes")  # type: ignore[arg-type]
    with pytest.raises(rmq_native.InvalidArgumentError):
        Consumer(rocketmq_namesrv, unique("G"), "t", trace=True, trace_topic="bad topic")
    with pytest.raises(rmq_native.InvalidArgumentError, match="trace_topic needs trace"):
        Producer(rocketmq_namesrv, trace_topic="T1")


def test_devbroker_trace_switch_writes_trace_topic_enable(tmp_path: Path) -> None:
    from rmq_native.devbroker.config import write_configs

    _, on = write_configs(tmp_path / "a", 1, 2, trace=True)
    _, off = write_configs(tmp_path / "b", 1, 2)
    assert "traceTopicEnable=true" in on.read_text().splitlines()
    assert "traceTopicEnable=false" in off.read_text().splitlines()


_SYS_TRACE_SCRIPT = """
import sys, time
sys.path.insert(0, {tests!r})
from rmq_native import Admin, Producer
from test_observe import _trace_records
ns, topic = sys.argv[1], sys.argv[2]
with Admin(ns) as a:
    a.create_topic(topic, queues=1)
with Producer(ns, "trace_switch_p", trace=True) as p:
    r = p.send(topic, b"traced")
found = _trace_records(ns, "RMQ_SYS_TRACE_TOPIC", r.msg_id, {{"Pub"}})
print("FOUND" if "Pub" in found else "MISSING", flush=True)
"""


@pytest.mark.slow
def test_devbroker_with_trace_switch_records_in_system_trace_topic(tmp_path: Path) -> None:
    """A dev broker started with trace=True has RMQ_SYS_TRACE_TOPIC (its own
    broker: the shared one must not be reconfigured). The client runs in a
    process of its own: message trace serves one name server per process."""
    from rmq_native import devbroker

    if any(devbroker.port_in_use(p) for p in (23876, 24909, 24911, 24912)):
        pytest.skip("test ports in use")
    from rmq_native.devbroker.cli import main as devbroker_cli

    home = tmp_path / "home"  # started as a user would: python -m rmq_native.devbroker start --trace
    assert devbroker_cli(["--home", str(home), "start", "--namesrv-port", "23876", "--broker-port", "24911",
                          "--trace", "-q"]) == 0
    try:
        info = devbroker.status(home=home)
        assert info is not None and info["trace"] is True
        ns = info["namesrv_addr"]
        env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
        r = subprocess.run([sys.executable, "-c", _SYS_TRACE_SCRIPT.format(tests=str(ROOT / "tests")), ns,
                            unique("T")], env=env, capture_output=True, text=True, timeout=180)
        assert "FOUND" in r.stdout, r.stdout + r.stderr[-3000:]
    finally:
        devbroker.stop(home=home, clean=True, quiet=True)


# -- OpenTelemetry --------------------------------------------------------

_OTEL_PRODUCER = """
import json, sys
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
import rmq_native, rmq_native.otel
exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
rmq_native.otel.instrument(tracer_provider=provider)
ns, topic = sys.argv[1], sys.argv[2]
with rmq_native.Producer(ns, "otel_p") as p:
    r = p.send(topic, b"traced", tags="tg", keys=["k1", "k2"], properties={"a": "b"})
(span,) = exporter.get_finished_spans()
print(json.dumps({"trace_id": span.context.trace_id, "span_id": span.context.span_id, "name": span.name,
                  "kind": span.kind.name, "attrs": dict(span.attributes), "msg_id": r.msg_id}))
"""


def test_otel_trace_continues_across_processes(rocketmq_namesrv: str, topic: str, group: str) -> None:
    pytest.importorskip("opentelemetry.sdk")
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    import rmq_native.otel

    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    r = subprocess.run([sys.executable, "-c", _OTEL_PRODUCER, rocketmq_namesrv, topic], env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    pub = json.loads(r.stdout.strip().splitlines()[-1])
    assert pub["kind"] == "PRODUCER" and pub["name"] == f"send {topic}"
    assert pub["attrs"]["messaging.system"] == "rocketmq"
    assert pub["attrs"]["messaging.destination.name"] == topic
    assert pub["attrs"]["messaging.message.id"] == pub["msg_id"]
    assert pub["attrs"]["messaging.rocketmq.message.tag"] == "tg"
    assert pub["attrs"]["messaging.rocketmq.message.keys"] == ["k1", "k2"]

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    rmq_native.otel.instrument(tracer_provider=provider, meter_provider=MeterProvider(metric_readers=[reader]))
    try:
        with Consumer(rocketmq_namesrv, group, topic, from_where="first") as c:
            (m,) = _drain(c, 1)
            assert m.properties["a"] == "b" and "traceparent" in m.properties
            assert not exporter.get_finished_spans()  # the span lasts until the message is settled
            m.ack()
        with Producer(rocketmq_namesrv, unique("P")) as p:
            p.send(topic, b"local")
            with pytest.raises(rmq_native.InvalidArgumentError):
                p.send(topic, b"")
    finally:
        rmq_native.otel.uninstrument()
    spans = {s.name: s for s in exporter.get_finished_spans()}
    proc = spans[f"process {topic}"]
    assert proc.context.trace_id == pub["trace_id"]  # one trace across the two processes
    assert proc.parent is not None and proc.parent.span_id == pub["span_id"]
    assert proc.kind.name == "CONSUMER"
    a = proc.attributes
    assert a["messaging.system"] == "rocketmq" and a["messaging.destination.name"] == topic
    assert a["messaging.message.id"] == pub["msg_id"] and a["messaging.consumer.group.name"] == group
    assert a["messaging.rocketmq.message.tag"] == "tg" and list(a["messaging.rocketmq.message.keys"]) == ["k1", "k2"]

    points: dict[str, float] = {}
    for rm in reader.get_metrics_data().resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                for dp in metric.data.data_points:
                    v = getattr(dp, "value", None)
                    if v is None:
                        v = dp.count  # histogram
                    key = metric.name + ("!" if "error.type" in dp.attributes else "")
                    points[key] = points.get(key, 0) + v
    assert points["messaging.client.consumed.messages"] == 1
    assert points["rmq_native.consumer.acked.messages"] == 1
    assert points["messaging.client.sent.messages"] == 1
    assert points["messaging.client.sent.messages!"] == 1
    assert points["messaging.client.operation.duration"] == 1
    assert points["messaging.client.operation.duration!"] == 1


def test_otel_batch_messages_carry_the_batch_span_context(rocketmq_namesrv: str, topic: str, group: str) -> None:
    pytest.importorskip("opentelemetry.sdk")
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    import rmq_native.otel

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    rmq_native.otel.instrument(tracer_provider=provider)
    try:
        with Producer(rocketmq_namesrv, unique("P")) as p:
            p.send_batch(topic, [b"b1", rmq_native.OutgoingMessage(b"b2", properties={"a": "b"})])
        with Consumer(rocketmq_namesrv, group, topic, from_where="first") as c:
            got = _drain(c, 2)
            for m in got:
                m.ack()
    finally:
        rmq_native.otel.uninstrument()
    assert sorted(m.body for m in got) == [b"b1", b"b2"]
    assert next(m for m in got if m.body == b"b2").properties["a"] == "b"
    spans = exporter.get_finished_spans()
    (batch,) = [s for s in spans if s.name == f"send_batch {topic}"]
    assert batch.attributes["messaging.batch.message_count"] == 2
    procs = [s for s in spans if s.name == f"process {topic}"]
    assert len(procs) == 2
    for proc in procs:
        assert proc.context.trace_id == batch.context.trace_id
        assert proc.parent is not None and proc.parent.span_id == batch.context.span_id


def test_otel_not_imported_unless_used() -> None:
    code = "import sys, rmq_native, rmq_native.aio; assert not any(m.startswith('opentelemetry') for m in sys.modules)"
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=60)
