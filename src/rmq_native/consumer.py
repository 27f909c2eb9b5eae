"""The consumer: a blocking iterator over a push consumer's messages."""

from __future__ import annotations

import collections
import datetime as _dt
import struct
import sys
import threading
from typing import Any, Iterator, Mapping

from . import _ffi
from ._client import (
    NativeClient,
    call_in_slices,
    check_name_server,
    check_text,
    check_timeout,
    check_topic,
    check_type,
    config_json,
)
from .errors import ClosedError, InvalidArgumentError
from .message import Message

__all__ = ["Consumer"]

# delivery id, queue, reconsume times, offset, born, store, then the lengths of
# topic, tags, keys, msg id, offset msg id, broker, properties, body
_HEAD = struct.Struct("<Qiiqqq8I")
_TEXT_CACHE: dict[bytes, str] = {}  # topics, tags, brokers repeat: decode each once


def _text(raw: bytes) -> str:
    text = _TEXT_CACHE.get(raw)
    if text is None:
        text = raw.decode("utf-8", "replace")
        if len(_TEXT_CACHE) < 4096:
            _TEXT_CACHE[raw] = text
    return text


def _decode(data: bytes, count: int, consumer: Consumer | None) -> list[Message]:
    """Decode the record layout of ``rmq_consumer_poll`` (see rmq_native.h)."""
    out = []
    pos = 0
    unpack_head, head_size = _HEAD.unpack_from, _HEAD.size
    for _ in range(count):
        did, qid, recons, qoff, born, store, n0, n1, n2, n3, n4, n5, n6, n7 = unpack_head(data, pos)
        p0 = pos + head_size
        p1 = p0 + n0
        p2 = p1 + n1
        p3 = p2 + n2
        p4 = p3 + n3
        p5 = p4 + n4
        p6 = p5 + n5
        p7 = p6 + n6
        pos = p7 + n7
        tags = data[p1:p2]
        keys = data[p2:p3]
        props = data[p6:p7]
        if props:
            parts = props[:-1].decode("utf-8", "replace").split("\0")
            properties = dict(zip(parts[::2], parts[1::2]))
        else:
            properties = {}
        out.append(
            Message(
                topic=_text(data[p0:p1]),
                body=data[p7:pos],
                tags=_text(tags) if tags else None,
                keys=keys.decode("utf-8", "replace").split() if keys else [],
                properties=properties,
                msg_id=data[p3:p4].decode("ascii", "replace"),
                queue_id=qid,
                queue_offset=qoff,
                reconsume_times=recons,
                born_timestamp=born,
                store_timestamp=store,
                offset_msg_id=data[p4:p5].decode("ascii", "replace"),
                broker_name=_text(data[p5:p6]),
                _delivery_id=did,
                _consumer=consumer,
            )
        )
    return out


class Consumer(NativeClient):
    """Receives messages of one consumer group, at least once.

    Args:
        name_server: ``"host:port"`` of the name server (several separated by ``;``).
        group: the consumer group; consumers of a group share the work
            (clustering) or each get everything (broadcasting).
        topic: the topic to subscribe to (or use ``subscriptions``).
        expression: tag expression such as ``"*"`` or ``"a || b"``, or an SQL92
            expression when ``selector="sql92"``.
        subscriptions: ``{topic: expression}`` to subscribe to several topics.
        selector: ``"tag"`` or ``"sql92"``.
        model: ``"clustering"`` or ``"broadcasting"``.
        from_where: where a new group starts: ``"last"``, ``"first"`` or a ``datetime``.
        max_reconsume_times: nacks before a message goes to ``%DLQ%<group>``
            (orderly: -1 = never). Broadcasting has no retry topic: a nacked
            message comes back locally after the delay, and after this many
            redeliveries (-1: 16) the next nack drops it with a warning on the
            ``rmq_native`` logger. A nack the broker does not confirm (e.g. a
            read-only broker) keeps the message: it comes back after the delay.
        max_inflight: messages per topic handed out and not yet settled.
        batch_size: messages fetched from the library per call.
        orderly: deliver each queue's messages strictly in order.

    Delivery contract: a message is acknowledged when the ``messages()``
    loop asks for the next one, or by ``msg.ack()``; ``msg.nack()`` asks for
    redelivery. When a loop is left with ``break``, the current message is
    settled when the consumer's ``with`` block exits: acknowledged on a normal
    exit, redelivered when the block raised. A message still unsettled at
    :meth:`close` (or at the next ``messages()``/``receive()`` call) is
    redelivered. Nothing is acknowledged before the application had it.
    """

    _kind = "consumer"

    def __init__(
        self,
        name_server: str,
        group: str,
        topic: str | None = None,
        expression: str = "*",
        *,
        subscriptions: Mapping[str, str] | None = None,
        selector: str = "tag",
        model: str = "clustering",
        from_where: str | _dt.datetime = "last",
        max_reconsume_times: int = 16,
        max_inflight: int = 128,
        batch_size: int = 32,
        orderly: bool = False,
        namespace: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        instance_name: str | None = None,
    ) -> None:
        self._handle = 0
        name_server = check_name_server(name_server)
        check_topic(group, "group")
        if selector not in ("tag", "sql92"):
            raise InvalidArgumentError(f'selector must be "tag" or "sql92", not {selector!r}')
        subs: dict[str, str] = {}
        if topic is not None:
            subs[check_topic(topic)] = check_text("expression", expression)
        if subscriptions is not None:
            if not isinstance(subscriptions, Mapping):
                raise TypeError("subscriptions must be a mapping of topic to expression")
            for t, e in subscriptions.items():
                if check_topic(t) in subs:
                    raise InvalidArgumentError(f"topic {t!r} is subscribed twice")
                subs[t] = check_text("expression", e)
        if not subs:
            raise InvalidArgumentError("give a topic or subscriptions")
        if model not in ("clustering", "broadcasting"):
            raise InvalidArgumentError(f'model must be "clustering" or "broadcasting", not {model!r}')
        timestamp = None
        if isinstance(from_where, _dt.datetime):
            ts = from_where if from_where.tzinfo is None else from_where.astimezone().replace(tzinfo=None)
            timestamp, where = ts.strftime("%Y%m%d%H%M%S"), "timestamp"
        elif from_where in ("last", "first"):
            where = str(from_where)
        else:
            raise InvalidArgumentError(f'from_where must be "last", "first" or a datetime, not {from_where!r}')
        for n, v in (("max_reconsume_times", max_reconsume_times), ("max_inflight", max_inflight),
                     ("batch_size", batch_size)):
            check_type(n, v, int, "an int")
        if max_reconsume_times < -1:
            raise InvalidArgumentError("max_reconsume_times must be >= -1")
        if max_inflight < 1 or batch_size < 1:
            raise InvalidArgumentError("max_inflight and batch_size must be >= 1")
        for n, s in (("namespace", namespace), ("access_key", access_key), ("secret_key", secret_key),
                     ("instance_name", instance_name)):
            if s is not None:
                check_text(n, s)
        self.name_server = name_server
        self.group = group
        self.subscriptions = dict(subs)
        self._batch = batch_size
        self._buffer: collections.deque[Message] = collections.deque()
        self._acks: list[int] = []  # auto-acknowledgements not yet sent
        self._held: Message | None = None  # yielded by messages(), not yet settled
        self._lock = threading.RLock()
        super().__init__(
            "rmq_consumer_new",
            "rmq_consumer_close",
            config_json(
                name_server=name_server,
                group=group,
                subscriptions=[{"topic": t, "type": selector, "expression": e} for t, e in subs.items()],
                model=model,
                from_where=where,
                timestamp=timestamp,
                max_reconsume_times=max_reconsume_times,
                max_inflight=max_inflight,
                orderly=orderly or None,
                namespace=namespace,
                access_key=access_key,
                secret_key=secret_key,
                instance_name=instance_name,
            ),
        )

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<rmq_native.Consumer group={self.group!r} subscriptions={self.subscriptions!r} {state}>"

    def __enter__(self) -> Consumer:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self._close(failed=exc_type is not None)

    # -- settling -----------------------------------------------------------

    def _send_settle(self, ids: list[int], nack: bool, delay_level: int) -> None:
        ffi = _ffi.ffi
        arr = ffi.new("uint64_t[]", ids)
        out = ffi.new("int32_t *")
        _ffi.check(_ffi.lib().rmq_consumer_ack(self._h(), arr, len(ids), int(nack), delay_level, out))

    def _flush_acks(self) -> None:
        if self._acks and self._handle:
            ids, self._acks = self._acks, []
            self._send_settle(ids, False, 0)

    def _settle(self, msg: Message, *, nack: bool, delay_level: int) -> None:
        check_type("delay_level", delay_level, int, "an int")
        if not 0 <= delay_level <= 18:
            raise InvalidArgumentError(f"delay_level must be 1..18, not {delay_level}")
        with self._lock:
            if msg._settled:
                return
            if not self._handle:
                raise ClosedError("rmq_native: consumer is closed; the message will be redelivered")
            msg._settled = True
            if self._held is msg:
                self._held = None
            self._send_settle([msg._delivery_id], nack, delay_level)

    def _auto_ack(self, msg: Message) -> None:
        if not msg._settled:
            msg._settled = True
            self._acks.append(msg._delivery_id)

    def _resolve_held(self, ack: bool) -> None:
        held, self._held = self._held, None
        if held is not None and not held._settled:
            if ack:
                self._auto_ack(held)
            else:
                self._settle(held, nack=True, delay_level=0)

    # -- receiving ----------------------------------------------------------

    def _fetch(self, timeout: float | None) -> bool:
        """Fill the local buffer; False when nothing came within timeout."""
        self._flush_acks()
        ffi = _ffi.ffi
        lib = _ffi.lib()
        out = ffi.new("uint8_t **")
        out_len = ffi.new("int64_t *")
        count = ffi.new("int32_t *")

        def attempt(ms: int) -> bool:
            _ffi.check(lib.rmq_consumer_poll(self._h(), self._batch, ms, out, out_len, count))
            if count[0] == 0:
                return False
            self._buffer.extend(_decode(_ffi.take_buffer(out[0], out_len[0]), count[0], self))
            return True

        return call_in_slices(attempt, timeout)

    def _next(self, timeout: float | None) -> Message | None:
        with self._lock:
            self._resolve_held(ack=False)
            if not self._buffer and not self._fetch(timeout):
                self._flush_acks()
                return None
            return self._buffer.popleft()

    def receive(self, timeout: float | None = None) -> Message | None:
        """Wait for one message; None when none came within ``timeout``
        seconds (None: wait for ever). Settle it with ``ack()`` or ``nack()``."""
        timeout = check_timeout("timeout", timeout, allow_none=True)
        return self._next(timeout)

    def messages(self, timeout: float | None = None) -> Iterator[Message]:
        """Iterate over messages; the iteration ends after ``timeout``
        seconds without a message (None: never).

        Each message is acknowledged when the loop asks for the next one.
        See the class docstring for ``break`` and exceptions.
        """
        timeout = check_timeout("timeout", timeout, allow_none=True)
        while True:
            msg = self._next(timeout)
            if msg is None:
                return
            # until the loop comes back for the next one, this message is
            # "held": break or an exception leave it to __exit__/close()
            self._held = msg
            yield msg
            self._advance(msg)

    def _advance(self, msg: Message) -> None:
        """The loop asked for the next message: acknowledge this one."""
        with self._lock:
            if self._held is msg:
                self._held = None
            self._auto_ack(msg)

    # -- closing ------------------------------------------------------------

    def _close(self, failed: bool) -> None:
        with self._lock:
            if self._handle:
                try:
                    self._resolve_held(ack=not failed)
                    self._flush_acks()
                except ClosedError:
                    pass
                self._buffer.clear()  # never handed out: redelivered
            self._release_handle()

    def close(self) -> None:
        """Stop consuming. Acknowledged messages are committed; unsettled
        ones are redelivered later to a consumer of the group. A message
        whose loop was left by an exception being handled now is redelivered.
        Idempotent."""
        self._close(failed=sys.exc_info()[0] is not None)
