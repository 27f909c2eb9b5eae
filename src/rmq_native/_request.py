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
import threading
import time
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from . import _ffi, _pump, _wire
from ._client import call_in_slices, check_timeout
from .errors import ClientStateError, ClosedError, InvalidArgumentError, TimeoutError, error_for_code
from .message import Message

if TYPE_CHECKING:
    from .consumer import Consumer
    from .producer import Producer

_lock = threading.Lock()


class _Requests:
    """A producer's requests waiting for their reply."""

    def __init__(self) -> None:
        self.futures: dict[int, tuple[Any, concurrent.futures.Future[Message]]] = {}
        self.lock = threading.Lock()
        self.pump: threading.Thread | None = None


def _requests_of(producer: Producer) -> _Requests:
    """The producer's waiting requests (made at its first request)."""
    st: _Requests | None = producer.__dict__.get("_requests")
    if st is None:
        with _lock:
            st = producer.__dict__.setdefault("_requests", _Requests())
    assert st is not None
    return st


def _resolve(producer: Producer, h: int, data: bytes, count: int) -> None:
    """Resolve request futures from rmq_producer_poll_replies records."""
    st = _requests_of(producer)
    for r in _wire.replies(data, count):
        with st.lock:
            op, fut = st.futures.pop(r.token, (None, None))
        if fut is None:
            continue
        if r.message is None:
            fut.set_exception(error_for_code(r.status, r.error))
        else:
            fut.set_result(r.message)


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
    """Producer.request_async: send the request, return the future of its reply."""
    if producer._trace:
        raise ClientStateError("rmq_native: request/reply does not work on a producer with trace=True "
                               "(the Go SDK v2.1.2 drops the reply): use a producer without trace")
    t = check_timeout("timeout", timeout)
    if not t:
        raise InvalidArgumentError("timeout must be > 0 seconds")
    op, properties = producer._stats.begin(topic, properties, tags=tags, keys=keys, queued=True,
                                           operation="request", timed=False)
    try:
        m = producer._message(topic, body, tags=tags, keys=keys, properties=properties)
    except BaseException as e:
        op.fail(e)
        raise
    st = _requests_of(producer)
    fut: concurrent.futures.Future[Message] = concurrent.futures.Future()
    fut.set_running_or_notify_cancel()
    fut.add_done_callback(op.future_done)
    token = next(producer._tokens)
    with st.lock:
        st.futures[token] = (op, fut)
        if st.pump is None:
            st.pump = _pump.start(producer, "rmq_producer_poll_replies", 64, _resolve, "rmq_native-replies")
    try:
        _ffi.check(_ffi.lib().rmq_producer_request(producer._h(), m, int(t * 1000), token))
    except BaseException as e:
        with st.lock:
            st.futures.pop(token, None)
        op.fail(e)
        raise
    return fut


def request(producer: Producer, topic: str, body: bytes | str, *, timeout: float, **options: Any) -> Message:
    """Producer.request: send the request and wait for its reply."""
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


def reply(
    consumer: Consumer,
    replier: Producer,
    msg: Message,
    body: bytes | str,
    *,
    properties: Mapping[str, str] | None,
    timeout: float | None,
) -> None:
    """Send body as the reply to the request msg (received by consumer)
    through the producer replier."""
    m = replier._message(msg.topic, body, properties=properties)
    out = _ffi.ffi.new("rmq_send_result *")
    _ffi.check(_ffi.lib().rmq_consumer_reply(consumer._h(), msg._id, replier._h(), m, replier._timeout_ms(timeout),
                                             out))
