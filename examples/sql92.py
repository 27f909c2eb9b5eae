"""SQL92 filters on message properties (the broker needs enablePropertyFilter=true)."""

import os

from rmq_native import Admin, Consumer, Producer, devbroker

name_server = os.environ.get("RMQ_NAMESRV") or devbroker.start()
topic = "example-sql"
with Admin(name_server) as admin:
    admin.create_topic(topic)

with Producer(name_server) as producer:
    for amount in (5, 50, 500):
        producer.send(topic, f"payment of {amount}", properties={"amount": str(amount), "currency": "EUR"})

with Consumer(name_server, "example-big-payments", topic, "amount >= 50 AND currency = 'EUR'",
              selector="sql92", from_where="first") as consumer:
    for msg in consumer.messages(timeout=8):
        print("big payment:", msg.text)
