"""Client statistics: exact counters and send latency, cheap to read any time."""

import os
import uuid

from rmq_native import Admin, Consumer, Producer, devbroker

name_server = os.environ.get("RMQ_NAMESRV") or devbroker.start()
topic = "example-stats"
with Admin(name_server) as admin:
    admin.create_topic(topic)

with Producer(name_server, "example-stats-producer") as producer:
    for i in range(20):
        producer.send(topic, f"message {i}")
    futures = [producer.send_async(topic, f"async {i}") for i in range(20)]
    producer.flush()
    s = producer.stats()
    print(f"producer: sent {s['sent']}, failed {s['send_failed']}, in flight {s['in_flight']}, "
          f"p50 {s['p50_ms']:.2f} ms, p99 {s['p99_ms']:.2f} ms")

# a fresh group starting from the first message sees everything ever sent to the topic
with Consumer(name_server, f"example-stats-{uuid.uuid4().hex[:8]}", topic, from_where="first") as consumer:
    for msg in consumer.messages(timeout=5):
        if msg.body == b"async 1" and msg.reconsume_times == 0:
            msg.nack(delay_level=1)  # handed back: redelivered in about 1 s
        else:
            msg.ack()
    s = consumer.stats()
    print(f"consumer: received {s['received']}, acked {s['acked']}, nacked {s['nacked']}, "
          f"redelivered {s['redelivered']}, in flight {s['in_flight']}")
