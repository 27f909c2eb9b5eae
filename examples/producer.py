"""Send messages synchronously, with tags, keys and properties."""

import os

from rmq_native import Admin, Producer, devbroker

name_server = os.environ.get("RMQ_NAMESRV") or devbroker.start()
with Admin(name_server) as admin:
    admin.create_topic("example-orders")

with Producer(name_server, "example-producer", send_timeout=3.0, retries=2) as producer:
    for i in range(5):
        result = producer.send(
            "example-orders",
            f'{{"order": {i}}}',
            tags="created",
            keys=[f"order-{i}"],
            properties={"region": "eu"},
        )
        print(f"stored {result.msg_id} in queue {result.queue_id} at offset {result.queue_offset}")
