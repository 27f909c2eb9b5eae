"""The Reader: replays a topic without a consumer group."""

from __future__ import annotations

import collections
import datetime as _dt
import time
from typing import Any, Iterator, Mapping

from ._client import check_text, check_timeout, check_topic, check_type
from .admin import Admin, Position, QueueRef, to_ms
from .errors import InvalidArgumentError
from .message import Message

__all__ = ["Reader"]

_IDLE_SLEEP = 0.1  # seconds between rounds of pulls that found nothing new


class Reader:
    """Reads the messages of a topic between two positions, for replay,
    backfill and debugging, without a consumer group: it never commits an
    offset, so no group notices it.

    Args:
        name_server: ``"host:port"`` of the name server.
        topic: the topic to read (every queue on every broker).
        start: where to begin: ``"first"`` (the oldest stored message),
            ``"last"`` (only messages sent from now on), a ``datetime`` (the
            first message stored at or after it; naive = local time), or
            offsets per queue, ``{(broker_name, queue_id): offset}`` such as
            :meth:`positions` returns (``{queue_id: offset}`` means that queue
            id on every broker). Queues missing from a mapping are not read.
        end: where to stop (exclusive): ``None`` (follow the topic: new
            messages keep coming), ``"last"`` (the end as the reader opened),
            a ``datetime`` (messages stored before it), or offsets per queue
            (queues missing from the mapping have no end).
        expression, selector: a tag expression (``"a || b"``) or, with
            ``selector="sql92"``, an SQL92 expression over properties.
        batch_size: messages fetched per request (1..1024); the reader holds
            at most one batch, so its memory does not grow with the range.
        timeout: seconds per broker request.
        namespace, access_key, secret_key: as for :class:`Producer` (with
            ACL the account needs SUB permission on the group
            ``rmq_native_reader``, which the broker may create: the reader's
            requests name it, but nothing is ever committed for it).

    Messages come in per-queue order (queues interleaved), each with its
    ``broker_name``, ``queue_id`` and ``queue_offset``; there is nothing to
    acknowledge. Use it as a context manager, or call :meth:`close`.

    Raises:
        NoRouteError: the topic does not exist.
    """

    def __init__(
        self,
        name_server: str,
        topic: str,
        *,
        start: Position = "first",
        end: Position | None = None,
        expression: str = "*",
        selector: str = "tag",
        batch_size: int = 32,
        timeout: float = 5.0,
        namespace: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
    ) -> None:
        self.topic = check_topic(topic)
        check_text("expression", expression)
        if selector not in ("tag", "sql92"):
            raise InvalidArgumentError(f'selector must be "tag" or "sql92", not {selector!r}')
        check_type("batch_size", batch_size, int, "an int")
        if not 1 <= batch_size <= 1024:
            raise InvalidArgumentError(f"batch_size must be 1..1024, not {batch_size}")
        self._topic_b = self.topic.encode("utf-8")
        self._selector = selector.encode("utf-8")
        self._expression = expression.encode("utf-8")
        self._batch = batch_size
        self._admin = Admin(name_server, timeout=timeout, namespace=namespace, access_key=access_key,
                            secret_key=secret_key)
        try:
            stats = self._admin.topic_stats(self.topic)
            self._queues: list[QueueRef] = [(s.broker_name, s.queue_id) for s in stats]
            self._end: dict[QueueRef, int | None] = dict.fromkeys(self._queues)
            self._end_ms: int | None = None
            if end is not None:
                self._end_ms = to_ms(end, "end") if isinstance(end, _dt.datetime) else None
                self._end.update(self._resolve(end, "end"))
            self._pos: dict[QueueRef, int] = {}
            self._start_ms: int | None = None
            self._buffer: collections.deque[Message] = collections.deque()
            self._next_after: tuple[QueueRef, int] | None = None  # the buffered batch's queue and next offset
            self._turn = 0
            self.seek(start)
        except BaseException:
            self._admin.close()
            raise

    def __repr__(self) -> str:
        return f"<rmq_native.Reader topic={self.topic!r} {'closed' if self.closed else 'open'}>"

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._admin.closed

    def close(self) -> None:
        """Release the reader's connection resources. Idempotent."""
        self._admin.close()

    def _resolve(self, where: Any, name: str) -> dict[QueueRef, int]:
        """Offsets per queue for a position."""
        if where in ("first", "last"):
            stats = self._admin.topic_stats(self.topic)
            return {(s.broker_name, s.queue_id): s.min_offset if where == "first" else s.max_offset
                    for s in stats if (s.broker_name, s.queue_id) in self._end}
        if isinstance(where, _dt.datetime):
            return {q: o for q, o in self._admin.offsets_at(self.topic, where).items() if q in self._end}
        if isinstance(where, Mapping):
            out: dict[QueueRef, int] = {}
            for key, offset in where.items():
                check_type(f"the offset of {key!r}", offset, int, "an int")
                if offset < 0:
                    raise InvalidArgumentError(f"offsets must be >= 0, not {offset} for {key!r}")
                if isinstance(key, int) and not isinstance(key, bool):
                    queues = [q for q in self._queues if q[1] == key]
                elif isinstance(key, tuple) and len(key) == 2 and tuple(key) in self._end:
                    queues = [(str(key[0]), int(key[1]))]
                else:
                    queues = []
                if not queues:
                    raise InvalidArgumentError(
                        f"{name}: topic {self.topic!r} has no queue {key!r}; its queues are {self._queues}")
                for q in queues:
                    out[q] = offset
            return out
        raise InvalidArgumentError(
            f'{name} must be "first", "last", a datetime or a mapping of queue to offset, not {where!r}')

    def seek(self, start: Position) -> None:
        """Continue reading from ``start`` (as the constructor's ``start``)."""
        if start == "last" or start == "first" or isinstance(start, (_dt.datetime, Mapping)):
            pos = self._resolve(start, "start")
        else:
            raise InvalidArgumentError(
                f'start must be "first", "last", a datetime or a mapping of queue to offset, not {start!r}')
        self._start_ms = to_ms(start, "start") if isinstance(start, _dt.datetime) else None
        self._pos = pos
        self._buffer.clear()
        self._next_after = None

    def positions(self) -> dict[QueueRef, int]:
        """Where each queue stands: ``{(broker_name, queue_id): offset of the
        next message}``, past every message yielded so far.
        ``Reader(..., start=reader.positions())`` resumes exactly there."""
        return dict(self._pos)

    @property
    def finished(self) -> bool:
        """Whether every queue reached its end (never with ``end=None``)."""
        return not self._buffer and all(self._done(q) for q in self._pos)

    def _done(self, q: QueueRef) -> bool:
        end = self._end.get(q)
        return end is not None and self._pos[q] >= end

    # -- reading (also the seam of the asyncio layer: aio.py uses these and
    # public members only) ------------------------------------------------------

    _AIO_SEAM = ("_pop", "_fill")

    def _pop(self) -> Message | None:
        """The next buffered message (no I/O); its queue's position moves past it."""
        if not self._buffer:
            return None
        msg = self._buffer.popleft()
        q = (msg.broker_name, msg.queue_id)
        self._pos[q] = msg.queue_offset + 1
        if not self._buffer and self._next_after is not None:
            nq, nxt = self._next_after
            self._pos[nq] = max(self._pos[nq], nxt)
            self._next_after = None
        return msg

    def _fill(self) -> bool:
        """Pull the queues in turn until one has messages (buffered); False
        when none had any."""
        queues = [q for q in self._pos if not self._done(q)]
        for i in range(len(queues)):
            q = queues[(self._turn + i) % len(queues)]
            offset = self._pos[q]
            end = self._end.get(q)
            want = self._batch if end is None else max(1, min(self._batch, end - offset))
            msgs, nxt = self._admin._pull(self._topic_b, q, offset, want, self._selector, self._expression)
            if end is not None:
                nxt = min(nxt, end)
            keep = []
            for m in msgs:
                if end is not None and m.queue_offset >= end:
                    break
                if self._end_ms is not None and m.store_timestamp >= self._end_ms:
                    nxt = self._end[q] = m.queue_offset  # the time end lies here
                    break
                if self._start_ms is not None and m.store_timestamp < self._start_ms:
                    continue
                keep.append(m)
            if keep:
                self._turn = (self._turn + i + 1) % len(queues)
                self._buffer.extend(keep)
                self._next_after = (q, nxt)
                return True
            self._pos[q] = max(offset, nxt)
        return False

    def messages(self, timeout: float | None = None) -> Iterator[Message]:
        """Iterate over the messages from the current positions. The
        iteration ends at ``end`` or after ``timeout`` seconds without a
        message (None: never, unless ``end`` is reached)."""
        timeout = check_timeout("timeout", timeout, allow_none=True)
        last = time.monotonic()
        while True:
            msg = self._pop()
            if msg is None:
                if self.finished:
                    return
                if self._fill():
                    continue
                if self.finished:
                    return
                idle = time.monotonic() - last
                if timeout is not None and idle >= timeout:
                    return
                time.sleep(_IDLE_SLEEP if timeout is None else max(0.0, min(_IDLE_SLEEP, timeout - idle)))
                continue
            yield msg
            last = time.monotonic()
