"""Client statistics: the exact counters behind ``producer.stats()`` and
``consumer.stats()``, and the hook OpenTelemetry plugs into (:mod:`rmq_native.otel`).

Counting costs one lock round trip and one ``perf_counter`` per send, and
a few additions per delivery under the consumer's own lock; nothing else
happens unless :func:`rmq_native.otel.instrument`
installed its hooks.
"""

from __future__ import annotations

import collections
import threading
import time
from typing import Any, Mapping

__all__ = ["ProducerStats", "ConsumerStats", "LATENCY_WINDOW"]

LATENCY_WINDOW = 1024
"""Send latency percentiles cover the last this many successful sends."""

# OpenTelemetry hooks (rmq_native.otel._Hooks) or None; set by otel.instrument()
_otel: Any = None


def _set_otel(hooks: Any) -> None:
    global _otel
    _otel = hooks


def _percentile(sorted_ms: list[float], q: float) -> float | None:
    if not sorted_ms:
        return None
    return sorted_ms[min(len(sorted_ms) - 1, int(q * len(sorted_ms)))]


class _Send:
    """One send in progress (see :meth:`ProducerStats.begin`)."""

    __slots__ = ("_stats", "_t0", "_count", "_queued", "_timed", "_hooks", "_span")

    def __init__(self, stats: ProducerStats, count: int, queued: bool, timed: bool, hooks: Any, span: Any) -> None:
        self._stats = stats
        self._timed = timed
        self._count = count
        self._queued = queued
        self._hooks = hooks
        self._span = span
        self._t0 = time.perf_counter()

    def _count_done(self, now: float) -> float:
        """Count this send as succeeded at ``now`` (``time.perf_counter()``)
        in its stats, whose lock the caller holds; returns its milliseconds."""
        s = self._stats
        s._sent += self._count
        s._in_flight -= self._count
        if self._queued:
            s._queued -= self._count
        ms = (now - self._t0) * 1000
        if self._timed:
            s._latency.append(ms)
        return ms

    def done(self, result: Any) -> None:
        """The send succeeded with ``result`` (a SendResult, or None for oneway)."""
        s = self._stats
        now = time.perf_counter()
        with s._lock:
            ms = self._count_done(now)
        if self._span is not None:
            self._hooks.end_publish(self._span, s, result, None, ms)

    def fail(self, exc: BaseException) -> None:
        """The send failed with ``exc``."""
        ms = (time.perf_counter() - self._t0) * 1000
        s = self._stats
        with s._lock:
            s._send_failed += self._count
            s._in_flight -= self._count
            if self._queued:
                s._queued -= self._count
        if self._span is not None:
            self._hooks.end_publish(self._span, s, None, exc, ms)

    def future_done(self, fut: Any) -> None:
        """Callback of an asynchronous send's future."""
        exc = fut.exception()
        if exc is None:
            self.done(fut.result())
        else:
            self.fail(exc)


def done_all(sends: list[tuple[Any, Any]]) -> None:
    """``op.done(result)`` for each (op, result) of a batch of asynchronous
    sends that finished together: the plain ones (no span) of one producer
    are counted under one lock round."""
    if not sends:
        return
    s = getattr(sends[0][0], "_stats", None)
    now = time.perf_counter()
    rest = []
    if s is not None:
        with s._lock:
            for op, result in sends:
                if type(op) is not _Send or op._span is not None or op._stats is not s:
                    rest.append((op, result))
                    continue
                op._count_done(now)
    else:
        rest = sends
    for op, result in rest:
        op.done(result)


class ProducerStats:
    """Counters of one producer (thread-safe, exact)."""

    def __init__(self, group: str) -> None:
        self.group = group
        self._lock = threading.Lock()
        self._sent = 0
        self._send_failed = 0
        self._in_flight = 0
        self._queued = 0
        self._latency: collections.deque[float] = collections.deque(maxlen=LATENCY_WINDOW)

    def begin(
        self,
        topic: str,
        properties: Mapping[str, str] | None,
        *,
        tags: str | None = None,
        keys: Any = None,
        count: int = 1,
        queued: bool = False,
        operation: str = "send",
        timed: bool = True,
    ) -> tuple[_Send, Mapping[str, str] | None]:
        """Count a send that starts now (``count`` messages; ``queued`` for
        asynchronous sends; ``timed``: record its latency). Returns the send, to finish with ``done`` or
        ``fail``, and the properties to send: with OpenTelemetry on, the
        caller's plus the trace context (``traceparent``)."""
        with self._lock:
            self._in_flight += count
            if queued:
                self._queued += count
        hooks, span = _otel, None
        if hooks is not None:
            span, properties = hooks.start_publish(self, topic, properties, tags, keys, count, operation)
        return _Send(self, count, queued, timed, hooks, span), properties

    def snapshot(self) -> dict[str, Any]:
        """The counters as a dict (see :meth:`rmq_native.Producer.stats`)."""
        with self._lock:
            lat = sorted(self._latency)
            return {
                "sent": self._sent,
                "send_failed": self._send_failed,
                "in_flight": self._in_flight,
                "queued": self._queued,
                "p50_ms": _percentile(lat, 0.50),
                "p99_ms": _percentile(lat, 0.99),
                "latency_window": len(lat),
            }


class ConsumerStats:
    """Counters of one consumer (exact). They live under the consumer's own
    lock: every method but :meth:`snapshot` is called with ``lock`` held
    (the consumer counts where it hands out and settles messages, so a
    delivery costs no lock round trip of its own); snapshot takes it."""

    def __init__(self, group: str, max_reconsume_times: int, lock: threading.RLock) -> None:
        self.group = group
        # the SDK's default (16) applies to -1
        self._max_reconsume = 16 if max_reconsume_times < 0 else max_reconsume_times
        self._lock = lock
        self._received = 0
        self._acked = 0
        self._nacked = 0
        self._redelivered = 0
        self._dlq = 0
        self._spans: dict[int, tuple[Any, Any]] = {}  # delivery id -> (hooks, process span): OpenTelemetry on

    def received(self, msg: Any) -> None:
        """A message is handed to the application."""
        self._received += 1
        if msg.reconsume_times > 0:
            self._redelivered += 1
        hooks = _otel
        if hooks is not None and msg._id not in self._spans:
            self._spans[msg._id] = (hooks, hooks.start_process(self, msg))

    def given_back(self, msg: Any) -> None:
        """A message handed out went back to the local buffer unsettled (a
        loop was left, a receive cancelled): it counts once more when it is
        handed out again; its process span goes on."""
        self._received -= 1
        if msg.reconsume_times > 0:
            self._redelivered -= 1

    def settled(self, msg: Any, nack: bool) -> None:
        """A message handed out was acknowledged (or nacked)."""
        if nack:
            self._nacked += 1
            if msg.reconsume_times >= self._max_reconsume:
                self._dlq += 1
        else:
            self._acked += 1
        if self._spans:
            entry = self._spans.pop(msg._id, None)
            if entry is not None:
                entry[0].end_process(entry[1], self, nack)

    def close(self) -> None:
        """The consumer closed: end process spans of unsettled messages."""
        spans, self._spans = self._spans, {}
        for hooks, span in spans.values():
            hooks.end_process(span, self, True)

    def snapshot(self, buffered: int) -> dict[str, Any]:
        """The counters as a dict (see :meth:`rmq_native.Consumer.stats`)."""
        with self._lock:
            return {
                "received": self._received,
                "acked": self._acked,
                "nacked": self._nacked,
                "redelivered": self._redelivered,
                "in_flight": self._received - self._acked - self._nacked,
                "buffered": buffered,
                "dlq": self._dlq,
            }
