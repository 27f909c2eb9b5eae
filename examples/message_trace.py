"""RocketMQ message trace: sends and deliveries recorded in a trace topic.

A broker started with traceTopicEnable=true (``python -m rmq_native.devbroker
start --trace``) has ``RMQ_SYS_TRACE_TOPIC``, the default; this example uses a
trace topic of its own so that it runs on any broker.
"""

import os
import time
import uuid

from rmq_native import Admin, Consumer, Producer, devbroker

name_server = os.environ.get("RMQ_NAMESRV") or devbroker.start()
topic, trace_topic = "example-traced", "example-trace-records"
with Admin(name_server) as admin:
    admin.create_topic(topic)
    admin.create_topic(trace_topic, queues=1)

with Producer(name_server, "example-trace-producer", trace=True, trace_topic=trace_topic) as producer:
    msg_id = producer.send(topic, "traced order", tags="orders", keys="order-7").msg_id
print("sent", msg_id)

group = f"example-trace-{uuid.uuid4().hex[:8]}"
with Consumer(name_server, group, topic, from_where="first", trace=True, trace_topic=trace_topic) as consumer:
    for msg in consumer.messages(timeout=10):
        if msg.msg_id == msg_id:
            msg.ack()
            break
    time.sleep(1)  # trace records are sent in the background, a few ms later

# A trace record is "kind \x01 time \x01 region \x01 group \x01 ...", records end with \x02.
kinds = set()
with Consumer(name_server, f"{group}-reader", trace_topic, from_where="first") as reader:
    deadline = time.monotonic() + 30
    while not {"Pub", "SubBefore", "SubAfter"} <= kinds and time.monotonic() < deadline:
        for record_msg in reader.messages(timeout=1):
            for record in record_msg.body.decode("utf-8", "replace").split("\x02"):
                fields = record.split("\x01")
                if msg_id in fields:
                    kinds.add(fields[0])
print("trace records:", ", ".join(k for k in ("Pub", "SubBefore", "SubAfter") if k in kinds))
