"""Benchmark driver for the Python clients (one process per run).

    python pydriver.py SYSTEM '<spec json>'

SYSTEM is ``rmq_native``, ``rocketmq044`` (PyPI ``rocketmq`` 0.4.4, ctypes over a
bundled C++ librocketmq) or ``grpc5`` (PyPI ``rocketmq-python-client`` 5.x, gRPC
through the RocketMQ proxy).  The workloads are written once here against a
small adapter per client, so every Python client runs the same loop.  Prints
one JSON line like the Go and Java drivers: ``{"ok": true, "n": .., "elapsed":
.., "errors": .., "metrics": {..}}`` or ``{"ok": false, "error": ".."}``.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from typing import Callable, List


class Unsupported(Exception):
    pass


def make_body(size: int) -> bytes:
    return bytes((ord("a") + i % 26) for i in range(size))


# --------------------------------------------------------------------------- adapters


def _otel_on() -> None:
    """spec "otel": true -- OpenTelemetry on, with SDK providers whose spans
    are exported (batched) to nowhere and whose metrics are aggregated in
    memory: the cost of instrumentation without the cost of a collector."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    import rmq_native.otel

    class Drop(SpanExporter):
        def export(self, spans):  # type: ignore[no-untyped-def]
            return SpanExportResult.SUCCESS

    tp = TracerProvider()
    tp.add_span_processor(BatchSpanProcessor(Drop()))
    mp = MeterProvider(metric_readers=[InMemoryMetricReader()])
    rmq_native.otel.instrument(tracer_provider=tp, meter_provider=mp)


def _bare() -> None:
    """spec "bare": true -- the statistics and instrumentation hooks replaced
    by no-ops: rmq_native as if it had no observability at all, the yardstick
    for what stats() and the (off) OpenTelemetry hooks cost when tracing is off."""
    from rmq_native import stats

    class NoSend:
        def done(self, result) -> None:  # type: ignore[no-untyped-def]
            pass

        def fail(self, exc) -> None:  # type: ignore[no-untyped-def]
            pass

        def future_done(self, fut) -> None:  # type: ignore[no-untyped-def]
            pass

    nosend = NoSend()
    stats.ProducerStats.begin = lambda self, topic, properties, **kw: (nosend, properties)  # type: ignore
    stats.ConsumerStats.received = lambda self, msg: None  # type: ignore
    stats.ConsumerStats.given_back = lambda self, msg: None  # type: ignore
    stats.ConsumerStats.settled = lambda self, msg, nack: None  # type: ignore


class RmqNative:
    """spec options: "otel": true (OpenTelemetry on), "trace": true (RocketMQ
    message trace on producer and consumer), "bare": true (statistics and
    hooks replaced by no-ops)."""

    def __init__(self, spec: dict) -> None:
        self.spec = spec
        self.p = None
        self.trace = bool(spec.get("trace"))
        if spec.get("otel"):
            _otel_on()
        if spec.get("bare"):
            _bare()

    def producer(self) -> None:
        from rmq_native import Producer

        self.p = Producer(self.spec["ns"], "bench_rmq_native_producer", trace=self.trace)

    def send(self, topic: str, body: bytes) -> None:
        self.p.send(topic, body)

    def prepare(self) -> None:
        import rmq_native  # noqa: F401  (the import's cost is paid before a start barrier)

    def send_async(self, topic: str, body: bytes, done: Callable[[bool], None]) -> None:
        fut = self.p.send_async(topic, body)
        fut.add_done_callback(lambda f: done(f.exception() is None))

    def send_batch(self, topic: str, bodies: List[bytes]) -> None:
        self.p.send_batch(topic, bodies)

    def consume(self, topic: str, group: str, from_first: bool, on_body, stop: threading.Event) -> None:
        from rmq_native import Consumer

        with Consumer(self.spec["ns"], group, topic, from_where="first" if from_first else "last",
                      trace=self.trace) as c:
            while not stop.is_set():
                for msg in c.messages(timeout=0.2):
                    on_body(msg.body)
                    if stop.is_set():
                        break

    def close(self) -> None:
        if self.p is not None:
            self.p.close()


class RocketMQ044:
    def __init__(self, spec: dict) -> None:
        self.spec = spec
        self.p = None

    def producer(self) -> None:
        from rocketmq.client import Producer

        self.p = Producer("bench_rocketmq044_producer")
        self.p.set_namesrv_addr(self.spec["ns"])
        self.p.set_max_message_size(4 << 20)  # the broker's limit, as the other clients (default: 128 KiB)
        self.p.start()

    def _msg(self, topic: str, body: bytes):
        from rocketmq.client import Message

        m = Message(topic)
        m.set_body(body)
        return m

    def send(self, topic: str, body: bytes) -> None:
        self.p.send_sync(self._msg(topic, body))

    def send_async(self, topic: str, body: bytes, done: Callable[[bool], None]) -> None:
        self.p.send_async(self._msg(topic, body), lambda r: done(True), lambda e: done(False))

    def send_batch(self, topic: str, bodies: List[bytes]) -> None:
        self.p.send_batch([self._msg(topic, b) for b in bodies])

    def consume(self, topic: str, group: str, from_first: bool, on_body, stop: threading.Event) -> None:
        # The wrapper has no "consume from" option: a new group on a topic whose
        # messages are still in the broker's memory starts at the first message.
        from rocketmq.client import PushConsumer

        c = PushConsumer(group)
        c.set_namesrv_addr(self.spec["ns"])
        c.set_instance_name(f"bench-rocketmq044-{os.getpid()}")
        c.subscribe(topic, lambda m: on_body(m.body))
        c.start()
        try:
            stop.wait()
        finally:
            c.shutdown()

    def close(self) -> None:
        if self.p is not None:
            self.p.shutdown()


class Grpc5:
    def __init__(self, spec: dict) -> None:
        self.spec = spec
        self.p = None
        from rocketmq.v5.client import ClientConfiguration, Credentials

        self.config = ClientConfiguration(spec["endpoint"], Credentials())

    def producer(self) -> None:
        from rocketmq.v5.producer import Producer

        self.p = Producer(self.config, topics=(self.spec["topic"],))
        self.p.startup()

    def _msg(self, topic: str, body: bytes):
        from rocketmq.v5.model import Message

        m = Message()
        m.topic = topic
        m.body = body
        return m

    def send(self, topic: str, body: bytes) -> None:
        self.p.send(self._msg(topic, body))

    def send_async(self, topic: str, body: bytes, done: Callable[[bool], None]) -> None:
        fut = self.p.send_async(self._msg(topic, body))
        fut.add_done_callback(lambda f: done(f.exception() is None))

    def send_batch(self, topic: str, bodies: List[bytes]) -> None:
        raise Unsupported("rocketmq-python-client 5.x has no batch send")

    def consume(self, topic: str, group: str, from_first: bool, on_body, stop: threading.Event) -> None:
        # SimpleConsumer: receive up to 32 by long polling, then ack each one.
        # ack_async fails outside the main thread in 5.1.2 (it builds an
        # asyncio Future without an event loop), so synchronous acks run on
        # a small thread pool to overlap like asynchronous ones.
        from concurrent.futures import ThreadPoolExecutor

        from rocketmq.v5.consumer import SimpleConsumer
        from rocketmq.v5.model import FilterExpression

        c = SimpleConsumer(self.config, group, {topic: FilterExpression()}, await_duration=5)
        c.startup()
        pool = ThreadPoolExecutor(8, thread_name_prefix="ack")  # acks overlap like an async ack
        try:
            while not stop.is_set():
                try:
                    msgs = c.receive(32, 30)
                except Exception:
                    msgs = []
                for m in msgs or ():
                    on_body(m.body)
                    pool.submit(c.ack, m)
        finally:
            pool.shutdown(wait=True)
            c.shutdown()

    def close(self) -> None:
        if self.p is not None:
            self.p.shutdown()


ADAPTERS = {"rmq_native": RmqNative, "rocketmq044": RocketMQ044, "grpc5": Grpc5}


# --------------------------------------------------------------------------- workloads


def _deadline(spec: dict) -> float:
    return time.monotonic() + float(spec.get("max_time") or 3600)


def _count(spec: dict) -> int:
    return int(spec.get("count") or 1 << 30)


def _warm(a, spec: dict, body: bytes) -> None:
    for _ in range(20):
        try:
            a.send(spec["topic"], body)
        except Exception:
            time.sleep(0.1)


def send_sync(a, spec: dict, threads: int) -> dict:
    a.producer()
    topic, body = spec["topic"], make_body(spec.get("size", 1024))
    _warm(a, spec, body)
    count, deadline = _count(spec), _deadline(spec)
    lock = threading.Lock()
    state = {"n": 0, "errors": 0}

    def worker() -> None:
        while True:
            with lock:
                if state["n"] >= count or time.monotonic() > deadline:
                    return
                state["n"] += 1
            try:
                a.send(topic, body)
            except Exception:
                with lock:
                    state["errors"] += 1

    t0 = time.perf_counter()
    ts = [threading.Thread(target=worker) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    el = time.perf_counter() - t0
    ok = state["n"] - state["errors"]
    return {"ok": True, "n": ok, "elapsed": el, "errors": state["errors"], "metrics": {"rate": ok / el}}


def send_async(a, spec: dict) -> dict:
    a.producer()
    topic, body = spec["topic"], make_body(spec.get("size", 1024))
    _warm(a, spec, body)
    inflight = int(spec.get("inflight", 1000))
    sem = threading.BoundedSemaphore(inflight)
    lock = threading.Lock()
    state = {"done": 0, "errors": 0}

    def done(ok: bool) -> None:
        with lock:
            state["done" if ok else "errors"] += 1
        sem.release()

    count, deadline = _count(spec), _deadline(spec)
    t0 = time.perf_counter()
    sent = 0
    while sent < count and time.monotonic() < deadline:
        sem.acquire()
        try:
            a.send_async(topic, body, done)
        except Exception:
            done(False)
        sent += 1
    for _ in range(inflight):
        sem.acquire(timeout=30)
    el = time.perf_counter() - t0
    return {"ok": True, "n": state["done"], "elapsed": el, "errors": state["errors"],
            "metrics": {"rate": state["done"] / el}}


def send_batch(a, spec: dict) -> dict:
    a.producer()
    topic, body = spec["topic"], make_body(spec.get("size", 1024))
    batch = int(spec.get("batch", 32))
    try:
        a.send_batch(topic, [body] * batch)  # warm-up (and the unsupported check)
    except Unsupported as e:
        return {"ok": False, "error": str(e), "unsupported": True}
    count, deadline = _count(spec), _deadline(spec)
    n = errors = 0
    t0 = time.perf_counter()
    while n < count and time.monotonic() < deadline:
        try:
            a.send_batch(topic, [body] * batch)
            n += batch
        except Exception:
            errors += 1
    el = time.perf_counter() - t0
    return {"ok": True, "n": n, "elapsed": el, "errors": errors, "metrics": {"rate": n / el}}


def drain(a, spec: dict) -> dict:
    count = _count(spec)
    stop = threading.Event()
    lock = threading.Lock()
    st = {"n": 0, "first": 0.0, "last": 0.0}

    def on_body(body: bytes) -> None:
        now = time.perf_counter()
        with lock:
            if not st["first"]:
                st["first"] = now
            st["n"] += 1
            if st["n"] >= count and not st["last"]:
                st["last"] = now
                stop.set()

    failed: List[BaseException] = []

    def consume() -> None:
        try:
            a.consume(spec["topic"], spec["group"], True, on_body, stop)
        except BaseException as e:  # the drain fails at once instead of waiting out max_time
            failed.append(e)
        finally:
            stop.set()

    t0 = time.perf_counter()
    th = threading.Thread(target=consume, daemon=True)
    th.start()
    stop.wait(float(spec.get("max_time") or 3600))
    end = st["last"] or time.perf_counter()
    stop.set()
    th.join(15)
    if failed:
        return {"ok": False, "error": f"the consumer failed: {type(failed[0]).__name__}: {failed[0]}"}
    if not st["first"]:
        return {"ok": False, "error": "no message received"}
    el = end - st["first"]
    return {"ok": True, "n": st["n"], "elapsed": el, "errors": 0,
            "metrics": {"rate": st["n"] / el, "first_ms": (st["first"] - t0) * 1000}}


def latency(a, spec: dict) -> dict:
    topic = spec["topic"]
    stop = threading.Event()
    warm_seen = threading.Event()
    lats: List[float] = []

    born = time.time_ns()

    def on_body(body: bytes) -> None:
        now = time.time_ns()
        if body[:1] == b"W":
            warm_seen.set()
        elif body[:1] == b"T":
            sent = int(body[1:20])
            if sent >= born:  # ignore leftovers of an earlier run on this topic
                lats.append((now - sent) / 1e6)

    # from the first offset: with "last", a new group fixes each queue's start
    # at its first pull and skips what was stored on that queue just before
    # (leftovers of earlier runs are filtered by their send time above)
    th = threading.Thread(target=a.consume, args=(topic, spec["group"], True, on_body, stop), daemon=True)
    th.start()
    a.producer()
    body = make_body(spec.get("size", 1024))
    wdl = time.monotonic() + 30
    while not warm_seen.is_set() and time.monotonic() < wdl:
        try:
            a.send(topic, b"W" + body[1:])
        except Exception:
            pass
        warm_seen.wait(0.05)
    if not warm_seen.is_set():
        stop.set()
        return {"ok": False, "error": "consumer received nothing within 30 s"}
    rate = int(spec.get("rate", 1000))
    total = int(rate * float(spec.get("duration", 10)))
    errors = [0]

    def done(ok: bool) -> None:
        if not ok:
            errors[0] += 1

    t0 = time.perf_counter()
    for i in range(total):
        d = t0 + i / rate - time.perf_counter()
        if d > 0:
            time.sleep(d)
        m = b"T%019d" % time.time_ns() + body[20:]
        try:
            a.send_async(topic, m, done)
        except Exception:
            errors[0] += 1
    send_el = time.perf_counter() - t0
    wait = time.monotonic() + 10
    while time.monotonic() < wait and len(lats) + errors[0] < total:
        time.sleep(0.05)
    stop.set()
    s = sorted(lats)
    if not s:
        return {"ok": False, "error": "no latency samples"}
    pct = lambda q: s[int(q * (len(s) - 1))]  # noqa: E731
    return {"ok": True, "n": len(s), "elapsed": send_el, "errors": errors[0],
            "metrics": {"p50": pct(0.5), "p99": pct(0.99), "max": s[-1], "lost": total - len(s),
                        "achieved_rate": total / send_el}}


def _barrier(spec: dict) -> None:
    """Several processes start their clients at one moment: print READY, wait for a line."""
    if spec.get("barrier"):
        print("READY", flush=True)
        sys.stdin.readline()


def drain_part(a, spec: dict) -> dict:
    """One of several consumer processes of one group draining a backlog: counts
    what it receives and stops after ``idle`` s without a message (``first_wait``
    s if none came at all); the orchestrator adds the processes up."""
    stop = threading.Event()
    lock = threading.Lock()
    st = {"n": 0, "first": 0.0, "last": 0.0}

    def on_body(body: bytes) -> None:
        now = time.time()
        with lock:
            if not st["first"]:
                st["first"] = now
            st["n"] += 1
            st["last"] = now

    idle, first_wait = float(spec.get("idle") or 2), float(spec.get("first_wait") or 10)
    if hasattr(a, "prepare"):
        a.prepare()
    _barrier(spec)
    t0 = time.time()
    deadline = time.monotonic() + float(spec.get("max_time") or 3600)
    th = threading.Thread(target=a.consume, args=(spec["topic"], spec["group"], True, on_body, stop), daemon=True)
    th.start()
    while time.monotonic() < deadline:
        time.sleep(0.02)
        with lock:
            last = st["last"]
        if (last and time.time() - last >= idle) or (not last and time.time() - t0 >= first_wait):
            break
    stop.set()
    th.join(15)
    m = {"start_t": t0}
    if st["n"]:
        m.update(first_t=st["first"], last_t=st["last"])
    return {"ok": True, "n": st["n"], "elapsed": time.time() - t0, "errors": 0, "metrics": m}


def topics_send(a, spec: dict) -> dict:
    """One producer, many topics (``topics``): one timed sync send to each topic
    in turn (route lookup + send), then ``threads`` threads sending round-robin
    over all of them for ``max_time``."""
    a.producer()
    topics, body = spec["topics"], make_body(spec.get("size", 1024))
    _warm(a, spec, body)
    firsts: List[float] = []
    errors = 0
    for t in topics:
        t0 = time.perf_counter()
        try:
            a.send(t, body)
        except Exception:
            errors += 1
            continue
        firsts.append((time.perf_counter() - t0) * 1000)
    if not firsts:
        return {"ok": False, "error": "every first send failed"}
    deadline = _deadline(spec)
    lock = threading.Lock()
    state = {"i": 0, "n": 0, "errors": errors}

    def worker() -> None:
        while time.monotonic() < deadline:
            with lock:
                state["i"] += 1
                t = topics[state["i"] % len(topics)]
            try:
                a.send(t, body)
                ok = True
            except Exception:
                ok = False
            with lock:
                state["n" if ok else "errors"] += 1

    t0 = time.perf_counter()
    ts = [threading.Thread(target=worker) for _ in range(int(spec.get("threads", 4)))]
    for th in ts:
        th.start()
    for th in ts:
        th.join()
    el = time.perf_counter() - t0
    firsts.sort()
    return {"ok": True, "n": state["n"], "elapsed": el, "errors": state["errors"],
            "metrics": {"rate": state["n"] / el, "first_p50": firsts[(len(firsts) - 1) // 2], "first_max": firsts[-1]}}


def peak_rss_kib() -> int:
    """This process's own peak RSS (VmHWM; 0 where there is none): the
    orchestrator's wait4 figure would include the pages its fork copied."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def main() -> int:
    system, spec = sys.argv[1], json.loads(sys.argv[2])
    system, _, option = system.partition("+")  # rmq_native+otel, +trace, +bare
    if option:
        spec[option] = True
    try:
        a = ADAPTERS[system](spec)
        w = spec["workload"]
        if w == "sync1":
            r = send_sync(a, spec, 1)
        elif w == "sync8":
            r = send_sync(a, spec, int(spec.get("threads", 8)))
        elif w == "async":
            r = send_async(a, spec)
        elif w == "batch":
            r = send_batch(a, spec)
        elif w == "drain":
            r = drain(a, spec)
        elif w == "latency":
            r = latency(a, spec)
        elif w == "drain_part":
            r = drain_part(a, spec)
        elif w == "topics":
            r = topics_send(a, spec)
        else:
            r = {"ok": False, "error": f"unknown workload {w}"}
        try:
            a.close()
        except Exception:
            pass
    except Exception as e:  # report, never hang the orchestrator
        r = {"ok": False, "error": f"{type(e).__name__}: {e}"}
    r["peak_rss_kib"] = peak_rss_kib()
    print(json.dumps(r), flush=True)
    sys.stdout.flush()
    os._exit(0 if r.get("ok") else 1)  # skip interpreter teardown (some clients hang in atexit)


if __name__ == "__main__":
    sys.exit(main())
