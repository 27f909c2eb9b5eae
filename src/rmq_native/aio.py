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
one or on ``msg.ack()``; a message whose ``async with`` block raised is
redelivered.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from typing import Any, AsyncIterator, Iterable

from . import consumer as _consumer
from . import producer as _producer
from ._client import check_timeout
from .message import Message, SendResult

__all__ = ["Producer", "Consumer", "reply"]


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
        """Send one message; takes the options of :meth:`rmq_native.Producer.send`."""
        return await asyncio.wrap_future(self._sync.send_async(topic, body, **options))

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
        await self._close(exc_type is not None)

    async def _run(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def _wait(self, timeout: float | None) -> Message | None:
        # slices of 0.2 s: a cancelled task stops waiting promptly
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            left = 0.2 if deadline is None else max(0.0, min(0.2, deadline - loop.time()))
            msg: Message | None = await self._run(self._sync._next, left)
            if msg is not None or (deadline is not None and loop.time() >= deadline):
                return msg

    async def receive(self, timeout: float | None = None) -> Message | None:
        """Wait for one message (None after ``timeout`` seconds); settle it
        with ``ack()`` or ``nack()``."""
        return await self._wait(check_timeout("timeout", timeout, allow_none=True))

    async def messages(self, timeout: float | None = None) -> AsyncIterator[Message]:
        """Iterate over messages; ends after ``timeout`` seconds without one."""
        timeout = check_timeout("timeout", timeout, allow_none=True)
        while True:
            msg = await self._wait(timeout)
            if msg is None:
                return
            self._sync._held = msg
            yield msg
            self._sync._advance(msg)

    async def _close(self, failed: bool) -> None:
        await self._run(self._sync._close, failed)
        self._pool.shutdown(wait=False)

    async def close(self) -> None:
        """Stop consuming (see :meth:`rmq_native.Consumer.close`). Idempotent."""
        await self._close(False)

    def stats(self) -> dict[str, Any]:
        """The consumer's counters (see :meth:`rmq_native.Consumer.stats`)."""
        return self._sync.stats()


# ---- request/reply (issue 16) -------------------------------------------------


async def reply(msg: Message, body: bytes | str, **options: Any) -> None:
    """Answer a request (see :meth:`rmq_native.Message.reply`) without
    blocking the event loop; ``await p.request(...)`` is on :class:`Producer`."""
    await asyncio.get_running_loop().run_in_executor(None, lambda: msg.reply(body, **options))
