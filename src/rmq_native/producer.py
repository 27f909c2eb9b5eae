"""The producer: sync, asynchronous, oneway and batch sends, and requests.

``TransactionProducer`` lives in ``_transaction.py``, the futures of
asynchronous sends in ``_completions.py``, what both producers share in
``_producer_base.py``; all are importable from here.
"""

from __future__ import annotations

import concurrent.futures
import datetime as _dt
import itertools
import threading
import weakref
from typing import Any, Iterable, Mapping, Union

from . import _completions, _ffi, _pump, _request
from ._client import MAX_MESSAGE_SIZE, call_in_slices, check_timeout, check_type, to_body
from ._producer_base import ProducerBase, _result, encoded_topic
from ._transaction import TransactionProducer
from .errors import ClosedError, InvalidArgumentError, TimeoutError
from .message import Message, OutgoingMessage, SendResult

__all__ = ["Producer", "TransactionProducer"]

BatchItem = Union[bytes, str, OutgoingMessage, Message]


class Producer(ProducerBase):
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
        max_pending, max_pending_bytes: back-pressure of :meth:`send_async`:
            while this many asynchronous sends, or sends of this many body
            bytes, are unfinished, a new one waits (at most its timeout) until
            one finishes. Bounds the memory of a burst (about 3 KiB per send
            plus its body).

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
        max_pending: int = 10_000,
        max_pending_bytes: int = 100 * 1024 * 1024,
    ) -> None:
        for n, v in (("max_pending", max_pending), ("max_pending_bytes", max_pending_bytes)):
            check_type(n, v, int, "an int")
            if v < 1:
                raise InvalidArgumentError(f"{n} must be >= 1, not {v}")
        super().__init__(
            "rmq_producer_new", name_server, group, send_timeout=send_timeout, retries=retries,
            namespace=namespace, access_key=access_key, secret_key=secret_key, instance_name=instance_name,
            compress_over=compress_over, compress_level=compress_level, max_message_size=max_message_size,
            trace=trace, trace_topic=trace_topic,
        )
        # token -> (topic, future, stats op, body size) of the unfinished asynchronous sends
        self._futures: dict[int, tuple[str, _completions.SendFuture, Any, int]] = {}
        self._futures_lock = threading.Lock()
        self.max_pending, self.max_pending_bytes = max_pending, max_pending_bytes
        self._pending_bytes = 0  # of the bodies in _futures
        self._room = threading.Condition(self._futures_lock)  # notified when sends finish and one waits
        self._room_waiters = 0
        self._tokens = itertools.count(1)
        self._pump: threading.Thread | None = None
        # Closed by _completions.close_at_exit (flushing first) rather than by the
        # finalizer's own exit hook, which runs before it and would drop
        # queued sends.
        self._finalizer.detach()
        self._finalizer = weakref.finalize(self, _completions.discard, self._handle)
        self._finalizer.atexit = False
        _completions.open_producers.add(self)

    _AIO_SEAM = ("_has_room", "_wait_room")

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
            # m points into buffers, alive as long as this frame (the library reads them in place during the call)
            m, buffers = self._message_buffers(topic, body, tags, keys, properties, delay_level, deliver_at, delay,
                                               sharding_key)
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
            m, buffers = self._message_buffers(topic, body, tags=tags, keys=keys, properties=properties,
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
        topic_t = encoded_topic(topic)
        items = list(items)
        if not items:
            raise InvalidArgumentError("a batch needs at least one message")
        ffi = _ffi.ffi
        from_buffer = ffi.from_buffer
        # arr points into these buffers, alive as long as this frame (the library reads them in place during the call)
        _, topic_buf, topic_len = topic_t
        buffers: list[Any] = []
        # with OpenTelemetry on, every message of the batch carries the batch span's trace context
        op, trace_ctx = self._stats.begin(topic, {}, count=len(items), operation="send_batch")  # stats.py
        try:
            bodies = None if trace_ctx else self._plain_bodies(items)
            if bodies is not None:
                # plain bodies only: every item shares the topic's buffer; the array is filled by cffi from tuples
                buffers = list(map(from_buffer, bodies))
                arr = ffi.new("rmq_message[]", [(topic_buf, topic_len, buf, len(body))
                                                for buf, body in zip(buffers, bodies)])
            else:
                arr = ffi.new("rmq_message[]", len(items))
            for i, item in enumerate(items if bodies is None else ()):
                try:
                    if isinstance(item, (bytes, bytearray, memoryview, str)):
                        buffers += self._fill(arr[i], topic_t, item, properties=trace_ctx)
                    elif hasattr(item, "body"):
                        props = {**(item.properties or {}), **trace_ctx} if trace_ctx else item.properties
                        buffers += self._fill(arr[i], topic_t, item.body, tags=item.tags, keys=item.keys,
                                              properties=props)
                    else:
                        raise TypeError(
                            f"batch items must be bytes, str or OutgoingMessage, not {type(item).__name__}")
                except (TypeError, ValueError) as e:
                    raise type(e)(f"batch item {i}: {e}") from None
            out = ffi.new("rmq_send_result *")
            ids = ffi.new("uint8_t **")
            ids_len = ffi.new("int64_t *")
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

        While ``max_pending`` sends (or ``max_pending_bytes`` of bodies) are
        unfinished, waits until one finishes, at most the send's timeout
        (``timeout`` or the producer's ``send_timeout``), then raises
        :class:`~rmq_native.TimeoutError` (nothing was sent). A send from
        a future's callback never waits (it runs on the thread that
        finishes sends).
        """
        op, properties = self._stats.begin(topic, properties, tags=tags, keys=keys, queued=True)  # stats.py
        try:
            # m points into buffers, alive as long as this frame (the library copies during the call)
            m, buffers = self._message_buffers(topic, body, tags, keys, properties, delay_level, deliver_at, delay,
                                               sharding_key)
        except BaseException as e:
            op.fail(e)
            raise
        fut = _completions.SendFuture()  # counted in stats by resolve_futures, before it resolves
        token = next(self._tokens)
        size = m.body_len
        with self._futures_lock:
            if not self._has_room() and threading.current_thread() is not self._pump:
                try:
                    self._await_room(timeout)
                except BaseException as e:
                    op.fail(e)
                    raise
            self._futures[token] = (topic, fut, op, size)
            self._pending_bytes += size
            if self._pump is None:
                self._pump = _pump.start(self, "rmq_producer_poll_completions", 512, _completions.resolve_futures,
                                         "rmq_native-completions")
        try:
            _ffi.check(_ffi.lib().rmq_producer_send_async(self._h(), m, self._timeout_ms(timeout), token))
        except BaseException as e:
            with self._futures_lock:
                if self._futures.pop(token, None) is not None:
                    self._finished(size)
            op.fail(e)
            raise
        return fut

    @property
    def pending(self) -> int:
        """Asynchronous sends started and not finished yet."""
        return len(self._futures)

    def _has_room(self) -> bool:
        """Whether a new asynchronous send goes without waiting (see max_pending)."""
        return len(self._futures) < self.max_pending and self._pending_bytes < self.max_pending_bytes

    def _await_room(self, timeout: float | None) -> None:
        """Wait (holding _futures_lock, released while waiting) until
        :meth:`_has_room`, in slices (Ctrl+C works), at most the send's timeout."""
        limit = self._timeout_ms(timeout) / 1000
        self._room_waiters += 1
        try:
            if not call_in_slices(lambda ms: self._room.wait_for(self._has_room, ms / 1000), limit):
                raise TimeoutError(
                    f"rmq_native: {len(self._futures)} asynchronous sends ({self._pending_bytes} bytes) are "
                    f"unfinished (max_pending={self.max_pending}, max_pending_bytes={self.max_pending_bytes}) "
                    f"and none finished within {limit:g} s; nothing was sent")
        finally:
            self._room_waiters -= 1
        self._h()  # closed while waiting: ClosedError

    def _wait_room(self, timeout: float | None) -> None:
        """Wait until :meth:`_has_room` (at most the send's timeout), for a
        caller that must not wait in send_async (the asyncio layer)."""
        with self._futures_lock:
            if not self._has_room():
                self._await_room(timeout)

    def _finished(self, size: int) -> None:
        """An entry of _futures of a body of size bytes was removed (the
        caller holds _futures_lock): wake a sender waiting for room."""
        self._pending_bytes -= size
        if self._room_waiters:
            self._room.notify_all()

    def _plain_bodies(self, items: list[Any]) -> list[bytes] | None:
        """The checked bodies of a batch whose items are all plain bodies
        (bytes or str), else None."""
        bodies = []
        limit = self._max_message_size
        for i, item in enumerate(items):
            if type(item) is bytes:
                body = item
            elif isinstance(item, (bytes, bytearray, memoryview, str)):
                body = to_body(item)
            else:
                return None
            if not body or len(body) > limit:
                try:
                    self._body(body)  # raises
                except ValueError as e:
                    raise type(e)(f"batch item {i}: {e}") from None
            bodies.append(body)
        return bodies

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every asynchronous send finished; False on timeout."""
        timeout = check_timeout("timeout", timeout, allow_none=True)

        def idle(ms: int) -> bool:
            with self._futures_lock:
                pending = [f for _, f, _, _ in self._futures.values()]
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
                    _completions.resolve_futures(self, h, _ffi.take_buffer(out[0], out_len[0]), count[0])
            self._handle = 0
            self._finalizer.detach()
            _completions.open_producers.discard(self)
        _request.fail_pending(self)  # requests waiting for a reply
        if self._pump is not None and self._pump is not threading.current_thread():
            self._pump.join(2)  # it may hold outcomes it took before the handle went
        with self._futures_lock:
            left, self._futures = self._futures, {}
            self._pending_bytes = 0
            self._room.notify_all()  # senders waiting for room: ClosedError
        for _, fut, op, _ in left.values():
            err = ClosedError("rmq_native: producer closed before the send completed")
            op.fail(err)
            fut.set_exception(err)
