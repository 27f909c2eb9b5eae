"""Value types: messages, send results and their enums."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Mapping, Protocol

from .errors import InvalidArgumentError

__all__ = ["SendStatus", "SendResult", "Message", "OutgoingMessage", "TransactionState"]


class SendStatus(enum.IntEnum):
    """The broker's verdict on a stored message."""

    SEND_OK = 0
    FLUSH_DISK_TIMEOUT = 1
    FLUSH_SLAVE_TIMEOUT = 2
    SLAVE_NOT_AVAILABLE = 3


class TransactionState(enum.IntEnum):
    """The outcome of a local transaction (``execute`` and ``check``)."""

    COMMIT = 0
    ROLLBACK = 1
    UNKNOWN = 2


@dataclass
class OutgoingMessage:
    """A message to send in a batch, with its own tags, keys and properties."""

    body: bytes | str
    tags: str | None = None
    keys: str | list[str] | None = None
    properties: Mapping[str, str] | None = None


@dataclass(frozen=True)
class SendResult:
    """The outcome of a successful send."""

    topic: str
    msg_id: str
    queue_id: int
    queue_offset: int
    status: SendStatus
    offset_msg_id: str = ""
    broker_name: str = ""
    transaction_id: str = ""
    msg_ids: tuple[str, ...] = ()
    """For a batch: the id of every message, in order."""

    # The result of an asynchronous send keeps msg_id, offset_msg_id,
    # broker_name and transaction_id undecoded until one of them is read:
    # _wire installs the descriptors that decode them on this class.


class Settler(Protocol):
    """What a received message is settled (and replied to) through: the
    consumer that received it. Message names nothing higher than this."""

    def _settle(self, msg: Message, *, nack: bool, delay_level: int) -> None: ...

    def _reply(self, msg: Message, body: bytes | str, *, properties: Mapping[str, str] | None,
               timeout: float | None) -> None: ...


@dataclass(eq=False)
class Message:
    """A received message.

    ``born_timestamp`` and ``store_timestamp`` are milliseconds since the
    epoch. Acknowledge with :meth:`ack` (done for you when a
    ``consumer.messages()`` loop asks for the next message) or ask for
    redelivery with :meth:`nack`. Both may be called from any thread (a
    worker that processed the message) and never wait for a receive in
    progress; a message never settled is redelivered.
    """

    topic: str
    body: bytes
    tags: str | None
    keys: list[str]
    properties: Mapping[str, str]
    msg_id: str
    queue_id: int
    queue_offset: int
    reconsume_times: int
    born_timestamp: int
    store_timestamp: int
    offset_msg_id: str = ""
    broker_name: str = ""
    _id: int = field(default=0, repr=False)
    """The library's id of this delivery (of the check, for a transaction
    check; 0 when there is nothing to settle)."""
    _settler: Settler | None = field(default=None, repr=False)
    _settled: bool = field(default=False, repr=False)
    # A received message (made by _wire.messages) keeps its texts and
    # properties undecoded until they are read: _wire installs the
    # descriptors that decode them on this class.

    @property
    def text(self) -> str:
        """The body decoded as UTF-8."""
        return self.body.decode("utf-8")

    @property
    def settled(self) -> bool:
        """Whether the message was acknowledged or handed back."""
        return self._settled

    def ack(self) -> None:
        """Acknowledge: the message was processed and is not delivered again.

        Idempotent; a no-op on an already settled message.

        Raises:
            ClosedError: the consumer is closed (the message will be redelivered).
        """
        if not self._settled and self._settler is not None:
            self._settler._settle(self, nack=False, delay_level=0)

    def nack(self, delay_level: int | None = None) -> None:
        """Ask for redelivery later, with ``reconsume_times`` one higher.

        ``delay_level`` (1-18) picks the broker's delay level; ``None`` (or 0)
        uses the broker's schedule (10 s, 30 s, 1 min, ...). After the consumer's
        ``max_reconsume_times`` the message goes to the dead-letter topic
        ``%DLQ%<group>``.
        """
        if not self._settled and self._settler is not None:
            self._settler._settle(self, nack=True, delay_level=delay_level or 0)

    # -- request/reply (_request.py, issue 16)

    def reply(self, body: bytes | str, *, properties: Mapping[str, str] | None = None,
              timeout: float | None = None) -> None:
        """Answer a request sent with :meth:`Producer.request
        <rmq_native.Producer.request>` (or a Java/Go client's request):
        the reply goes to the requester, whose ``request()`` returns it.

        Reply before the message is settled (in a ``messages()`` loop: in
        the loop body). The consumer sends it through a producer of its own,
        started at the first reply.

        Raises:
            ClientStateError: the message is already settled.
            InvalidArgumentError: the message is not a request.
        """
        if self._settler is None:
            raise InvalidArgumentError("only a message received by a Consumer can be replied to")
        self._settler._reply(self, body, properties=properties, timeout=timeout)
