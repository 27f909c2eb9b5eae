"""Request/reply (RPC over RocketMQ): producer.request() waits for the answer
a consumer sends with msg.reply(); compatible with the Java client."""

import os
import threading
import uuid

from rmq_native import Admin, BrokerError, Consumer, Producer, TimeoutError, devbroker

name_server = os.environ.get("RMQ_NAMESRV") or devbroker.start()
topic = "example-rpc"
with Admin(name_server) as admin:
    admin.create_topic(topic)
stop = threading.Event()


def server() -> None:
    with Consumer(name_server, f"example-rpc-server-{uuid.uuid4().hex[:8]}", topic) as consumer:
        while not stop.is_set():
            for msg in consumer.messages(timeout=0.5):
                try:
                    msg.reply(f"price of {msg.text}: 42")  # before the message is acknowledged
                except BrokerError:  # its requester is gone (an old request): nobody waits
                    print("not answered, requester gone:", msg.msg_id)


threading.Thread(target=server, daemon=True).start()

with Producer(name_server, "example-rpc-client") as producer:
    for _attempt in range(30):  # the server's consumer takes a moment to start
        try:
            answer = producer.request(topic, "apples", timeout=3.0)
            break
        except TimeoutError:
            print("no answer yet")
    print("answer:", answer.text)
    future = producer.request_async(topic, "pears", timeout=5.0)
    print("answer:", future.result().text)
stop.set()
