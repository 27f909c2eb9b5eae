"""asyncio layer: the same clients, awaitable, never blocking the event loop.

    async with rmq_native.aio.Producer(ns) as p:
        await p.send("orders", b"hello")

    async with rmq_native.aio.Consumer(ns, "group", "orders") as c:
        async for msg in c.messages(timeout=5):
            ...

Sends use the library's asynchronous path (no thread per send). Waiting
for messages runs in short slices on a thread of the consumer's own, so
the event loop keeps running. The delivery contract is the synchronous
consumer's: a message is acknowledged when the loop asks for the next
one or on ``msg.ack()``; the message held when a loop is left (``break``,
an exception) is redelivered unless it was acknowledged. A cancelled
``receive()`` (``asyncio.wait_for``, task cancellation) never strands a
message: one the thread took after the cancellation goes back to the front
of the local buffer for the next receive.

``msg.ack()`` and ``msg.nack()`` are plain calls, safe on the event loop:
they never wait for a receive in progress (the consumer's lock is never
held while waiting) and the library only hands the verdict to a buffered
channel, so they return in microseconds.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from typing import Any, AsyncIterator, Iterable

from . import consumer as _consumer
from . import producer as _producer
from . import reader as _reader
from ._client import check_timeout
from .errors import ClosedError
from .message import Message, SendResult

__all__ = ["Producer", "Consumer", "Reader", "reply"]


class Producer:
    """Asynchronous facade of :class:`rmq_native.Producer` (same arguments)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._sync = _producer.Producer(*args, **kwargs)

    @property
    def sync(self) -> _producer.Producer:
        """The underlying synchronous producer (thread-safe)."""
        return self._sync

    async def __aenter__(self) -> Producer:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def send(self, topic: str, body: bytes | str, **options: Any) -> SendResult:
        """Send one message; takes the options of :meth:`rmq_native.Producer.send`.

        Under ``max_pending`` back-pressure (see :meth:`rmq_native.Producer.send_async`)
        it waits for room on a thread, never on the event loop; cancelled
        while waiting, it sends nothing."""
        sync = self._sync
        while not sync._has_room():
            await asyncio.get_running_loop().run_in_executor(None, sync._wait_room, options.get("timeout"))
        return await asyncio.wrap_future(sync.send_async(topic, body, **options))

    async def send_batch(self, topic: str, items: Iterable[Any], **options: Any) -> SendResult:
        """Send a batch (see :meth:`rmq_native.Producer.send_batch`)."""
        return await asyncio.get_running_loop().run_in_executor(
            None, lambda: self._sync.send_batch(topic, items, **options)
        )

    async def request(self, topic: str, body: bytes | str, **options: Any) -> Message:
        """Send a request and await the reply; takes the options of
        :meth:`rmq_native.Producer.request` (request/reply, issue 16)."""
        return await asyncio.wrap_future(self._sync.request_async(topic, body, **options))

    def stats(self) -> dict[str, Any]:
        """The producer's counters (see :meth:`rmq_native.Producer.stats`)."""
        return self._sync.stats()

    async def close(self) -> None:
        """Wait for pending sends, then close. Idempotent."""
        await asyncio.get_running_loop().run_in_executor(None, self._sync.close)


class Consumer:
    """Asynchronous facade of :class:`rmq_native.Consumer` (same arguments)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._sync = _consumer.Consumer(*args, **kwargs)
        # one thread: waits never overlap and never occupy the loop
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="rmq_native-aio")

    @property
    def sync(self) -> _consumer.Consumer:
        """The underlying synchronous consumer."""
        return self._sync

    async def __aenter__(self) -> Consumer:
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        await self._close()

    async def _wait(self, timeout: float | None) -> Message | None:
        # slices of at most 0.2 s on the consumer's thread: a cancelled task
        # leaves that thread busy for one slice at most
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            left = 0.2 if deadline is None else max(0.0, min(0.2, deadline - loop.time()))
            try:
                job = self._pool.submit(self._sync._take, left)
            except RuntimeError:  # the pool is shut down: closed
                raise ClosedError("rmq_native: consumer is closed") from None
            try:
                msg: Message | None = await asyncio.wrap_future(job)
            except asyncio.CancelledError:
                # the job may already run (it cannot be cancelled then): the
                # message it takes goes back for the next receive
                job.add_done_callback(self._give_back)
                raise
            if msg is not None or (deadline is not None and loop.time() >= deadline):
                return msg

    def _give_back(self, job: concurrent.futures.Future[Message | None]) -> None:
        if not job.cancelled() and job.exception() is None:
            msg = job.result()
            if msg is not None:
                self._sync._give_back(msg)

    async def receive(self, timeout: float | None = None) -> Message | None:
        """Wait for one message (None after ``timeout`` seconds); settle it
        with ``ack()`` or ``nack()``. Cancelling the wait loses nothing.

        Raises:
            ClosedError: the consumer is (or gets) closed.
        """
        return await self._wait(check_timeout("timeout", timeout, allow_none=True))

    def messages(self, timeout: float | None = None) -> AsyncIterator[Message]:
        """Iterate over messages; ends after ``timeout`` seconds without one,
        or when the consumer is closed meanwhile. Each message is
        acknowledged when the loop asks for the next one; the one held when
        the loop is left is redelivered unless acknowledged.

        Raises:
            ClosedError: the consumer was closed before.
        """
        timeout = check_timeout("timeout", timeout, allow_none=True)
        if self._sync.closed:
            raise ClosedError("rmq_native: consumer is closed")
        return self._loop(timeout)

    async def _loop(self, timeout: float | None) -> AsyncIterator[Message]:
        while True:
            try:
                msg = await self._wait(timeout)
            except ClosedError:
                return
            if msg is None:
                return
            try:
                yield msg
            except BaseException:  # GeneratorExit (break, exception, aclose) or athrow()
                self._sync._give_back(msg)
                raise
            self._sync._advance(msg)

    async def _close(self) -> None:
        # not on the consumer's thread, which may be inside a wait: close()
        # wakes that wait
        await asyncio.get_running_loop().run_in_executor(None, self._sync.close)
        self._pool.shutdown(wait=False)

    async def close(self) -> None:
        """Stop consuming (see :meth:`rmq_native.Consumer.close`). Idempotent."""
        await self._close()

    def stats(self) -> dict[str, Any]:
        """The consumer's counters (see :meth:`rmq_native.Consumer.stats`)."""
        return self._sync.stats()


class Reader:
    """Asynchronous facade of :class:`rmq_native.Reader` (same arguments).

    Broker requests run on a thread of the reader's own; the event loop is
    never blocked.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._sync = _reader.Reader(*args, **kwargs)
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="rmq_native-aio-reader")

    @property
    def sync(self) -> _reader.Reader:
        """The underlying synchronous reader."""
        return self._sync

    async def __aenter__(self) -> Reader:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def _run(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def messages(self, timeout: float | None = None) -> AsyncIterator[Message]:
        """Iterate over the messages from the current positions; ends at
        ``end`` or after ``timeout`` seconds without a message."""
        timeout = check_timeout("timeout", timeout, allow_none=True)
        loop = asyncio.get_running_loop()
        last = loop.time()
        while True:
            msg = self._sync._pop()
            if msg is None:
                if self._sync.finished:
                    return
                if await self._run(self._sync._fill):
                    continue
                if self._sync.finished:
                    return
                idle = loop.time() - last
                if timeout is not None and idle >= timeout:
                    return
                await asyncio.sleep(0.1 if timeout is None else max(0.0, min(0.1, timeout - idle)))
                continue
            yield msg
            last = loop.time()

    def positions(self) -> dict[tuple[str, int], int]:
        """See :meth:`rmq_native.Reader.positions`."""
        return self._sync.positions()

    async def seek(self, start: Any) -> None:
        """See :meth:`rmq_native.Reader.seek`."""
        await self._run(self._sync.seek, start)

    async def close(self) -> None:
        """Release the reader. Idempotent."""
        await self._run(self._sync.close)
        self._pool.shutdown(wait=False)


# ---- request/reply (issue 16) -------------------------------------------------


async def reply(msg: Message, body: bytes | str, **options: Any) -> None:
    """Answer a request (see :meth:`rmq_native.Message.reply`) without
    blocking the event loop; ``await p.request(...)`` is on :class:`Producer`."""
    await asyncio.get_running_loop().run_in_executor(None, lambda: msg.reply(body, **options))
