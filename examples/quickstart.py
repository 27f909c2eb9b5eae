"""Quickstart: send 10 messages and receive them.

    python examples/quickstart.py                  # starts a local dev broker
    RMQ_NAMESRV=host:port python examples/quickstart.py

With no RMQ_NAMESRV the script starts the local dev broker
(``python -m rmq_native.devbroker start``; the first start downloads the
RocketMQ jars) and leaves it running for the next time.
"""

from __future__ import annotations

import os

from rmq_native import Admin, Consumer, Producer, devbroker


def main() -> None:
    name_server = os.environ.get("RMQ_NAMESRV") or devbroker.start()
    topic = "quickstart"
    group = "quickstart"  # offsets are kept per group: each run receives its own 10

    with Admin(name_server) as admin:
        admin.create_topic(topic, queues=4)

    with Producer(name_server) as producer:
        for i in range(10):
            result = producer.send(topic, f"hello {i}", tags="greeting", keys=[f"key-{i}"],
                                   properties={"index": str(i)})
            print(f"sent     {result.msg_id} to queue {result.queue_id}")

    received = 0
    with Consumer(name_server, group, topic, "greeting", from_where="first") as consumer:
        for msg in consumer.messages(timeout=30):
            print(f"received {msg.body.decode()!r} tags={msg.tags} keys={msg.keys} properties={dict(msg.properties)}")
            received += 1
            if received == 10:
                msg.ack()  # handled: break alone would have it redelivered
                break
    print(f"{received} of 10 messages received")
    if received != 10:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
