"""Ordered messages: one sharding key -> one queue; an orderly consumer keeps the order."""

import os

from rmq_native import Admin, Consumer, Producer, devbroker

name_server = os.environ.get("RMQ_NAMESRV") or devbroker.start()
topic = "example-ordered"
with Admin(name_server) as admin:
    admin.create_topic(topic, queues=8)

with Producer(name_server) as producer:
    for step in ("created", "paid", "shipped"):
        for order in ("A", "B"):
            producer.send(topic, f"{order}:{step}", sharding_key=f"order-{order}")

seen: dict[str, list[str]] = {}
with Consumer(name_server, "example-ordered-group", topic, orderly=True, from_where="first") as consumer:
    for msg in consumer.messages(timeout=10):
        order, step = msg.text.split(":")
        seen.setdefault(order, []).append(step)
for order, steps in sorted(seen.items()):
    print(order, " -> ".join(steps))
assert all(steps[-3:] == ["created", "paid", "shipped"] for steps in seen.values())
