"""Asynchronous sends of a Producer: their futures, resolved from the
library's completion records on the producer's completion thread, and the
flush of producers still open at interpreter exit."""

from __future__ import annotations

import atexit
import logging
import sys
import weakref
from typing import TYPE_CHECKING

from . import _ffi, _wire
from .errors import SendUnknownError, error_for_code
from .message import SendResult, SendStatus

if TYPE_CHECKING:
    from .producer import Producer

logger = logging.getLogger("rmq_native")


def resolve_futures(producer: Producer, h: int, data: bytes, count: int) -> None:
    """Resolve the futures of finished asynchronous sends (completion records)."""
    for c in _wire.completions(data, count):
        with producer._futures_lock:
            topic, fut = producer._futures.pop(c.token, ("", None))
        if fut is None:
            continue
        if c.status:
            err = error_for_code(c.status, c.error)
            if isinstance(err, SendUnknownError) and not err.msg_id:
                err.msg_id = c.msg_id
            fut.set_exception(err)
        else:
            fut.set_result(SendResult(topic, c.msg_id, c.queue_id, c.queue_offset, SendStatus(c.send_status),
                                      c.offset_msg_id, c.broker_name, c.transaction_id))


def close_at_exit(producer: Producer) -> None:
    """Close at interpreter exit: flush (at most the send timeout), close,
    and warn (logger and stderr) how many queued sends were not sent."""
    with producer._futures_lock:
        pending = [f for _, f in producer._futures.values()]
    producer._close(producer._send_timeout)
    if not pending:
        return
    failed = sum(1 for f in pending if not f.done() or f.exception() is not None)
    if failed:
        text = (f"rmq_native: at exit, {failed} of {len(pending)} asynchronous sends of producer "
                f"group={producer.group!r} still pending without close() could not be sent "
                f"within the send timeout ({producer._send_timeout:g} s)")
        logger.warning(text)
        try:
            print(text, file=sys.stderr, flush=True)
        except (OSError, ValueError):  # stderr closed
            pass


open_producers: weakref.WeakSet[Producer] = weakref.WeakSet()


def discard(handle: int) -> None:
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
    for p in list(open_producers):
        try:
            close_at_exit(p)
        except Exception:
            logger.exception("rmq_native: closing a producer at exit failed")

