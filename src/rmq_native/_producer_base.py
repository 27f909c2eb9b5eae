"""What both producers share: options, building ``rmq_message`` structs
(with the validation of every message field), send results, lifecycle."""

from __future__ import annotations

import datetime as _dt
import math
import time
import weakref
from typing import Any, Iterable, Mapping

from . import _ffi
from ._client import (
    MAX_MESSAGE_SIZE,
    NativeClient,
    check_name_server,
    check_text,
    check_timeout,
    check_topic,
    check_type,
    config_json,
    encode_keys,
    encode_properties,
    to_body,
    to_ms,
)
from .errors import InvalidArgumentError
from .message import SendResult, SendStatus
from .stats import ProducerStats

_attached: weakref.WeakKeyDictionary[Any, list[Any]] = weakref.WeakKeyDictionary()

_topics: dict[str, tuple[bytes, Any, int]] = {}  # checked topic -> what encoded_topic returns
_TOPICS_MAX = 4096


def encoded_topic(topic: str) -> tuple[bytes, Any, int]:
    """A topic checked (check_topic) and encoded: its UTF-8 bytes, a cffi
    buffer of them (what an ``rmq_message``'s topic points to; it keeps them
    alive) and their length. Cached: a producer sends to few topics, so this
    skips the regular expression and the encoding on almost every send."""
    try:
        t = _topics.get(topic)
    except TypeError:  # unhashable: check_topic says what is wrong
        t = None
    if t is None or type(topic) is not str:
        b = check_topic(topic).encode("utf-8")
        t = (b, _ffi.ffi.from_buffer(b), len(b))
        if len(_topics) >= _TOPICS_MAX:
            _topics.clear()
        _topics[topic] = t
    return t


def attach(struct: Any, buffers: Any) -> None:
    """Keep buffers (one buffer or a list of them, as _message_buffers
    returns) alive exactly as long as struct (a cdata that owns its
    memory), whose fields point into them."""
    _attached[struct] = buffers


_STATUS = {s.value: s for s in SendStatus}
_new = object.__new__


def _result(topic: str, out: Any, msg_ids: tuple[str, ...] = ()) -> SendResult:
    """The SendResult of a filled ``rmq_send_result``. Built without the frozen
    dataclass's ``__init__`` (one ``object.__setattr__`` per field, 2-3 µs a
    send): the same fields, set at once; SendResult has no ``__post_init__``."""
    string = _ffi.ffi.string
    status = out.status
    r = _new(SendResult)
    r.__dict__.update(
        topic=topic,
        msg_id=string(out.msg_id).decode(),
        queue_id=out.queue_id,
        queue_offset=out.queue_offset,
        status=_STATUS[status] if status in _STATUS else SendStatus(status),
        offset_msg_id=string(out.offset_msg_id).decode(),
        broker_name=string(out.broker_name).decode("utf-8", "replace"),
        transaction_id=string(out.transaction_id).decode(),
        msg_ids=msg_ids,
    )
    return r


_MAX_DELAY = 10 * 365 * 86400  # the broker itself accepts far less (days)


def _deliver_at_ms(deliver_at: _dt.datetime | None, delay: float | None) -> int:
    if deliver_at is not None and delay is not None:
        raise InvalidArgumentError("give deliver_at or delay, not both")
    if deliver_at is not None:
        check_type("deliver_at", deliver_at, _dt.datetime, "a datetime")
        return max(1, int(deliver_at.timestamp() * 1000))
    if delay is not None:
        d = check_timeout("delay", delay) or 0.0
        if not math.isfinite(d) or d > _MAX_DELAY:
            raise InvalidArgumentError(f"delay must be a finite number of seconds up to {_MAX_DELAY}, not {delay!r}")
        return int((time.time() + d) * 1000)
    return 0



class ProducerBase(NativeClient):
    """Options, message building and lifecycle shared by both producers."""

    _kind = "producer"

    def __init__(
        self,
        new_fn: str,
        name_server: str,
        group: str,
        *,
        send_timeout: float,
        retries: int,
        namespace: str | None,
        access_key: str | None,
        secret_key: str | None,
        instance_name: str | None,
        compress_over: int,
        compress_level: int,
        max_message_size: int,
        trace: bool = False,
        trace_topic: str | None = None,
    ) -> None:
        self._handle = 0
        name_server = check_name_server(name_server)
        check_topic(group, "group")
        timeout = check_timeout("send_timeout", send_timeout)
        if not timeout:
            raise InvalidArgumentError("send_timeout must be > 0 seconds")
        for n, v in (("retries", retries), ("compress_over", compress_over), ("compress_level", compress_level),
                     ("max_message_size", max_message_size)):
            check_type(n, v, int, "an int")
            if v < 0:
                raise InvalidArgumentError(f"{n} must be >= 0, not {v}")
        if not 1 <= compress_level <= 9:
            raise InvalidArgumentError(f"compress_level must be 1..9, not {compress_level}")
        for n, s in (("namespace", namespace), ("access_key", access_key), ("secret_key", secret_key),
                     ("instance_name", instance_name)):
            if s is not None:
                check_text(n, s)
        self._send_timeout = timeout
        self._send_timeout_ms = to_ms(timeout)
        self._max_message_size = max_message_size or MAX_MESSAGE_SIZE
        self.name_server = name_server
        self.group = group
        # -- observability (stats.py, issue 16)
        check_type("trace", trace, bool, "a bool")
        if trace_topic is not None:
            check_topic(trace_topic, "trace_topic")
        self._trace = trace
        self._stats = ProducerStats(group)
        super().__init__(
            new_fn,
            "rmq_producer_close",
            config_json(
                name_server=name_server,
                group=group,
                send_timeout_ms=to_ms(timeout),
                retries=retries,
                namespace=namespace,
                access_key=access_key,
                secret_key=secret_key,
                instance_name=instance_name,
                compress_over=compress_over,
                compress_level=compress_level,
                max_message_size=self._max_message_size,
                trace=trace or None,
                trace_topic=trace_topic,
            ),
        )

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<rmq_native.{type(self).__name__} group={self.group!r} name_server={self.name_server!r} {state}>"

    def stats(self) -> dict[str, Any]:
        """Counters of this producer (exact, cheap to call at any time):

        ``sent`` / ``send_failed``: messages whose send succeeded / raised
        (a batch counts its messages); ``in_flight``: sends started and not
        finished; ``queued``: asynchronous sends not finished (part of
        ``in_flight``); ``p50_ms`` / ``p99_ms``: send latency over the last
        :data:`rmq_native.stats.LATENCY_WINDOW` successful sends (None before
        the first); ``latency_window``: how many sends these cover.
        """
        return self._stats.snapshot()

    def _timeout_ms(self, timeout: float | None) -> int:
        if timeout is None:
            return self._send_timeout_ms
        t = check_timeout("timeout", timeout)
        return to_ms(t or 0)

    def _body(self, body: Any) -> bytes:
        """A message body checked (not empty, not over max_message_size) as bytes."""
        body_b = to_body(body)
        if not body_b:
            raise InvalidArgumentError("message body must not be empty")
        if len(body_b) > self._max_message_size:
            raise InvalidArgumentError(
                f"message body of {len(body_b)} bytes exceeds the maximum message size of "
                f"{self._max_message_size} bytes"
            )
        return body_b

    def _body_into(self, m: Any, body: Any) -> Any:
        """Check a body (:meth:`_body`) and point the ``rmq_message`` m to
        it; returns the cffi buffer m points to."""
        body_b = body if type(body) is bytes else to_body(body)
        n = len(body_b)
        if not n or n > self._max_message_size:
            self._body(body_b)  # raises
        buf = _ffi.ffi.from_buffer(body_b)
        m.body, m.body_len = buf, n
        return buf

    def _fill(
        self,
        m: Any,
        topic: tuple[bytes, Any, int],
        body: Any,
        tags: str | None = None,
        keys: str | Iterable[str] | None = None,
        properties: Mapping[str, str] | None = None,
        delay_level: int | None = None,
        deliver_at_ms: int = 0,
        sharding_key: str | None = None,
    ) -> list[Any]:
        """Validate one message and fill the ``rmq_message`` struct m (all
        zero: as ``ffi.new`` makes it) with the topic (from
        :func:`encoded_topic`), the body and the options given; returns the
        buffers it points to (bind them to m's owner with :func:`attach`)."""
        body_buf = self._body_into(m, body)
        tags_b = b"" if tags is None else check_text("tags", tags).encode("utf-8")
        keys_b = encode_keys(keys)
        props_b = encode_properties(properties)
        shard_b = b"" if sharding_key is None else check_text("sharding_key", sharding_key).encode("utf-8")
        if delay_level is not None:
            check_type("delay_level", delay_level, int, "an int")
            if not 0 <= delay_level <= 18:
                raise InvalidArgumentError(f"delay_level must be 0..18, not {delay_level}")
            if delay_level and deliver_at_ms:
                raise InvalidArgumentError("give delay_level or a delivery time, not both")
        from_buffer = _ffi.ffi.from_buffer
        # an empty field stays (NULL, 0) as ffi.new made it: no buffer to make and keep
        _, m.topic, m.topic_len = topic
        bufs = [topic[1], body_buf]
        if tags_b:
            bufs.append(from_buffer(tags_b))
            m.tags, m.tags_len = bufs[-1], len(tags_b)
        if keys_b:
            bufs.append(from_buffer(keys_b))
            m.keys, m.keys_len = bufs[-1], len(keys_b)
        if props_b:
            bufs.append(from_buffer(props_b))
            m.properties, m.properties_len = bufs[-1], len(props_b)
        if shard_b:
            bufs.append(from_buffer(shard_b))
            m.sharding_key, m.sharding_key_len = bufs[-1], len(shard_b)
        m.deliver_at_ms = deliver_at_ms
        m.delay_level = delay_level or 0
        return bufs

    def _message(self, topic: str, body: Any, **options: Any) -> Any:
        """A new ``rmq_message`` (cdata) for one send, its buffers bound to it."""
        m, bufs = self._message_buffers(topic, body, **options)
        attach(m, bufs)
        return m

    def _message_buffers(
        self,
        topic: str,
        body: Any,
        tags: str | None = None,
        keys: str | Iterable[str] | None = None,
        properties: Mapping[str, str] | None = None,
        delay_level: int | None = None,
        deliver_at: _dt.datetime | None = None,
        delay: float | None = None,
        sharding_key: str | None = None,
    ) -> tuple[Any, Any]:
        """A new ``rmq_message`` (cdata) and the buffers it points to, for a
        call that uses it only while the caller keeps both (a synchronous
        send reads them in place, an asynchronous one copies them before
        the call returns). A plain message (a topic and a body) skips the
        options."""
        m = _ffi.ffi.new("rmq_message *")
        if (tags is None and keys is None and properties is None and delay_level is None and deliver_at is None
                and delay is None and sharding_key is None):
            _, m.topic, m.topic_len = encoded_topic(topic)
            return m, self._body_into(m, body)
        deliver_at_ms = 0 if deliver_at is None and delay is None else _deliver_at_ms(deliver_at, delay)
        return m, self._fill(m, encoded_topic(topic), body, tags=tags, keys=keys, properties=properties,
                             delay_level=delay_level, deliver_at_ms=deliver_at_ms, sharding_key=sharding_key)


