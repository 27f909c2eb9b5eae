"""Request/reply (RPC over RocketMQ): ``Producer.request``/``request_async``
and ``Message.reply``.

The requester's library sends the request with a correlation id and its
client id; the broker adds its cluster name. ``msg.reply`` sends the answer
to ``<cluster>_REPLY_TOPIC`` (as the Java client's
``MessageUtil.createReplyMessage``) and the broker pushes it straight to the
requesting client, which matches it to the waiting request. Works with Java
and Go requesters and repliers.
"""

from __future__ import annotations

import concurrent.futures
import struct
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from . import _ffi
from ._client import call_in_slices, check_timeout
from .errors import ClientStateError, ClosedError, InvalidArgumentError, TimeoutError, error_for_code
from .message import Message

if TYPE_CHECKING:
    from .consumer import Consumer
    from .producer import Producer

_OUTCOME = struct.Struct("<QiI")  # token, status, error length
_lock = threading.Lock()


class _Requests:
    """A producer's requests waiting for their reply."""

    def __init__(self) -> None:
        self.futures: dict[int, tuple[Any, concurrent.futures.Future[Message]]] = {}
        self.lock = threading.Lock()
        self.pump: threading.Thread | None = None


def _state(producer: Producer) -> _Requests:
    st: _Requests | None = producer.__dict__.get("_requests")
    if st is None:
        with _lock:
            st = producer.__dict__.setdefault("_requests", _Requests())
    assert st is not None
    return st


def _resolve(producer: Producer, h: int, data: bytes, count: int) -> None:
    """Resolve request futures from rmq_producer_poll_replies records."""
    from .consumer import _HEAD, _decode

    st = _state(producer)
    pos = 0
    for _ in range(count):
        token, status, n = _OUTCOME.unpack_from(data, pos)
        pos += _OUTCOME.size
        error = data[pos : pos + n].decode("utf-8", "replace")
        pos += n
        reply = None
        if status == 0:
            size = _HEAD.size + sum(_HEAD.unpack_from(data, pos)[6:])
            reply = _decode(data[pos : pos + size], 1, None)[0]
            pos += size
        with st.lock:
            op, fut = st.futures.pop(token, (None, None))
        if fut is None:
            continue
        if reply is None:
            fut.set_exception(error_for_code(status, error))
        else:
            fut.set_result(reply)


def request_async(
    producer: Producer,
    topic: str,
    body: bytes | str,
    *,
    timeout: float,
    tags: str | None,
    keys: str | Iterable[str] | None,
    properties: Mapping[str, str] | None,
) -> concurrent.futures.Future[Message]:
    from .producer import _pull_loop

    if producer._trace:
        raise ClientStateError("rmq_native: request/reply does not work on a producer with trace=True "
                               "(the Go SDK v2.1.2 drops the reply): use a producer without trace")
    t = check_timeout("timeout", timeout)
    if not t:
        raise InvalidArgumentError("timeout must be > 0 seconds")
    op, properties = producer._stats.begin(topic, properties, tags=tags, keys=keys, queued=True,
                                           operation="request", timed=False)
    try:
        m, keep = producer._message(topic, body, tags=tags, keys=keys, properties=properties)
    except BaseException as e:
        op.fail(e)
        raise
    st = _state(producer)
    fut: concurrent.futures.Future[Message] = concurrent.futures.Future()
    fut.set_running_or_notify_cancel()
    fut.add_done_callback(op.future_done)
    token = next(producer._tokens)
    with st.lock:
        st.futures[token] = (op, fut)
        if st.pump is None:
            st.pump = threading.Thread(
                target=_pull_loop, args=(weakref.ref(producer), "rmq_producer_poll_replies", 64, _resolve),
                name="rmq_native-replies", daemon=True,
            )
            st.pump.start()
    try:
        _ffi.check(_ffi.lib().rmq_producer_request(producer._h(), m, int(t * 1000), token))
    except BaseException as e:
        with st.lock:
            st.futures.pop(token, None)
        op.fail(e)
        raise
    return fut


def request(producer: Producer, topic: str, body: bytes | str, *, timeout: float, **options: Any) -> Message:
    fut = request_async(producer, topic, body, timeout=timeout, **options)
    # the library always answers: with the reply, or a timeout after
    # `timeout` (its send may take up to the send timeout before that)
    limit = timeout + producer._send_timeout + 5.0
    start = time.monotonic()

    def done(ms: int) -> bool:
        concurrent.futures.wait([fut], timeout=ms / 1000)
        return fut.done()

    if not call_in_slices(done, limit):
        raise TimeoutError(f"rmq_native: no reply to the request on topic {topic!r} "
                           f"after {time.monotonic() - start:.1f} s")
    return fut.result()


def fail_pending(producer: Producer) -> None:
    """The producer closed: fail the requests still waiting."""
    st: _Requests | None = producer.__dict__.get("_requests")
    if st is None:
        return
    with st.lock:
        left, st.futures = st.futures, {}
    for _, fut in left.values():
        fut.set_exception(ClosedError("rmq_native: producer closed before the reply arrived"))


# -- the consumer side -------------------------------------------------------


def _replier(consumer: Consumer) -> Producer:
    """The consumer's producer for replies, started at the first reply."""
    from .producer import Producer

    with _lock:
        p: Producer | None = consumer.__dict__.get("_replier")
        if p is None:
            access_key, secret_key = consumer._credentials
            p = Producer(consumer.name_server, "rmq_native_reply", access_key=access_key, secret_key=secret_key)
            consumer.__dict__["_replier"] = p
        return p


def reply(
    msg: Message,
    body: bytes | str,
    *,
    properties: Mapping[str, str] | None,
    timeout: float | None,
) -> None:
    consumer = msg._consumer
    if consumer is None:
        raise InvalidArgumentError("only a message received by a Consumer can be replied to")
    if msg._settled:  # the library needs the unsettled delivery
        raise ClientStateError("rmq_native: reply before settling the request (ack/nack, or the next message)")
    p = _replier(consumer)
    m, keep = p._message(msg.topic, body, properties=properties)
    out = _ffi.ffi.new("rmq_send_result *")
    _ffi.check(_ffi.lib().rmq_consumer_reply(consumer._h(), msg._delivery_id, p._h(), m, p._timeout_ms(timeout), out))


def close_replier(consumer: Consumer) -> None:
    """The consumer closed: close its reply producer."""
    p = consumer.__dict__.pop("_replier", None)
    if p is not None:
        p.close()
