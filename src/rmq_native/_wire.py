"""The record layouts of rmq_native.h, decoded in one place.

Every ``*_poll`` function of the library fills one buffer with records;
go/wire.go encodes them and this module decodes them (both are tested
against tests/wire_fixtures.json). All integers are little-endian.
"""

from __future__ import annotations

import struct
from typing import Any, Callable, Iterator, NamedTuple, Tuple

from .message import Message, SendResult, Settler

__all__ = ["Completion", "Reply", "messages", "message_texts", "message_properties", "properties", "completions",
           "result_texts", "replies", "log_records"]

# id, queue, reconsume times, offset, born, store, then the lengths of
# topic, tags, keys, msg id, offset msg id, broker, properties, body
MESSAGE = struct.Struct("<Qiiqqq8I")
# token, status, queue, offset, send status, the lengths of msg id, offset msg
# id, broker, transaction id, error
COMPLETION = struct.Struct("<QiiqiIIIII")
REPLY = struct.Struct("<QiI")  # token, status, length of the error text
LOG = struct.Struct("<iI")  # level, length of the text
FIELD = struct.Struct("<I")  # length of a field

Buffer = Any  # bytes, or a cffi buffer of the library's memory

_TEXT_CACHE: dict[bytes, str] = {}  # topics, tags, brokers repeat: decode each once


def _text(raw: bytes) -> str:
    text = _TEXT_CACHE.get(raw)
    if text is None:
        text = raw.decode("utf-8", "replace")
        if len(_TEXT_CACHE) < 4096:
            _TEXT_CACHE[raw] = text
    return text


def messages(data: Buffer, count: int, settler: Settler | None) -> list[Message]:
    """Records in the layout of ``rmq_consumer_poll`` (also transaction
    checks, found and pulled messages), from bytes or the library's buffer
    itself (slices are copies: the messages outlive it). Each record's id
    becomes the message's ``_id``; settler settles them (None: nothing to
    settle)."""
    out: list[Message] = []
    append = out.append
    pos = 0
    unpack_head, head_size = MESSAGE.unpack_from, MESSAGE.size
    new = object.__new__
    for _ in range(count):
        mid, qid, recons, qoff, born, store, n0, n1, n2, n3, n4, n5, n6, n7 = unpack_head(data, pos)
        p0 = pos + head_size
        p7 = p0 + n0 + n1 + n2 + n3 + n4 + n5 + n6
        pos = p7 + n7
        # the fields of Message, set without the keyword call of __init__
        # (a third of the decoding time); its texts and properties stay
        # undecoded until one of them is read (_Undecoded, below): half
        # of what is left, and most consumers read the body only
        msg = new(Message)
        msg.__dict__ = {
            "body": data[p7:pos],
            "queue_id": qid,
            "queue_offset": qoff,
            "reconsume_times": recons,
            "born_timestamp": born,
            "store_timestamp": store,
            "_texts": (data[p0:p7], n0, n1, n2, n3, n4, n5),
            "_id": mid,
            "_settler": settler,
            "_settled": False,
        }
        append(msg)
    return out


Texts = Tuple[bytes, int, int, int, int, int, int]
"""A message record's topic, tags, keys, msg id, offset msg id, broker and
properties back to back (``_texts`` of a received Message), and the lengths
of all but the properties."""


def message_texts(t: Texts) -> tuple[str, str | None, list[str], str, str, str]:
    """topic, tags, keys, msg_id, offset_msg_id and broker_name of a record."""
    raw, n0, n1, n2, n3, n4, n5 = t
    p2 = n0 + n1
    p3 = p2 + n2
    p4 = p3 + n3
    p5 = p4 + n4
    return (_text(raw[:n0]), _text(raw[n0:p2]) if n1 else None,
            raw[p2:p3].decode("utf-8", "replace").split() if n2 else [],
            raw[p3:p4].decode("ascii", "replace"), raw[p4:p5].decode("ascii", "replace"),
            _text(raw[p5 : p5 + n5]))


def message_properties(t: Texts) -> dict[str, str]:
    """The properties of a record (those after its other texts)."""
    raw, n0, n1, n2, n3, n4, n5 = t
    start = n0 + n1 + n2 + n3 + n4 + n5
    return properties(raw[start:-1]) if len(raw) > start else {}


MESSAGE_TEXTS = ("topic", "tags", "keys", "msg_id", "offset_msg_id", "broker_name")
"""The fields of a received Message that message_texts decodes, in order."""


class _Undecoded:
    """A field of a value made from a record (a Message made by
    :func:`messages`, a SendResult made from a :class:`Completion`),
    decoded from the record (the value's ``_texts``) when first read,
    together with the fields ``decode`` returns with it (``names``, in
    order). Not a data descriptor: the decoded values are stored in the
    value and answer every later read; a value made by its constructor has
    every field and never reaches here. Threads racing on a first read all
    get what the first one stored."""

    def __init__(self, name: str, names: tuple[str, ...], decode: Callable[[Any], tuple[Any, ...]]) -> None:
        self.name, self.names, self.decode = name, names, decode

    def __get__(self, obj: object, owner: type | None = None) -> Any:
        if obj is None:
            return self
        d = obj.__dict__
        texts = d.get("_texts")
        if texts is None:
            raise AttributeError(f"{type(obj).__name__!r} object has no attribute {self.name!r}")
        for name, value in zip(self.names, self.decode(texts)):
            d.setdefault(name, value)
        return d[self.name]


def _install(cls: type, names: tuple[str, ...], decode: Callable[[Any], tuple[Any, ...]]) -> None:
    for name in names:
        setattr(cls, name, _Undecoded(name, names, decode))


def properties(raw: bytes) -> dict[str, str]:
    """A message record's properties, ``k\\0v\\0...`` without the last NUL."""
    if not raw:
        return {}
    parts = raw.decode("utf-8", "replace").split("\0")
    return dict(zip(parts[::2], parts[1::2]))


def _message_size(data: bytes, pos: int) -> int:
    """The size of the message record at pos."""
    lengths: tuple[int, ...] = MESSAGE.unpack_from(data, pos)[6:]
    return MESSAGE.size + sum(lengths)


ResultTexts = Tuple[bytes, int, int, int]
"""msg_id, offset_msg_id, broker_name and transaction_id back to back (UTF-8),
and the lengths of the first three."""


class Completion(NamedTuple):
    """One record of ``rmq_producer_poll_completions``. The texts of a
    result stay undecoded in ``texts`` (see :func:`result_texts`): most
    callers never read them."""

    token: int
    status: int  # RMQ_OK or an RMQ_ERR_* code
    queue_id: int
    queue_offset: int
    send_status: int
    texts: ResultTexts
    error: str

    @property
    def msg_id(self) -> str:
        return result_texts(self.texts)[0]


def result_texts(texts: ResultTexts) -> tuple[str, str, str, str]:
    """msg_id, offset_msg_id, broker_name, transaction_id of a completion."""
    raw, n0, n1, n2 = texts
    p1, p2 = n0 + n1, n0 + n1 + n2
    return (raw[:n0].decode("utf-8", "replace"), raw[n0:p1].decode("utf-8", "replace"), _text(raw[p1:p2]),
            raw[p2:].decode("utf-8", "replace"))


RESULT_TEXTS = ("msg_id", "offset_msg_id", "broker_name", "transaction_id")
"""The fields of a SendResult that result_texts decodes, in order."""

# installed here, where the undecoded values are made (message.py, a lower
# layer, does not know the record layouts); the properties of a message
# are decoded apart from its texts (most readers of one want neither)
_install(Message, MESSAGE_TEXTS, message_texts)
_install(Message, ("properties",), lambda t: (message_properties(t),))
_install(SendResult, RESULT_TEXTS, result_texts)


def completions(data: bytes, count: int) -> list[Completion]:
    """Records of ``rmq_producer_poll_completions``."""
    out: list[Completion] = []
    append = out.append
    make = Completion._make
    unpack, head_size = COMPLETION.unpack_from, COMPLETION.size
    pos = 0
    for _ in range(count):
        token, status, queue_id, offset, send_status, n0, n1, n2, n3, n4 = unpack(data, pos)
        p0 = pos + head_size
        p4 = p0 + n0 + n1 + n2 + n3
        pos = p4 + n4
        append(make((token, status, queue_id, offset, send_status, (data[p0:p4], n0, n1, n2),
                     data[p4:pos].decode("utf-8", "replace") if n4 else "")))
    return out


class Reply(NamedTuple):
    """One record of ``rmq_producer_poll_replies``: the reply, or the error."""

    token: int
    status: int  # RMQ_OK or an RMQ_ERR_* code
    error: str
    message: Message | None  # when status is RMQ_OK


def replies(data: bytes, count: int) -> Iterator[Reply]:
    """Records of ``rmq_producer_poll_replies``."""
    pos = 0
    for _ in range(count):
        token, status, n = REPLY.unpack_from(data, pos)
        pos += REPLY.size
        error = data[pos : pos + n].decode("utf-8", "replace")
        pos += n
        message = None
        if status == 0:
            size = _message_size(data, pos)
            message = messages(data[pos : pos + size], 1, None)[0]
            pos += size
        yield Reply(token, status, error, message)


def log_records(data: bytes, count: int) -> Iterator[tuple[int, str]]:
    """Records of ``rmq_log_poll``: (level, text)."""
    pos = 0
    for _ in range(count):
        level, n = LOG.unpack_from(data, pos)
        pos += LOG.size
        yield level, data[pos : pos + n].decode("utf-8", "replace")
        pos += n
