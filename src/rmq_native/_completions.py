"""Asynchronous sends of a Producer: their futures, resolved from the
library's completion records on the producer's completion thread, and the
flush of producers still open at interpreter exit."""

from __future__ import annotations

import atexit
import concurrent.futures
import concurrent.futures._base as _futures_base
import logging
import sys
import threading
import weakref
from typing import TYPE_CHECKING, Any, Callable

from . import _ffi, _wire, stats
from ._producer_base import _STATUS
from .errors import SendUnknownError, error_for_code
from .message import SendResult, SendStatus

if TYPE_CHECKING:
    from .producer import Producer

logger = logging.getLogger("rmq_native")


class SendFuture(concurrent.futures.Future):  # type: ignore[type-arg]
    """The future of an asynchronous send: a ``concurrent.futures.Future``
    made cheaply. It starts running (it cannot be cancelled), and its
    Condition is only made when a thread waits on it (``result()`` or
    ``exception()`` before it is done, ``concurrent.futures.wait``); state
    changes and callback registration are guarded by one module lock."""

    def __init__(self) -> None:  # no super().__init__: it would make the Condition
        self._cond: threading.Condition | None = None
        self._state = _RUNNING
        self._result: Any = None
        self._exception: BaseException | None = None
        self._waiters: list[Any] = []
        self._done_callbacks: list[Any] = []

    @property
    def _condition(self) -> threading.Condition:  # type: ignore[override]
        # made on first use; what the base class and concurrent.futures.wait lock
        cond = self._cond
        if cond is None:
            with _LOCK:
                cond = self._cond
                if cond is None:
                    cond = self._cond = threading.Condition()
        return cond

    def cancel(self) -> bool:
        return False  # running from the start, as a started send

    def cancelled(self) -> bool:
        return False

    def running(self) -> bool:
        return self._state == _RUNNING

    def done(self) -> bool:
        return self._state == _FINISHED

    def add_done_callback(self, fn: Callable[[Any], object]) -> None:
        with _LOCK:
            if self._state != _FINISHED:
                self._done_callbacks.append(fn)
                return
        try:
            fn(self)
        except Exception:
            logger.exception("exception calling callback for %r", self)

    def result(self, timeout: float | None = None) -> Any:
        if self._state != _FINISHED:
            return super().result(timeout)
        exc = self._exception
        if exc is None:
            return self._result
        del self  # no cycle through the traceback (as the base class)
        try:
            raise exc
        finally:
            del exc

    def exception(self, timeout: float | None = None) -> BaseException | None:
        if self._state == _FINISHED:
            return self._exception
        return super().exception(timeout)

    def set_result(self, result: Any) -> None:
        self._finish(result, None)

    def set_exception(self, exception: BaseException | None) -> None:
        self._finish(None, exception)

    def _finish(self, result: Any, exception: BaseException | None) -> None:
        with _LOCK:
            cond = self._cond
            if cond is None:  # nobody waits: a waiter that comes later sees the new state
                finished = self._set(result, exception)
        if cond is not None:
            # a waiter checks the state under the Condition (concurrent.futures.wait,
            # as_completed): change it and notify its waiters under it too
            with cond:
                with _LOCK:
                    finished = self._set(result, exception)
                if not finished:
                    for waiter in self._waiters:
                        if exception is None:
                            waiter.add_result(self)
                        else:
                            waiter.add_exception(self)
                    cond.notify_all()
        if finished:
            raise concurrent.futures.InvalidStateError(f"FINISHED: {self!r}")
        if self._done_callbacks:
            self._invoke_callbacks()  # type: ignore[attr-defined]

    def _set(self, result: Any, exception: BaseException | None) -> bool:
        """Finish (the caller holds _LOCK); True if it was finished already."""
        if self._state == _FINISHED:
            return True
        self._result, self._exception = result, exception
        self._state = _FINISHED
        return False


_LOCK = threading.Lock()
_RUNNING, _FINISHED = _futures_base.RUNNING, _futures_base.FINISHED


_new = object.__new__
_setattr = object.__setattr__


def _send_result(topic: str, c: _wire.Completion) -> SendResult:
    """A SendResult built without the frozen dataclass's __init__ (as
    _producer_base._result); its texts (msg_id, offset_msg_id, broker_name,
    transaction_id) are decoded when first read (_wire._Undecoded)."""
    r = _new(SendResult)
    status = c.send_status
    _setattr(r, "__dict__", {"topic": topic, "queue_id": c.queue_id, "queue_offset": c.queue_offset,
                             "status": _STATUS[status] if status in _STATUS else SendStatus(status),
                             "msg_ids": (), "_texts": c.texts})
    return r


def resolve_futures(producer: Producer, h: int, data: bytes, count: int) -> None:
    """Resolve the futures of finished asynchronous sends (completion
    records): count them all in the producer's stats, then resolve their
    futures, in order."""
    records = _wire.completions(data, count)
    with producer._futures_lock:
        pop = producer._futures.pop
        entries = [pop(c.token, None) for c in records]
        producer._finished(sum(e[3] for e in entries if e is not None))
    done: list[tuple[Any, SendResult]] = []
    outcomes: list[tuple[SendFuture, Any, BaseException | None]] = []
    for c, entry in zip(records, entries):
        if entry is None:
            continue
        topic, fut, op, _ = entry
        if c.status:
            err = error_for_code(c.status, c.error)
            if isinstance(err, SendUnknownError) and not err.msg_id:
                err.msg_id = c.msg_id
            op.fail(err)
            outcomes.append((fut, None, err))
        else:
            result = _send_result(topic, c)
            done.append((op, result))
            outcomes.append((fut, result, None))
    stats.done_all(done)
    _resolve_all(outcomes)


def _resolve_all(outcomes: list[tuple[SendFuture, Any, BaseException | None]]) -> None:
    """Finish futures (future, result, exception), then run their callbacks,
    in order: the futures nobody waits on change state under one round of the
    module lock; the others through SendFuture._finish."""
    waited = set()
    with _LOCK:
        for fut, result, exc in outcomes:
            if fut._cond is None and fut._state != _FINISHED:
                fut._result, fut._exception, fut._state = result, exc, _FINISHED
            else:
                waited.add(id(fut))
    for fut, result, exc in outcomes:
        if waited and id(fut) in waited:
            try:
                fut._finish(result, exc)
            except concurrent.futures.InvalidStateError:
                pass  # the application finished it itself (set_result): the others still resolve
        elif fut._done_callbacks:
            fut._invoke_callbacks()  # type: ignore[attr-defined]


def close_at_exit(producer: Producer) -> None:
    """Close at interpreter exit: flush (at most the send timeout), close,
    and warn (logger and stderr) how many queued sends were not sent."""
    with producer._futures_lock:
        pending = [f for _, f, _, _ in producer._futures.values()]
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

