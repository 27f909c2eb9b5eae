"""Transactional messages: delivered only if the local transaction commits."""

import os

from rmq_native import Admin, Consumer, Message, TransactionProducer, TransactionState, devbroker

name_server = os.environ.get("RMQ_NAMESRV") or devbroker.start()
topic = "example-tx"
with Admin(name_server) as admin:
    admin.create_topic(topic)

committed_orders = {"order-1"}


def check(msg: Message) -> TransactionState:
    """The broker asks about transactions that ended UNKNOWN."""
    return TransactionState.COMMIT if msg.keys[0] in committed_orders else TransactionState.ROLLBACK


def place(msg: Message) -> TransactionState:
    """The local transaction: here, decide by the order key."""
    return TransactionState.COMMIT if msg.keys[0] in committed_orders else TransactionState.ROLLBACK


with TransactionProducer(name_server, "example-tx-producer", check) as producer:
    for order in ("order-1", "order-2"):
        result = producer.send_in_transaction(topic, f"pay {order}", keys=[order], execute=place)
        print(f"{order}: half message {result.msg_id}")

with Consumer(name_server, "example-tx-group", topic, from_where="first") as consumer:
    delivered = [msg.text for msg in consumer.messages(timeout=8)]
print("delivered:", delivered)
assert "pay order-1" in delivered and "pay order-2" not in delivered
