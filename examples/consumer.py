"""Receive messages: acknowledged when the loop moves on, redelivered on errors."""

import os

from rmq_native import Admin, Consumer, Producer, devbroker

name_server = os.environ.get("RMQ_NAMESRV") or devbroker.start()
topic = "example-consume"
with Admin(name_server) as admin:
    admin.create_topic(topic)
with Producer(name_server) as producer:
    for i in range(3):
        producer.send(topic, f"job {i}", tags="job")

done = 0
# from_where="first": a new group starts at the oldest message
with Consumer(name_server, "example-workers", topic, "job", from_where="first") as consumer:
    for msg in consumer.messages(timeout=10):  # ends after 10 s without a message
        print(f"processing {msg.text!r} (attempt {msg.reconsume_times + 1})")
        done += 1
        # raising here would send the message back for redelivery
print(f"processed {done} jobs")
