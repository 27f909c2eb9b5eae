"""The consumer: a blocking iterator over a push consumer's messages."""

from __future__ import annotations

import collections
import datetime as _dt
import threading
import time
from typing import Any, Iterator, Mapping

from . import _ffi, _request, _wire
from ._client import (
    NativeClient,
    check_name_server,
    check_text,
    check_timeout,
    check_topic,
    check_type,
    config_json,
)
from .errors import ClientStateError, ClosedError, InvalidArgumentError
from .message import Message
from .producer import Producer
from .stats import ConsumerStats

__all__ = ["Consumer"]

_SLICE_MS = 200  # longest wait inside the library: Ctrl+C and close() act between slices


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
        max_inflight: messages handed out (or fetched for this consumer) and
            not yet settled, all topics together.
        batch_size: messages fetched from the library per call.
        max_prefetch_mib: MiB of message bodies fetched ahead per queue and
            not yet handed out (1..1024; besides at most 768 messages per
            queue). Bounds the memory of a consumer slower than its backlog:
            about queues × (this + 1) MiB of bodies.
        orderly: deliver each queue's messages strictly in order.
        trace: record every delivery in the broker's message trace topic
            (RocketMQ message trace, as the Java client's ``enableMsgTrace``).
        trace_topic: the trace topic (default ``RMQ_SYS_TRACE_TOPIC``).

    Delivery contract (at least once): a message is acknowledged only when
    the intent is certain — the ``messages()`` loop asks for the next one,
    or the application calls ``msg.ack()``. ``msg.nack()`` asks for
    redelivery. The message a loop holds when it is left — by ``break`` or
    by an exception, wherever that exception is caught — is *not*
    acknowledged: it goes back to the front of the local buffer, so the
    next ``receive()``/``messages()`` returns it again, and :meth:`close`
    releases it for redelivery by the broker. Call ``msg.ack()`` before
    ``break`` when the message was handled. Every message not settled at
    :meth:`close` is redelivered.

    Threads: ``ack()``/``nack()`` work from any thread and never wait for
    a ``receive()`` in progress (the consumer's lock is never held while
    waiting), so a receiving thread may hand messages to worker threads
    that settle them (use ``receive()`` there, not ``messages()``, whose
    loop acknowledges when it moves on). :meth:`close` from any thread
    wakes a waiting ``receive()`` within about 0.2 s: it raises
    :class:`~rmq_native.ClosedError`, and a ``messages()`` loop ends.
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
        max_inflight: int = 1024,
        batch_size: int = 32,
        max_prefetch_mib: int = 8,
        orderly: bool = False,
        namespace: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        instance_name: str | None = None,
        trace: bool = False,
        trace_topic: str | None = None,
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
                     ("batch_size", batch_size), ("max_prefetch_mib", max_prefetch_mib)):
            check_type(n, v, int, "an int")
        if max_reconsume_times < -1:
            raise InvalidArgumentError("max_reconsume_times must be >= -1")
        if max_inflight < 1 or batch_size < 1:
            raise InvalidArgumentError("max_inflight and batch_size must be >= 1")
        if not 1 <= max_prefetch_mib <= 1024:
            raise InvalidArgumentError(f"max_prefetch_mib must be 1..1024, not {max_prefetch_mib}")
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
        self._closing = False
        # Guards the buffer, the acks, the settled flags and the statistics
        # (stats.ConsumerStats counts under it). Held only for short steps
        # (the library's ack never blocks), never while waiting for
        # messages: settling and close() never wait for a receive.
        # Re-entrant: a generator finalized by the garbage collector gives
        # its message back from whatever code the thread was running.
        self._lock = threading.RLock()
        # -- observability and replies (stats.py, _request.py; issue 16)
        check_type("trace", trace, bool, "a bool")
        if trace_topic is not None:
            check_topic(trace_topic, "trace_topic")
        self._stats = ConsumerStats(group, max_reconsume_times, self._lock)
        self._credentials = (access_key, secret_key)  # for the reply producer
        self._replier: Producer | None = None  # the producer replies go through, made at the first reply
        self._replier_lock = threading.Lock()
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
                max_prefetch_mib=max_prefetch_mib,
                orderly=orderly or None,
                namespace=namespace,
                access_key=access_key,
                secret_key=secret_key,
                instance_name=instance_name,
                trace=trace or None,
                trace_topic=trace_topic,
            ),
        )

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<rmq_native.Consumer group={self.group!r} subscriptions={self.subscriptions!r} {state}>"

    def __enter__(self) -> Consumer:
        return self

    def stats(self) -> dict[str, Any]:
        """Counters of this consumer (exact, cheap to call at any time):

        ``received``: messages handed to the application; ``acked`` /
        ``nacked``: of those, settled by acknowledgement / handed back;
        ``redelivered``: received with ``reconsume_times > 0``;
        ``in_flight``: received and not settled; ``buffered``: fetched from
        the library, not yet handed out; ``dlq``: nacked messages that went
        to ``%DLQ%<group>`` (their ``max_reconsume_times`` was reached).
        """
        return self._stats.snapshot(len(self._buffer))

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.close()

    # -- settling -----------------------------------------------------------

    def _send_settle(self, ids: list[int], nack: bool, delay_level: int) -> None:
        ffi = _ffi.ffi
        arr = ffi.new("uint64_t[]", ids)
        out = ffi.new("int32_t *")
        _ffi.check(_ffi.lib().rmq_consumer_ack(self._h(), arr, len(ids), int(nack), delay_level, out))

    def _flush_acks(self) -> None:
        # caller holds self._lock
        if self._acks and self._handle:
            ids, self._acks = self._acks, []
            self._send_settle(ids, False, 0)

    def _settle(self, msg: Message, *, nack: bool, delay_level: int) -> None:
        check_type("delay_level", delay_level, int, "an int")
        if not 0 <= delay_level <= 18:
            raise InvalidArgumentError(f"delay_level must be 0..18, not {delay_level}")
        with self._lock:
            if msg._settled:
                return
            if self._closing or not self._handle:
                raise ClosedError("rmq_native: consumer is closed; the message will be redelivered")
            self._send_settle([msg._id], nack, delay_level)
            msg._settled = True
            self._stats.settled(msg, nack)  # stats.py

    # -- request/reply (_request.py, issue 16) ---------------------------------

    def _reply(self, msg: Message, body: bytes | str, *, properties: Mapping[str, str] | None,
               timeout: float | None) -> None:
        if msg._settled:  # the library needs the unsettled delivery
            raise ClientStateError("rmq_native: reply before settling the request (ack/nack, or the next message)")
        with self._replier_lock:
            if self._replier is None:
                access_key, secret_key = self._credentials
                self._replier = Producer(self.name_server, "rmq_native_reply", access_key=access_key,
                                         secret_key=secret_key)
            replier = self._replier
        _request.reply(self, replier, msg, body, properties=properties, timeout=timeout)

    # -- the seam of the asyncio layer (aio.py uses these and public methods only)

    _AIO_SEAM = ("_take", "_give_back", "_advance")

    def _take(self, timeout: float | None) -> Message | None:
        """The next message: the local buffer first, else the library's,
        waiting at most ``timeout`` seconds (None: for ever) in slices of
        200 ms without holding the lock. None when none came in time;
        ClosedError when the consumer is (or gets) closed. The caller owns
        the message: it settles it, or gives it back with :meth:`_give_back`."""
        deadline = None if timeout is None else time.monotonic() + timeout
        polled = False
        while True:
            with self._lock:
                if self._closing:
                    raise ClosedError("rmq_native: consumer is closed")
                while self._buffer:
                    msg = self._buffer.popleft()
                    if not msg._settled:  # given back, then settled
                        self._stats.received(msg)  # stats.py
                        return msg
                self._flush_acks()
            if deadline is None:
                ms = _SLICE_MS
            else:
                left = deadline - time.monotonic()
                if polled and left <= 0:
                    return None
                ms = min(_SLICE_MS, max(0, int(left * 1000)))
            batch = self._poll(ms)
            polled = True
            if batch:
                with self._lock:
                    if self._closing:  # never settled: the broker redelivers them
                        raise ClosedError("rmq_native: consumer is closed")
                    self._buffer.extend(batch)

    def _poll(self, ms: int) -> list[Message]:
        ffi = _ffi.ffi
        out = ffi.new("uint8_t **")
        out_len = ffi.new("int64_t *")
        count = ffi.new("int32_t *")
        _ffi.check(_ffi.lib().rmq_consumer_poll(self._h(), self._batch, ms, out, out_len, count))
        if count[0] == 0:
            return []
        ptr = out[0]
        try:  # decoded from the library's buffer itself: one copy of each body
            return _wire.messages(ffi.buffer(ptr, out_len[0]), count[0], self)
        finally:
            _ffi.lib().rmq_free(ptr)

    def _give_back(self, msg: Message) -> None:
        """An unsettled message taken by :meth:`_take` goes back to the front
        of the local buffer: the next receive returns it again (after
        close(), the broker redelivers it)."""
        with self._lock:
            if not msg._settled and not self._closing and msg not in self._buffer:
                self._buffer.appendleft(msg)
                self._stats.given_back(msg)  # stats.py: counted again when taken again

    def _advance(self, msg: Message) -> None:
        """A ``messages()`` loop asked for the message after ``msg``: the
        application is done with it, acknowledge it (sent with the next poll)."""
        with self._lock:
            if not msg._settled and not self._closing:
                msg._settled = True
                self._acks.append(msg._id)
                self._stats.settled(msg, False)  # stats.py

    # -- receiving ----------------------------------------------------------

    def receive(self, timeout: float | None = None) -> Message | None:
        """Wait for one message; None when none came within ``timeout``
        seconds (None: wait for ever). Settle it with ``ack()`` or ``nack()``
        (from any thread).

        Raises:
            ClosedError: the consumer is closed, also when :meth:`close` is
                called from another thread during the wait.
        """
        timeout = check_timeout("timeout", timeout, allow_none=True)
        return self._take(timeout)

    def messages(self, timeout: float | None = None) -> Iterator[Message]:
        """Iterate over messages; the iteration ends after ``timeout``
        seconds without a message (None: never), or when :meth:`close` is
        called from another thread.

        Each message is acknowledged when the loop asks for the next one.
        The message held when the loop is left (``break``, an exception) is
        not acknowledged unless you called ``msg.ack()``: it is redelivered.

            for msg in consumer.messages():
                handle(msg)          # raises: msg comes back
                if msg.text == "stop":
                    msg.ack()        # handled: do not redeliver
                    break

        Raises:
            ClosedError: the consumer was closed before.
        """
        timeout = check_timeout("timeout", timeout, allow_none=True)
        self._h()
        return self._loop(timeout)

    def _loop(self, timeout: float | None) -> Iterator[Message]:
        msg: Message | None = None
        while True:
            if msg is None:
                try:
                    msg = self._take(timeout)
                except ClosedError:
                    return  # close() from another thread ends the loop
                if msg is None:
                    return
            try:
                yield msg
            except BaseException:  # GeneratorExit (break, exception, garbage collection) or throw()
                self._give_back(msg)
                raise
            msg = self._advance_take(msg)

    def _advance_take(self, msg: Message) -> Message | None:
        """:meth:`_advance` and, under the same lock, the next buffered
        message (None: :meth:`_take` fetches, waits or raises)."""
        with self._lock:
            if self._closing:
                return None
            if not msg._settled:
                msg._settled = True
                self._acks.append(msg._id)
                self._stats.settled(msg, False)  # stats.py
            buffer = self._buffer
            while buffer:
                nxt = buffer.popleft()
                if not nxt._settled:  # given back, then settled
                    self._stats.received(nxt)  # stats.py
                    return nxt
        return None

    # -- closing ------------------------------------------------------------

    def close(self) -> None:
        """Stop consuming. Acknowledged messages are committed: close
        returns once the brokers confirmed their offsets (a commit refused
        or unanswered within 3 s is logged, and those messages come back).
        Every unsettled one (handed out and not settled, left by a loop, or
        prefetched) is redelivered later to a consumer of the group. Wakes
        a ``receive()``/``messages()`` waiting in another thread. Idempotent."""
        with self._lock:
            if self._handle and not self._closing:
                try:
                    self._flush_acks()
                except ClosedError:
                    pass
                self._closing = True
                self._buffer.clear()  # never settled: redelivered
            replier, self._replier = self._replier, None
            if replier is not None:
                replier.close()
            self._stats.close()  # stats.py
        self._release_handle()
