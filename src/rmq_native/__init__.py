"""rmq_native: a RocketMQ client for Python on Windows and Linux.

It wraps the Go RocketMQ SDK in a small shared library loaded with cffi:
no C++ client, no proxy, no compiler needed.

    from rmq_native import Producer, Consumer

    with Producer("127.0.0.1:9876") as p:
        p.send("orders", b"hello", tags="new")

    with Consumer("127.0.0.1:9876", "my-group", "orders") as c:
        for msg in c.messages(timeout=5):
            print(msg.body)
"""

from __future__ import annotations

import logging

from ._version import __version__
from .admin import Admin, QueueLag, QueueStats
from .consumer import Consumer
from .errors import (
    AuthenticationError,
    BrokerError,
    ClientStateError,
    ClosedError,
    ForbiddenError,
    InternalError,
    InvalidArgumentError,
    LibraryError,
    MessageRejectedError,
    NoRouteError,
    RocketMQError,
    SendUnknownError,
    TimeoutError,
    UnreachableError,
)
from .message import Message, OutgoingMessage, SendResult, SendStatus, TransactionState
from .producer import Producer, TransactionProducer
from .reader import Reader

logging.getLogger("rmq_native").addHandler(logging.NullHandler())

__all__ = [
    "__version__",
    "Admin",
    "AuthenticationError",
    "BrokerError",
    "ClientStateError",
    "ClosedError",
    "Consumer",
    "ForbiddenError",
    "InternalError",
    "InvalidArgumentError",
    "LibraryError",
    "Message",
    "MessageRejectedError",
    "NoRouteError",
    "OutgoingMessage",
    "Producer",
    "QueueLag",
    "QueueStats",
    "Reader",
    "RocketMQError",
    "SendResult",
    "SendStatus",
    "SendUnknownError",
    "TimeoutError",
    "TransactionProducer",
    "TransactionState",
    "UnreachableError",
]
