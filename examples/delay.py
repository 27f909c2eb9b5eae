"""Delayed messages: a delay level, or an exact delivery time (RocketMQ 5 timers)."""

import datetime as dt
import os
import time

from rmq_native import Admin, Consumer, Producer, devbroker

name_server = os.environ.get("RMQ_NAMESRV") or devbroker.start()
topic = "example-delay"
with Admin(name_server) as admin:
    admin.create_topic(topic)

start = time.time()
with Producer(name_server) as producer:
    producer.send(topic, "after level 1 (1 s)", delay_level=1)
    producer.send(topic, "after 2 seconds", delay=2)
    producer.send(topic, "at a given time", deliver_at=dt.datetime.now() + dt.timedelta(seconds=3))

with Consumer(name_server, "example-delay-group", topic, from_where="first") as consumer:
    for i, msg in enumerate(consumer.messages(timeout=15)):
        print(f"{time.time() - start:4.1f} s: {msg.text}")
        if i == 2:
            msg.ack()  # handled: break alone would have it redelivered
            break
