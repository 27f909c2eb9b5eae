"""Producers: plain (sync, async, oneway, batch) and transactional."""

from __future__ import annotations

import atexit
import concurrent.futures
import datetime as _dt
import itertools
import logging
import math
import struct
import sys
import threading
import time
import weakref
from typing import Any, Callable, Iterable, Mapping, Union

from . import _ffi, _request
from ._client import (
    MAX_MESSAGE_SIZE,
    NativeClient,
    call_in_slices,
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
from .errors import ClosedError, InvalidArgumentError, SendUnknownError, error_for_code
from .message import Message, OutgoingMessage, SendResult, SendStatus, TransactionState
from .stats import ProducerStats

__all__ = ["Producer", "TransactionProducer"]

logger = logging.getLogger("rmq_native")

BatchItem = Union[bytes, str, OutgoingMessage, Message]
_COMPLETION = struct.Struct("<QiiqiI")  # token, status, queue, offset, send status, first field length
_LEN = struct.Struct("<I")


def _result(topic: str, out: Any, msg_ids: tuple[str, ...] = ()) -> SendResult:
    string = _ffi.ffi.string
    return SendResult(
        topic=topic,
        msg_id=string(out.msg_id).decode(),
        queue_id=out.queue_id,
        queue_offset=out.queue_offset,
        status=SendStatus(out.status),
        offset_msg_id=string(out.offset_msg_id).decode(),
        broker_name=string(out.broker_name).decode("utf-8", "replace"),
        transaction_id=string(out.transaction_id).decode(),
        msg_ids=msg_ids,
    )


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


def _pull_loop(ref: weakref.ReferenceType[Any], poll: str, max_items: int,
               handle: Callable[[Any, int, bytes, int], None]) -> None:
    """Body of a producer's helper thread: pull records with the library
    function ``poll`` in 200 ms slices and pass each batch to
    ``handle(owner, handle_id, data, count)``. It holds its owner weakly and
    ends when the owner is closed or gone."""
    ffi = _ffi.ffi
    lib = _ffi.lib()
    poll_fn = getattr(lib, poll)
    out = ffi.new("uint8_t **")
    out_len = ffi.new("int64_t *")
    count = ffi.new("int32_t *")
    while True:
        owner = ref()
        h = owner._handle if owner is not None else 0
        del owner
        if not h:
            return
        try:
            if poll_fn(h, max_items, 200, out, out_len, count) != 0:
                time.sleep(0.01)  # closed: the owner's handle goes to 0 in a moment
                continue
            if not count[0]:
                continue
            data = _ffi.take_buffer(out[0], out_len[0])
            owner = ref()
            if owner is not None:
                handle(owner, h, data, count[0])
        except Exception:  # the thread must outlive any failure: report, go on
            logger.exception("rmq_native: %s failed; the thread goes on", threading.current_thread().name)
            time.sleep(0.05)  # no busy loop if the failure repeats
        owner = None


def _resolve_futures(producer: Producer, h: int, data: bytes, count: int) -> None:
    """Resolve the futures of finished asynchronous sends (completion records)."""
    pos = 0
    for _ in range(count):
        token, status, queue_id, offset, send_status, n = _COMPLETION.unpack_from(data, pos)
        pos += _COMPLETION.size
        fields = []
        for i in range(5):
            if i:
                (n,) = _LEN.unpack_from(data, pos)
                pos += 4
            fields.append(data[pos : pos + n].decode("utf-8", "replace"))
            pos += n
        with producer._futures_lock:
            topic, fut = producer._futures.pop(token, ("", None))
        if fut is None:
            continue
        if status:
            err = error_for_code(status, fields[4])
            if isinstance(err, SendUnknownError) and not err.msg_id:
                err.msg_id = fields[0]
            fut.set_exception(err)
        else:
            fut.set_result(SendResult(topic, fields[0], queue_id, offset, SendStatus(send_status), fields[1],
                                      fields[2], fields[3]))


def _answer_checks(producer: TransactionProducer, h: int, data: bytes, count: int) -> None:
    """Answer the broker's transaction checks with the producer's check(msg)."""
    from .consumer import _decode

    for msg in _decode(data, count, None):
        try:
            state = TransactionState(producer._check(msg))
        except Exception:
            logger.exception("rmq_native: transaction check failed; answering UNKNOWN")
            state = TransactionState.UNKNOWN
        _ffi.lib().rmq_tx_check_reply(h, msg._delivery_id, int(state))


class _ProducerBase(NativeClient):
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
        t = self._send_timeout if timeout is None else check_timeout("timeout", timeout)
        return to_ms(t or 0)

    def _fill(
        self,
        m: Any,
        keep: list[Any],
        topic_b: bytes,
        body: Any,
        tags: str | None = None,
        keys: str | Iterable[str] | None = None,
        properties: Mapping[str, str] | None = None,
        delay_level: int | None = None,
        deliver_at_ms: int = 0,
        sharding_key: str | None = None,
    ) -> None:
        """Validate one message and fill the ``rmq_message`` struct m; the
        buffers it points to are appended to keep (they must outlive m)."""
        body_b = to_body(body)
        if not body_b:
            raise InvalidArgumentError("message body must not be empty")
        if len(body_b) > self._max_message_size:
            raise InvalidArgumentError(
                f"message body of {len(body_b)} bytes exceeds the maximum message size of "
                f"{self._max_message_size} bytes"
            )
        tags_b = b"" if tags is None else check_text("tags", tags).encode("utf-8")
        keys_b = encode_keys(keys)
        props_b = encode_properties(properties)
        shard_b = b"" if sharding_key is None else check_text("sharding_key", sharding_key).encode("utf-8")
        if delay_level is not None:
            check_type("delay_level", delay_level, int, "an int")
            if not 0 <= delay_level <= 18:
                raise InvalidArgumentError(f"delay_level must be 1..18, not {delay_level}")
            if delay_level and deliver_at_ms:
                raise InvalidArgumentError("give delay_level or a delivery time, not both")
        from_buffer = _ffi.ffi.from_buffer
        bufs = [from_buffer(b) for b in (topic_b, body_b, tags_b, keys_b, props_b, shard_b)]
        keep.extend(bufs)
        m.topic, m.topic_len = bufs[0], len(topic_b)
        m.body, m.body_len = bufs[1], len(body_b)
        m.tags, m.tags_len = bufs[2], len(tags_b)
        m.keys, m.keys_len = bufs[3], len(keys_b)
        m.properties, m.properties_len = bufs[4], len(props_b)
        m.sharding_key, m.sharding_key_len = bufs[5], len(shard_b)
        m.deliver_at_ms = deliver_at_ms
        m.delay_level = delay_level or 0

    def _message(self, topic: str, body: Any, **options: Any) -> tuple[Any, list[Any]]:
        m = _ffi.ffi.new("rmq_message *")
        keep: list[Any] = []
        deliver_at_ms = _deliver_at_ms(options.pop("deliver_at", None), options.pop("delay", None))
        self._fill(m, keep, check_topic(topic).encode("utf-8"), body, deliver_at_ms=deliver_at_ms, **options)
        return m, keep


class Producer(_ProducerBase):
    """Sends messages. Safe to share between threads.

    Args:
        name_server: ``"host:port"`` of the name server (several separated by ``;``).
        group: the producer group.
        send_timeout: seconds one send may take, retries included.
        retries: how many times a failed send is retried (on the next queue, never
            after the send's deadline; every attempt carries the same msg_id).
        namespace: prefix isolating topics and groups.
        access_key, secret_key: ACL credentials.
        instance_name: the client instance name; unique per producer by default.
        compress_over: bodies of at least this many bytes are compressed when that
            makes them smaller (0: never).
        compress_level: zlib level 1-9.
        max_message_size: larger bodies are rejected before sending.
        trace: record every send in the broker's message trace topic (RocketMQ
            message trace, as the Java client's ``enableMsgTrace``).
        trace_topic: the trace topic (default ``RMQ_SYS_TRACE_TOPIC``).

    Use as a context manager, or call :meth:`close` (idempotent).
    """

    def __init__(
        self,
        name_server: str,
        group: str = "rmq_native_producer",
        *,
        send_timeout: float = 3.0,
        retries: int = 2,
        namespace: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        instance_name: str | None = None,
        compress_over: int = 4096,
        compress_level: int = 5,
        max_message_size: int = MAX_MESSAGE_SIZE,
        trace: bool = False,
        trace_topic: str | None = None,
    ) -> None:
        super().__init__(
            "rmq_producer_new", name_server, group, send_timeout=send_timeout, retries=retries,
            namespace=namespace, access_key=access_key, secret_key=secret_key, instance_name=instance_name,
            compress_over=compress_over, compress_level=compress_level, max_message_size=max_message_size,
            trace=trace, trace_topic=trace_topic,
        )
        self._futures: dict[int, tuple[str, concurrent.futures.Future[SendResult]]] = {}
        self._futures_lock = threading.Lock()
        self._tokens = itertools.count(1)
        self._pump: threading.Thread | None = None
        # Closed by _close_at_exit (flushing first) rather than by the
        # finalizer's own exit hook, which runs before it and would drop
        # queued sends.
        self._finalizer.detach()
        self._finalizer = weakref.finalize(self, _discard, self._handle)
        self._finalizer.atexit = False
        _open_producers.add(self)

    def __enter__(self) -> Producer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def send(
        self,
        topic: str,
        body: bytes | str,
        *,
        tags: str | None = None,
        keys: str | Iterable[str] | None = None,
        properties: Mapping[str, str] | None = None,
        delay_level: int | None = None,
        deliver_at: _dt.datetime | None = None,
        delay: float | None = None,
        sharding_key: str | None = None,
        timeout: float | None = None,
    ) -> SendResult:
        """Send one message and wait until the broker stored it.

        Args:
            topic: the topic.
            body: the payload; ``str`` is sent as UTF-8.
            tags: one tag, used by consumers' tag expressions.
            keys: one key or several (no spaces), indexed by the broker.
            properties: user properties (str to str).
            delay_level: the broker's delay level, 1-18 (1 s, 5 s, 10 s, 30 s, 1 min ... 2 h).
            deliver_at: deliver at this time (RocketMQ 5 timer messages).
            delay: deliver after this many seconds (RocketMQ 5 timer messages).
            sharding_key: messages with the same key go to the same queue, in order.
            timeout: seconds for this send (default: the producer's send_timeout).

        Raises:
            InvalidArgumentError: bad topic, empty or oversized body, bad tags/keys/properties.
            TypeError: an argument of the wrong type.
            TimeoutError: not sent within the timeout (no attempt reached the broker).
            SendUnknownError: (a TimeoutError) the message was written but not
                confirmed in time: it may be stored; ``e.msg_id`` is its id
                (sending again may duplicate it).
            UnreachableError, NoRouteError, BrokerError, ForbiddenError: the send
                failed after the producer's retries (each with the same msg_id).
            MessageRejectedError: the broker refused the message for good.
            ClosedError: the producer is closed.
        """
        op, properties = self._stats.begin(topic, properties, tags=tags, keys=keys)  # stats.py
        try:
            m, keep = self._message(topic, body, tags=tags, keys=keys, properties=properties, delay_level=delay_level,
                                    deliver_at=deliver_at, delay=delay, sharding_key=sharding_key)
            out = _ffi.ffi.new("rmq_send_result *")
            _ffi.check(_ffi.lib().rmq_producer_send(self._h(), m, self._timeout_ms(timeout), out))
        except BaseException as e:
            op.fail(e)
            raise
        result = _result(topic, out)
        op.done(result)
        return result

    def send_oneway(
        self,
        topic: str,
        body: bytes | str,
        *,
        tags: str | None = None,
        keys: str | Iterable[str] | None = None,
        properties: Mapping[str, str] | None = None,
        sharding_key: str | None = None,
    ) -> None:
        """Send without waiting for the broker's answer (fire and forget):
        fastest, but a message lost on the way is not reported."""
        op, properties = self._stats.begin(topic, properties, tags=tags, keys=keys)  # stats.py
        try:
            m, keep = self._message(topic, body, tags=tags, keys=keys, properties=properties,
                                    sharding_key=sharding_key)
            _ffi.check(_ffi.lib().rmq_producer_send_oneway(self._h(), m))
        except BaseException as e:
            op.fail(e)
            raise
        op.done(None)

    def send_batch(self, topic: str, items: Iterable[BatchItem], *, timeout: float | None = None) -> SendResult:
        """Send several messages of one topic in one round trip.

        ``items`` are bodies (``bytes``/``str``) or :class:`OutgoingMessage`
        (or received :class:`Message`) objects carrying their own tags, keys
        and properties. The whole batch must fit ``max_message_size``.
        Returns the batch's result; ``msg_ids`` lists every message id.
        """
        topic_b = check_topic(topic).encode("utf-8")
        items = list(items)
        if not items:
            raise InvalidArgumentError("a batch needs at least one message")
        ffi = _ffi.ffi
        arr = ffi.new("rmq_message[]", len(items))
        keep: list[Any] = []
        for i, item in enumerate(items):
            try:
                if isinstance(item, (bytes, bytearray, memoryview, str)):
                    self._fill(arr[i], keep, topic_b, item)
                elif hasattr(item, "body"):
                    self._fill(arr[i], keep, topic_b, item.body, tags=item.tags, keys=item.keys,
                               properties=item.properties)
                else:
                    raise TypeError(f"batch items must be bytes, str or OutgoingMessage, not {type(item).__name__}")
            except (TypeError, ValueError) as e:
                raise type(e)(f"batch item {i}: {e}") from None
        out = ffi.new("rmq_send_result *")
        ids = ffi.new("uint8_t **")
        ids_len = ffi.new("int64_t *")
        op, _ = self._stats.begin(topic, None, count=len(items), operation="send_batch")  # stats.py
        try:
            _ffi.check(_ffi.lib().rmq_producer_send_batch(self._h(), arr, len(items), self._timeout_ms(timeout),
                                                          out, ids, ids_len))
        except BaseException as e:
            op.fail(e)
            raise
        msg_ids = tuple(_ffi.take_buffer(ids[0], ids_len[0]).decode().split(","))
        result = _result(topic, out, msg_ids)
        op.done(result)
        return result

    def send_async(
        self,
        topic: str,
        body: bytes | str,
        *,
        tags: str | None = None,
        keys: str | Iterable[str] | None = None,
        properties: Mapping[str, str] | None = None,
        delay_level: int | None = None,
        deliver_at: _dt.datetime | None = None,
        delay: float | None = None,
        sharding_key: str | None = None,
        timeout: float | None = None,
    ) -> concurrent.futures.Future[SendResult]:
        """Start sending and return at once with a Future of the SendResult.

        Takes the options of :meth:`send`. Bad arguments raise here;
        failures of the send itself arrive through the future. Callbacks
        added to the future run on the producer's completion thread.
        """
        op, properties = self._stats.begin(topic, properties, tags=tags, keys=keys, queued=True)  # stats.py
        try:
            m, keep = self._message(topic, body, tags=tags, keys=keys, properties=properties,
                                    delay_level=delay_level, deliver_at=deliver_at, delay=delay,
                                    sharding_key=sharding_key)
        except BaseException as e:
            op.fail(e)
            raise
        fut: concurrent.futures.Future[SendResult] = concurrent.futures.Future()
        fut.set_running_or_notify_cancel()
        fut.add_done_callback(op.future_done)
        token = next(self._tokens)
        with self._futures_lock:
            self._futures[token] = (topic, fut)
            if self._pump is None:
                self._pump = threading.Thread(
                    target=_pull_loop, args=(weakref.ref(self), "rmq_producer_poll_completions", 512, _resolve_futures),
                    name="rmq_native-completions", daemon=True,
                )
                self._pump.start()
        try:
            _ffi.check(_ffi.lib().rmq_producer_send_async(self._h(), m, self._timeout_ms(timeout), token))
        except BaseException as e:
            with self._futures_lock:
                self._futures.pop(token, None)
            op.fail(e)
            raise
        return fut

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every asynchronous send finished; False on timeout."""
        timeout = check_timeout("timeout", timeout, allow_none=True)

        def idle(ms: int) -> bool:
            with self._futures_lock:
                pending = [f for _, f in self._futures.values()]
            if not pending:
                return True
            concurrent.futures.wait(pending, timeout=ms / 1000)
            return False

        return call_in_slices(idle, timeout)

    # -- request/reply (_request.py, issue 16) ---------------------------------

    def request(
        self,
        topic: str,
        body: bytes | str,
        *,
        timeout: float = 3.0,
        tags: str | None = None,
        keys: str | Iterable[str] | None = None,
        properties: Mapping[str, str] | None = None,
    ) -> Message:
        """Send a request and wait for the reply a consumer sends with
        :meth:`Message.reply <rmq_native.Message.reply>`; returns the reply.

        Raises:
            TimeoutError: no reply within ``timeout`` seconds.
            ClientStateError: the producer has ``trace=True`` (not supported).
            Others as :meth:`send`.
        """
        return _request.request(self, topic, body, timeout=timeout, tags=tags, keys=keys, properties=properties)

    def request_async(
        self,
        topic: str,
        body: bytes | str,
        *,
        timeout: float = 3.0,
        tags: str | None = None,
        keys: str | Iterable[str] | None = None,
        properties: Mapping[str, str] | None = None,
    ) -> concurrent.futures.Future[Message]:
        """Start a request and return at once with a Future of the reply
        (it fails with TimeoutError when none comes within ``timeout``)."""
        return _request.request_async(self, topic, body, timeout=timeout, tags=tags, keys=keys,
                                      properties=properties)

    def close(self) -> None:
        """Wait for asynchronous sends (at most the send timeout), then shut
        the producer down. Idempotent.

        Sends still queued after that wait are not sent: their futures fail
        with :class:`ClosedError`. Sends already written are waited for (each
        at most its timeout) and their futures get their real outcome.
        """
        self._close(self._send_timeout + 1)

    def _close(self, wait: float) -> None:
        """close(), waiting at most wait seconds for queued sends to finish."""
        with self._close_lock:
            h = self._handle
            if not h:
                return
            self.flush(wait)
            lib = _ffi.lib()
            lib.rmq_producer_close(h)
            # take the outcomes left (the completion thread may take some
            # too) until the library released the handle
            out = _ffi.ffi.new("uint8_t **")
            out_len = _ffi.ffi.new("int64_t *")
            count = _ffi.ffi.new("int32_t *")
            while lib.rmq_producer_poll_completions(h, 512, 0, out, out_len, count) == 0:
                if count[0]:
                    _resolve_futures(self, h, _ffi.take_buffer(out[0], out_len[0]), count[0])
            self._handle = 0
            self._finalizer.detach()
            _open_producers.discard(self)
        _request.fail_pending(self)  # requests waiting for a reply
        if self._pump is not None and self._pump is not threading.current_thread():
            self._pump.join(2)  # it may hold outcomes it took before the handle went
        with self._futures_lock:
            left, self._futures = self._futures, {}
        for _, fut in left.values():
            fut.set_exception(ClosedError("rmq_native: producer closed before the send completed"))

    def _close_at_exit(self) -> None:
        """Close at interpreter exit: flush (at most the send timeout), close,
        and warn (logger and stderr) how many queued sends were not sent."""
        with self._futures_lock:
            pending = [f for _, f in self._futures.values()]
        self._close(self._send_timeout)
        if not pending:
            return
        failed = sum(1 for f in pending if not f.done() or f.exception() is not None)
        if failed:
            text = (f"rmq_native: at exit, {failed} of {len(pending)} asynchronous sends of producer "
                    f"group={self.group!r} still pending without close() could not be sent "
                    f"within the send timeout ({self._send_timeout:g} s)")
            logger.warning(text)
            try:
                print(text, file=sys.stderr, flush=True)
            except (OSError, ValueError):  # stderr closed
                pass


_open_producers: weakref.WeakSet[Producer] = weakref.WeakSet()


def _discard(handle: int) -> None:
    """Finalizer of a producer collected without close(): shut it down and
    drop the outcomes nobody can receive any more."""
    try:
        lib = _ffi.lib()
        lib.rmq_producer_close(handle)
        out = _ffi.ffi.new("uint8_t **")
        out_len = _ffi.ffi.new("int64_t *")
        count = _ffi.ffi.new("int32_t *")
        while lib.rmq_producer_poll_completions(handle, 512, 0, out, out_len, count) == 0:
            _ffi.take_buffer(out[0], out_len[0])
    except Exception:  # pragma: no cover - the process may be shutting down
        pass


@atexit.register
def _close_producers_at_exit() -> None:
    """At interpreter exit, flush and close the producers still open."""
    for p in list(_open_producers):
        try:
            p._close_at_exit()
        except Exception:
            logger.exception("rmq_native: closing a producer at exit failed")


class TransactionProducer(_ProducerBase):
    """Sends transactional messages.

    ``check(msg) -> TransactionState`` answers the broker's questions about
    transactions that ended ``UNKNOWN`` (or whose producer died); it runs on
    the producer's check thread. Other options as for :class:`Producer`.
    """

    def __init__(
        self,
        name_server: str,
        group: str,
        check: Callable[[Message], TransactionState],
        *,
        send_timeout: float = 3.0,
        retries: int = 2,
        namespace: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        instance_name: str | None = None,
        compress_over: int = 4096,
        compress_level: int = 5,
        max_message_size: int = MAX_MESSAGE_SIZE,
        trace: bool = False,
        trace_topic: str | None = None,
    ) -> None:
        if not callable(check):
            raise TypeError("check must be callable: check(msg) -> TransactionState")
        self._check = check
        super().__init__(
            "rmq_tx_producer_new", name_server, group, send_timeout=send_timeout, retries=retries,
            namespace=namespace, access_key=access_key, secret_key=secret_key, instance_name=instance_name,
            compress_over=compress_over, compress_level=compress_level, max_message_size=max_message_size,
            trace=trace, trace_topic=trace_topic,
        )
        threading.Thread(
            target=_pull_loop, args=(weakref.ref(self), "rmq_tx_poll_checks", 16, _answer_checks),
            name="rmq_native-tx-checks", daemon=True,
        ).start()

    def __enter__(self) -> TransactionProducer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Shut the producer down. Idempotent."""
        self._release_handle()

    def send_in_transaction(
        self,
        topic: str,
        body: bytes | str,
        *,
        execute: Callable[[Message], TransactionState],
        tags: str | None = None,
        keys: str | Iterable[str] | None = None,
        properties: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> SendResult:
        """Send a half message, run ``execute(msg)``, then commit or roll back.

        ``execute`` returns a :class:`TransactionState`: ``COMMIT`` delivers
        the message, ``ROLLBACK`` discards it, ``UNKNOWN`` lets the broker
        ask ``check`` later. An exception in ``execute`` rolls back and is
        re-raised.
        """
        if not callable(execute):
            raise TypeError("execute must be callable: execute(msg) -> TransactionState")
        op, properties = self._stats.begin(topic, properties, tags=tags, keys=keys, operation="send_in_transaction")
        try:
            m, keep = self._message(topic, body, tags=tags, keys=keys, properties=properties)
            ffi = _ffi.ffi
            lib = _ffi.lib()
            out = ffi.new("rmq_send_result *")
            tx = ffi.new("uint64_t *")
            _ffi.check(lib.rmq_tx_send(self._h(), m, self._timeout_ms(timeout), out, tx))
        except BaseException as e:
            op.fail(e)
            raise
        msg = Message(topic=topic, body=to_body(body), tags=tags, keys=encode_keys(keys).decode().split(),
                      properties=dict(properties or {}), msg_id=ffi.string(out.msg_id).decode(), queue_id=0,
                      queue_offset=0, reconsume_times=0, born_timestamp=int(time.time() * 1000), store_timestamp=0)
        state = TransactionState.ROLLBACK
        try:
            try:
                verdict = execute(msg)
                if verdict not in (0, 1, 2):
                    raise TypeError(f"execute must return a TransactionState, not {verdict!r}")
                state = TransactionState(verdict)
            finally:
                _ffi.check(lib.rmq_tx_end(self._h(), tx[0], int(state), out))
        except BaseException as e:
            op.fail(e)
            raise
        result = _result(topic, out)
        op.done(result)
        return result
