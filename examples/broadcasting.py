"""Broadcasting: every consumer of the group gets every message."""

import os

from rmq_native import Admin, Consumer, Producer, devbroker

name_server = os.environ.get("RMQ_NAMESRV") or devbroker.start()
topic = "example-broadcast"
with Admin(name_server) as admin:
    admin.create_topic(topic)

# A stable instance_name lets a broadcasting consumer resume from its stored
# offsets (kept under the rmq_native state folder, also on Windows).
a = Consumer(name_server, "example-caches", topic, model="broadcasting", instance_name="cache-a", from_where="first")
b = Consumer(name_server, "example-caches", topic, model="broadcasting", instance_name="cache-b", from_where="first")
with a, b:
    with Producer(name_server) as producer:
        producer.send(topic, "invalidate user:42")
    for name, consumer in (("a", a), ("b", b)):
        msg = consumer.receive(timeout=30)
        assert msg is not None
        print(f"cache {name} got {msg.text!r}")
        msg.ack()
