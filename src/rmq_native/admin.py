"""Topic administration and operations: inspection, consumer lag, offset
reset and message lookup."""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass
from typing import Any, Mapping, Tuple, Union

from . import _ffi, _wire
from ._client import (
    NativeClient,
    check_name_server,
    check_text,
    check_timeout,
    check_topic,
    check_type,
    config_json,
)
from ._client import to_ms as _seconds_to_ms
from .errors import InvalidArgumentError
from .message import Message

__all__ = ["Admin", "QueueStats", "QueueLag", "QueueRef", "Position"]

QueueRef = Tuple[str, int]
"""A queue: ``(broker_name, queue_id)``."""

Position = Union[str, _dt.datetime, Mapping[Any, int]]
"""Where to start or end: ``"first"``, ``"last"``, a ``datetime``, or offsets
per queue (``{(broker_name, queue_id): offset}``, or ``{queue_id: offset}``
when every broker's queue of that id is meant)."""


@dataclass(frozen=True)
class QueueStats:
    """One queue of a topic (:meth:`Admin.topic_stats`).

    ``min_offset`` is the oldest stored message's offset, ``max_offset`` the
    offset the next message will get (so ``max_offset - min_offset``
    messages are stored); ``last_update`` the store time of the newest
    message (None when the queue never had one).
    """

    broker_name: str
    queue_id: int
    min_offset: int
    max_offset: int
    last_update: _dt.datetime | None


@dataclass(frozen=True)
class QueueLag:
    """How far a consumer group is behind on one queue (:meth:`Admin.consumer_lag`).

    ``broker_offset`` is the queue's end, ``consumer_offset`` the group's
    committed offset, ``lag`` the messages in between.
    """

    topic: str
    broker_name: str
    queue_id: int
    broker_offset: int
    consumer_offset: int
    lag: int
    last_consumed: _dt.datetime | None
    """Store time of the last message the group committed (None if unknown)."""


def _time(ms: int) -> _dt.datetime | None:
    return _dt.datetime.fromtimestamp(ms / 1000, _dt.timezone.utc) if ms > 0 else None


def to_ms(when: Any, name: str) -> int:
    """A ``datetime`` as ms since the epoch (a naive one is local time)."""
    if not isinstance(when, _dt.datetime):
        raise TypeError(f"{name} must be a datetime, not {type(when).__name__}")
    return int(when.timestamp() * 1000)


def _take_json(fn: Any, *args: Any) -> Any:
    ffi = _ffi.ffi
    out = ffi.new("uint8_t **")
    n = ffi.new("int64_t *")
    _ffi.check(fn(*args, out, n))
    return json.loads(_ffi.take_buffer(out[0], n[0]) or b"null")


def _offsets(rows: Any) -> dict[QueueRef, int]:
    return {(r["broker_name"], r["queue_id"]): r["offset"] for r in rows}


class Admin(NativeClient):
    """Creates and deletes topics on every master broker of a cluster.

    Args:
        name_server: ``"host:port"`` of the name server.
        timeout: seconds per broker request.
        namespace, access_key, secret_key: as for :class:`Producer`.
    """

    _kind = "admin"

    def __init__(
        self,
        name_server: str,
        *,
        timeout: float = 5.0,
        namespace: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
    ) -> None:
        self._handle = 0
        name_server = check_name_server(name_server)
        t = check_timeout("timeout", timeout)
        for n, s in (("namespace", namespace), ("access_key", access_key), ("secret_key", secret_key)):
            if s is not None:
                check_text(n, s)
        self.name_server = name_server
        super().__init__(
            "rmq_admin_new",
            "rmq_admin_close",
            config_json(name_server=name_server, timeout_ms=_seconds_to_ms(t or 0), namespace=namespace,
                        access_key=access_key, secret_key=secret_key),
        )

    def __repr__(self) -> str:
        return f"<rmq_native.Admin name_server={self.name_server!r} {'closed' if self.closed else 'open'}>"

    def __enter__(self) -> Admin:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Release the admin client. Idempotent."""
        self._release_handle()

    def create_topic(self, topic: str, queues: int = 4, *, cluster: str | None = None) -> None:
        """Create (or update) ``topic`` with ``queues`` read/write queues on
        every master broker (of ``cluster`` if given)."""
        t = check_topic(topic).encode("utf-8")
        check_type("queues", queues, int, "an int")
        if not 1 <= queues <= 1024:
            raise InvalidArgumentError(f"queues must be 1..1024, not {queues}")
        c = b"" if cluster is None else check_text("cluster", cluster).encode("utf-8")
        _ffi.check(_ffi.lib().rmq_admin_create_topic(self._h(), t, len(t), queues, c, len(c)))

    def delete_topic(self, topic: str) -> None:
        """Delete ``topic`` from every master broker and the name servers."""
        t = check_topic(topic).encode("utf-8")
        _ffi.check(_ffi.lib().rmq_admin_delete_topic(self._h(), t, len(t)))

    # -- operations ---------------------------------------------------------

    def list_topics(self, *, include_system: bool = False) -> list[str]:
        """The names of the cluster's topics, sorted (of this admin's
        namespace only, without its prefix, when it has one).

        ``include_system=True`` also lists the broker's own topics
        (``TBW102``, ``rmq_sys_*``, ``%RETRY%<group>``, ``%DLQ%<group>``, ...).
        """
        check_type("include_system", include_system, bool, "a bool")
        names: list[str] = _take_json(_ffi.lib().rmq_admin_list_topics, self._h(), int(include_system))
        return names

    def topic_stats(self, topic: str) -> list[QueueStats]:
        """Every queue of ``topic`` on every broker, with its offsets.

        Raises:
            NoRouteError: the topic does not exist.
        """
        t = check_topic(topic).encode("utf-8")
        rows = _take_json(_ffi.lib().rmq_admin_topic_stats, self._h(), t, len(t))
        return [QueueStats(r["broker_name"], r["queue_id"], r["min_offset"], r["max_offset"],
                           _time(r["last_update_ms"])) for r in rows]

    def offsets_at(self, topic: str, when: _dt.datetime) -> dict[QueueRef, int]:
        """Per queue, the offset of the first message stored at or after
        ``when`` (the queue's end when none was); a naive ``datetime`` is
        local time."""
        t = check_topic(topic).encode("utf-8")
        ms = to_ms(when, "when")
        if ms < 0:
            raise InvalidArgumentError(f"when must not be before 1970: {when!r}")
        return _offsets(_take_json(_ffi.lib().rmq_admin_offsets_at, self._h(), t, len(t), ms))

    def consumer_lag(self, group: str, topic: str | None = None) -> list[QueueLag]:
        """How far ``group`` is behind, per queue: of ``topic``, or of every
        topic the group has offsets for (its retry topic left out).

        Raises:
            InvalidArgumentError: the group has no offsets (it does not
                exist, or never consumed ``topic``).
            NoRouteError: ``topic`` does not exist.
        """
        g = check_topic(group, "group").encode("utf-8")
        t = b"" if topic is None else check_topic(topic).encode("utf-8")
        rows = _take_json(_ffi.lib().rmq_admin_consumer_lag, self._h(), g, len(g), t, len(t))
        return [QueueLag(r["topic"], r["broker_name"], r["queue_id"], r["broker_offset"], r["consumer_offset"],
                         max(0, r["broker_offset"] - r["consumer_offset"]), _time(r["last_timestamp_ms"]))
                for r in rows]

    def total_lag(self, group: str, topic: str | None = None) -> int:
        """The sum of :meth:`consumer_lag` over every queue: the messages
        ``group`` has not consumed yet."""
        return sum(q.lag for q in self.consumer_lag(group, topic))

    def reset_offset(self, group: str, topic: str, to: str | _dt.datetime) -> dict[QueueRef, int]:
        """Move ``group``'s offsets of ``topic`` on every broker, and return
        the new offset of each queue.

        ``to`` is ``"first"`` (replay everything still stored), ``"last"``
        (skip to the end: only new messages) or a ``datetime`` (the first
        message stored at or after it; naive = local time).

        The group's consumers must be stopped: their next start continues
        from the new offsets. While one is online nothing is changed and
        :class:`ClientStateError` is raised (a running consumer keeps its own
        position and would commit it over the reset).

        Raises:
            InvalidArgumentError: the group does not exist.
            NoRouteError: the topic does not exist.
            ClientStateError: consumers of the group are online.
        """
        g = check_topic(group, "group").encode("utf-8")
        t = check_topic(topic).encode("utf-8")
        lib = _ffi.lib()
        if isinstance(to, _dt.datetime):
            mode, ms = lib.RMQ_RESET_TIME, to_ms(to, "to")
            if ms < 0:
                raise InvalidArgumentError(f"to must not be before 1970: {to!r}")
        elif to == "first":
            mode, ms = lib.RMQ_RESET_FIRST, 0
        elif to == "last":
            mode, ms = lib.RMQ_RESET_LAST, 0
        else:
            raise InvalidArgumentError(f'to must be "first", "last" or a datetime, not {to!r}')
        return _offsets(_take_json(lib.rmq_admin_reset_offset, self._h(), g, len(g), t, len(t), mode, ms))

    def find_messages(
        self,
        topic: str,
        *,
        key: str | None = None,
        msg_id: str | None = None,
        begin: _dt.datetime | None = None,
        end: _dt.datetime | None = None,
        limit: int = 32,
    ) -> list[Message]:
        """Look messages of ``topic`` up, oldest first.

        Give exactly one of ``key`` (a message key, through the brokers'
        index) or ``msg_id`` (``SendResult.msg_id``, or the broker-side
        ``offset_msg_id``). ``begin``/``end`` limit the search to messages
        stored in that time (default: all); at most ``limit`` are returned.
        The messages are copies: there is nothing to acknowledge. Nothing
        found: an empty list. The broker indexes a message a few
        milliseconds after storing it.

        Raises:
            NoRouteError: the topic does not exist.
        """
        t = check_topic(topic).encode("utf-8")
        if (key is None) == (msg_id is None):
            raise InvalidArgumentError("give exactly one of key and msg_id")
        k = b"" if key is None else check_text("key", key).encode("utf-8")
        i = b"" if msg_id is None else check_text("msg_id", msg_id).encode("utf-8")
        if (key is not None and not k) or (msg_id is not None and not i):
            raise InvalidArgumentError("key and msg_id must not be empty")
        check_type("limit", limit, int, "an int")
        if not 1 <= limit <= 65536:
            raise InvalidArgumentError(f"limit must be 1..65536, not {limit}")
        b = 0 if begin is None else to_ms(begin, "begin")
        e = 0 if end is None else to_ms(end, "end")
        if b < 0 or (end is not None and e < b):
            raise InvalidArgumentError("begin must not be before 1970 nor after end")
        ffi = _ffi.ffi
        out = ffi.new("uint8_t **")
        n = ffi.new("int64_t *")
        count = ffi.new("int32_t *")
        _ffi.check(_ffi.lib().rmq_admin_find_messages(self._h(), t, len(t), k, len(k), i, len(i), b, e, limit,
                                                       out, n, count))
        return _wire.messages(_ffi.take_buffer(out[0], n[0]), count[0], None)

    def _pull(self, topic: bytes, queue: QueueRef, offset: int, max_messages: int, selector: bytes,
              expression: bytes) -> tuple[list[Message], int]:
        """One pull of a Reader: the messages from ``offset`` and the next offset."""
        ffi = _ffi.ffi
        out = ffi.new("uint8_t **")
        n = ffi.new("int64_t *")
        count = ffi.new("int32_t *")
        nxt = ffi.new("int64_t *")
        broker = queue[0].encode("utf-8")
        _ffi.check(_ffi.lib().rmq_admin_pull(self._h(), topic, len(topic), broker, len(broker), queue[1], offset,
                                             max_messages, selector, len(selector), expression, len(expression),
                                             out, n, count, nxt))
        return _wire.messages(_ffi.take_buffer(out[0], n[0]), count[0], None), int(nxt[0])
