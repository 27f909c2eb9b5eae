"""OpenTelemetry: publish and process spans in one trace, and client metrics
(needs `pip install rmq-native[otel]` and opentelemetry-sdk; here kept in memory)."""

import os
import uuid

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import rmq_native.otel
from rmq_native import Admin, Consumer, Producer, devbroker

spans = InMemorySpanExporter()  # in production: an OTLP exporter
tracer_provider = TracerProvider()
tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
metrics = InMemoryMetricReader()
rmq_native.otel.instrument(tracer_provider=tracer_provider, meter_provider=MeterProvider(metric_readers=[metrics]))

name_server = os.environ.get("RMQ_NAMESRV") or devbroker.start()
topic = "example-otel"
with Admin(name_server) as admin:
    admin.create_topic(topic)

with Producer(name_server, "example-otel-producer") as producer:
    sent = producer.send(topic, b"order 42", tags="created", keys="order-42")

with Consumer(name_server, f"example-otel-{uuid.uuid4().hex[:8]}", topic, from_where="first") as consumer:
    for msg in consumer.messages(timeout=10):
        if msg.msg_id == sent.msg_id:
            print(f"received {msg.body!r} with traceparent {msg.properties['traceparent']}")
            break  # acknowledged when the with block exits

rmq_native.otel.uninstrument()
finished = [s for s in spans.get_finished_spans() if s.attributes.get("messaging.message.id") == sent.msg_id]
for span in finished:
    print(f"{span.kind.name:8} {span.name:28} trace {span.context.trace_id:032x}")
print("one trace:", len({s.context.trace_id for s in finished}) == 1 and len(finished) == 2)
for rm in metrics.get_metrics_data().resource_metrics:
    for sm in rm.scope_metrics:
        for m in sm.metrics:
            print("metric", m.name)
