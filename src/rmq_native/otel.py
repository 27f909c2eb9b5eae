"""OpenTelemetry instrumentation (``pip install rmq-native[otel]``).

    import rmq_native.otel
    rmq_native.otel.instrument()          # global tracer and meter providers

Afterwards every producer send makes a ``publish`` span (kind PRODUCER) and
every message a consumer hands out a ``process`` span (kind CONSUMER) that
lasts until the message is settled. The W3C trace context (``traceparent``,
``tracestate``) travels in message properties, so the consumer's span
continues the producer's trace, across processes. Attributes follow the OpenTelemetry messaging
semantic conventions (``messaging.system="rocketmq"``,
``messaging.destination.name``, ``messaging.message.id``,
``messaging.rocketmq.message.tag``, ``messaging.rocketmq.message.keys``,
``messaging.consumer.group.name`` ...).

Metrics: counters ``messaging.client.sent.messages`` (with ``error.type``
on failures), ``messaging.client.consumed.messages``,
``rmq_native.consumer.acked.messages``, ``rmq_native.consumer.nacked.messages``
and the histogram ``messaging.client.operation.duration`` (seconds, sends).

This module imports ``opentelemetry``; nothing else in rmq_native does.
A batch (``send_batch``) gets one ``send_batch`` span, and every message of
the batch carries its trace context.
"""

from __future__ import annotations

from typing import Any, Mapping

from opentelemetry import context as otel_context
from opentelemetry import metrics, propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from . import stats
from ._version import __version__

__all__ = ["instrument", "uninstrument", "is_instrumented"]

_SYSTEM = "rocketmq"


class _Hooks:
    """What :mod:`rmq_native.stats` calls when instrumentation is on."""

    def __init__(self, tracer_provider: Any, meter_provider: Any) -> None:
        self.tracer = trace.get_tracer("rmq_native", __version__, tracer_provider=tracer_provider)
        meter = metrics.get_meter("rmq_native", __version__, meter_provider=meter_provider)
        self.sent = meter.create_counter("messaging.client.sent.messages", unit="{message}",
                                         description="Messages the producers sent (or failed to send)")
        self.consumed = meter.create_counter("messaging.client.consumed.messages", unit="{message}",
                                             description="Messages the consumers handed to the application")
        self.acked = meter.create_counter("rmq_native.consumer.acked.messages", unit="{message}",
                                          description="Delivered messages acknowledged")
        self.nacked = meter.create_counter("rmq_native.consumer.nacked.messages", unit="{message}",
                                           description="Delivered messages handed back for redelivery")
        self.duration = meter.create_histogram("messaging.client.operation.duration", unit="s",
                                               description="Duration of sends")

    # -- producer -------------------------------------------------------------

    def start_publish(self, st: Any, topic: str, properties: Mapping[str, str] | None, tags: str | None,
                      keys: Any, count: int, operation: str) -> tuple[Any, Mapping[str, str] | None]:
        attrs: dict[str, Any] = {
            "messaging.system": _SYSTEM,
            "messaging.destination.name": topic,
            "messaging.operation.type": "publish",
            "messaging.operation.name": operation,
            "messaging.rocketmq.client_group": st.group,
        }
        if tags:
            attrs["messaging.rocketmq.message.tag"] = tags
        if keys:
            attrs["messaging.rocketmq.message.keys"] = [keys] if isinstance(keys, str) else list(keys)
        if count > 1:
            attrs["messaging.batch.message_count"] = count
        span = self.tracer.start_span(f"{operation} {topic}", kind=SpanKind.PRODUCER, attributes=attrs)
        carrier = dict(properties or {})
        propagate.inject(carrier, context=trace.set_span_in_context(span))
        return (span, attrs["messaging.destination.name"], count), carrier

    def end_publish(self, span: Any, st: Any, result: Any, exc: BaseException | None, ms: float) -> None:
        span, topic, count = span
        attrs: dict[str, Any] = {"messaging.system": _SYSTEM, "messaging.destination.name": topic,
                                 "messaging.operation.name": "send"}
        if exc is not None:
            attrs["error.type"] = type(exc).__name__
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, str(exc)))
        elif result is not None:
            msg_id = getattr(result, "msg_id", None)
            if msg_id:
                span.set_attribute("messaging.message.id", msg_id)
            queue_id = getattr(result, "queue_id", None)
            if queue_id is not None:
                span.set_attribute("messaging.destination.partition.id", str(queue_id))
        span.end()
        self.sent.add(count, attrs)
        self.duration.record(ms / 1000, attrs)

    # -- consumer -------------------------------------------------------------

    def start_process(self, st: Any, msg: Any) -> Any:
        attrs: dict[str, Any] = {
            "messaging.system": _SYSTEM,
            "messaging.destination.name": msg.topic,
            "messaging.operation.type": "process",
            "messaging.operation.name": "process",
            "messaging.consumer.group.name": st.group,
            "messaging.rocketmq.client_group": st.group,
            "messaging.message.id": msg.msg_id,
            "messaging.message.body.size": len(msg.body),
            "messaging.destination.partition.id": str(msg.queue_id),
            "messaging.rocketmq.message.reconsume_times": msg.reconsume_times,
        }
        if msg.tags:
            attrs["messaging.rocketmq.message.tag"] = msg.tags
        if msg.keys:
            attrs["messaging.rocketmq.message.keys"] = list(msg.keys)
        parent = propagate.extract(msg.properties) if "traceparent" in msg.properties else otel_context.Context()
        span = self.tracer.start_span(f"process {msg.topic}", context=parent, kind=SpanKind.CONSUMER,
                                      attributes=attrs)
        self.consumed.add(1, {"messaging.system": _SYSTEM, "messaging.destination.name": msg.topic,
                              "messaging.consumer.group.name": st.group})
        return span, msg.topic

    def end_process(self, span: Any, st: Any, nack: bool) -> None:
        span, topic = span
        attrs = {"messaging.system": _SYSTEM, "messaging.destination.name": topic,
                 "messaging.consumer.group.name": st.group}
        if nack:
            span.set_attribute("rmq_native.settlement", "nack")
            span.set_status(Status(StatusCode.ERROR, "handed back for redelivery"))
            self.nacked.add(1, attrs)
        else:
            span.set_attribute("rmq_native.settlement", "ack")
            self.acked.add(1, attrs)
        span.end()


def instrument(tracer_provider: Any = None, meter_provider: Any = None) -> None:
    """Trace and measure every producer and consumer of this process.

    ``tracer_provider`` / ``meter_provider``: OpenTelemetry providers
    (default: the global ones, ``trace.set_tracer_provider``...). Calling it
    again replaces the providers; :func:`uninstrument` turns it off.
    """
    stats._set_otel(_Hooks(tracer_provider, meter_provider))


def uninstrument() -> None:
    """Stop tracing and measuring (spans already started still end)."""
    stats._set_otel(None)


def is_instrumented() -> bool:
    """Whether :func:`instrument` is in effect."""
    return stats._otel is not None
