"""The Python side of the delivery contract, against the real broker: what a
loop left by break or by an exception does, settling from worker threads,
close() from another thread, and cancelled asyncio receives."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time

import pytest
from conftest import unique

import rmq_native
from rmq_native import Consumer, Producer, aio


def drain(c: Consumer, n: int, timeout: float) -> list[rmq_native.Message]:
    """Receive and acknowledge up to n messages within timeout seconds."""
    got: list[rmq_native.Message] = []
    deadline = time.monotonic() + timeout
    while len(got) < n and time.monotonic() < deadline:
        m = c.receive(timeout=max(0.0, deadline - time.monotonic()))
        if m is not None:
            m.ack()
            got.append(m)
    return got


def test_exception_caught_inside_with_is_not_acknowledged(
    rocketmq_namesrv: str, producer: Producer, topic: str, group: str
) -> None:
    producer.send(topic, b"fragile")
    failed = []
    with Consumer(rocketmq_namesrv, group, topic, from_where="first") as c:
        try:
            for m in c.messages(timeout=30):
                raise ValueError(m.body)
        except ValueError as e:
            failed.append(e.args[0])
        # the block goes on normally: the failed message was given back
        again = c.receive(timeout=5)
        assert again is not None and again.body == b"fragile" and not again.settled
    assert failed == [b"fragile"]
    # never acknowledged: the broker delivers it again after close()
    with Consumer(rocketmq_namesrv, group, topic) as c:
        assert [m.body for m in drain(c, 1, timeout=60)] == [b"fragile"]


def test_break_redelivers_unless_acknowledged(
    rocketmq_namesrv: str, producer: Producer, topic: str, group: str
) -> None:
    producer.send(topic, b"left by break")
    with Consumer(rocketmq_namesrv, group, topic, from_where="first") as c:
        for m in c.messages(timeout=30):
            first = m
            break
        # the next loop starts with the same message
        for m in c.messages(timeout=30):
            assert m is first
            break
    assert not first.settled
    with Consumer(rocketmq_namesrv, group, topic) as c:
        for m in c.messages(timeout=60):
            assert m.body == b"left by break"
            m.ack()  # handled: not delivered again
            break
    producer.send(topic, b"marker")
    with Consumer(rocketmq_namesrv, group, topic) as c:
        assert [m.body for m in drain(c, 1, timeout=60)] == [b"marker"]


def test_worker_threads_settle_while_a_receive_waits(
    rocketmq_namesrv: str, producer: Producer, topic: str, group: str
) -> None:
    """A receiver thread waits in receive(timeout=None) and hands messages to a
    pool that acks them; max_inflight is smaller than the number of messages,
    so progress needs the acks to get through while receive() waits. A third
    thread closes the consumer at the end, which ends the receiver's wait."""
    n = 40
    for i in range(n):
        producer.send(topic, f"w{i}")
    seen: list[bytes] = []
    lock = threading.Lock()

    def work(m: rmq_native.Message) -> None:
        time.sleep(0.05)
        with lock:
            seen.append(m.body)
        m.ack()

    pool = concurrent.futures.ThreadPoolExecutor(4)
    c = Consumer(rocketmq_namesrv, group, topic, from_where="first", max_inflight=4, batch_size=2)
    ended: list[BaseException] = []

    def receiver() -> None:
        try:
            while True:
                m = c.receive(timeout=None)
                assert m is not None
                pool.submit(work, m)
        except BaseException as e:
            ended.append(e)

    receiving = threading.Thread(target=receiver, daemon=True)
    receiving.start()
    deadline = time.monotonic() + 90
    while len(seen) < n and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)  # the receiver waits again
    closed_at = time.monotonic()
    closer = threading.Thread(target=c.close, daemon=True)
    closer.start()
    receiving.join(timeout=10)
    woke_after = time.monotonic() - closed_at
    closer.join(timeout=30)
    pool.shutdown(wait=False)
    assert sorted(seen) == sorted(f"w{i}".encode() for i in range(n)), f"{len(seen)} of {n} acknowledged"
    assert not receiving.is_alive() and not closer.is_alive()
    assert isinstance(ended[0], rmq_native.ClosedError)
    assert woke_after < 0.5, f"close() woke the waiting receive() after {woke_after:.2f} s"
    with Consumer(rocketmq_namesrv, group, topic) as c2:
        assert c2.receive(timeout=5) is None, "an acknowledged message was redelivered"


def test_close_from_another_thread_wakes_the_waits(rocketmq_namesrv: str, topic: str, group: str) -> None:
    c = Consumer(rocketmq_namesrv, group, topic)
    woke: dict[str, object] = {}

    def receiver() -> None:
        try:
            woke["receive"] = c.receive(timeout=None)
        except rmq_native.ClosedError as e:
            woke["receive"] = e
        woke["receive_at"] = time.monotonic()

    def looper() -> None:
        woke["loop"] = list(c.messages(timeout=None))
        woke["loop_at"] = time.monotonic()

    waiting = [threading.Thread(target=receiver, daemon=True), threading.Thread(target=looper, daemon=True)]
    for t in waiting:
        t.start()
    time.sleep(1.5)
    assert all(t.is_alive() for t in waiting)
    closed_at = time.monotonic()
    closer = threading.Thread(target=c.close, daemon=True)
    closer.start()
    for t in waiting:
        t.join(timeout=10)
    closer.join(timeout=30)
    assert not closer.is_alive(), "close() did not return"
    assert isinstance(woke["receive"], rmq_native.ClosedError)
    assert woke["loop"] == []
    assert woke["receive_at"] - closed_at < 0.5  # type: ignore[operator]
    assert woke["loop_at"] - closed_at < 0.5  # type: ignore[operator]
    with pytest.raises(rmq_native.ClosedError):
        c.receive(timeout=0)
    with pytest.raises(rmq_native.ClosedError):
        c.messages()


@pytest.mark.parametrize("orderly", [False, True], ids=["concurrent", "orderly"])
def test_cancelled_asyncio_receive_strands_nothing(
    rocketmq_namesrv: str, producer: Producer, make_topic, group: str, orderly: bool
) -> None:
    topic = make_topic(queues=2)
    n = 30

    async def main() -> tuple[list[bytes], int]:
        got: list[bytes] = []
        cancelled = 0
        async with aio.Consumer(rocketmq_namesrv, group, topic, from_where="first", orderly=orderly) as c:

            async def send() -> None:
                for i in range(n):
                    await asyncio.get_running_loop().run_in_executor(
                        None, lambda i=i: producer.send(topic, f"a{i}", sharding_key="one"))
                    await asyncio.sleep(0.35 if i % 2 else 0.05)  # some waits outlast 0.25 s

            sender = asyncio.create_task(send())
            deadline = time.monotonic() + 90
            while len(got) < n and time.monotonic() < deadline:
                try:
                    m = await asyncio.wait_for(c.receive(timeout=None), 0.25)
                except asyncio.TimeoutError:
                    cancelled += 1
                    continue
                assert m is not None
                m.ack()
                got.append(m.body)
            await sender
        return got, cancelled

    got, cancelled = asyncio.run(main())
    assert cancelled > 0, "no receive was cancelled"
    assert sorted(got) == sorted(f"a{i}".encode() for i in range(n)), f"{len(set(got))} of {n} received"
    if orderly:
        assert got == [f"a{i}".encode() for i in range(n)]
    # nothing stranded pins an offset: a restart of the group gets nothing again
    with Consumer(rocketmq_namesrv, group, topic, orderly=orderly) as c:
        assert c.receive(timeout=5) is None


def test_asyncio_ack_never_waits_for_a_receive(rocketmq_namesrv: str, producer: Producer, topic: str,
                                               group: str) -> None:
    """ack() is a plain call on the event loop: it must return at once even
    while the consumer's thread waits for the next message."""
    for i in range(5):
        producer.send(topic, f"k{i}")

    async def main() -> list[float]:
        async with aio.Consumer(rocketmq_namesrv, group, topic, from_where="first") as c:
            held = [await c.receive(timeout=60) for _ in range(5)]
            waiting = asyncio.ensure_future(c.receive(timeout=5))  # nothing more comes
            took = []
            for m in held:
                assert m is not None
                await asyncio.sleep(0.3)  # the thread is inside a wait
                t = time.monotonic()
                m.ack()
                took.append(time.monotonic() - t)
            assert await waiting is None
            return took

    took = asyncio.run(main())
    assert max(took) < 0.1, f"ack() blocked the event loop for {max(took):.3f} s"


def test_asyncio_break_gives_the_message_back(rocketmq_namesrv: str, producer: Producer, topic: str) -> None:
    group = unique("G")
    producer.send(topic, b"async break")

    async def main() -> tuple[rmq_native.Message, rmq_native.Message | None]:
        async with aio.Consumer(rocketmq_namesrv, group, topic, from_where="first") as c:
            loop = c.messages(timeout=30)
            async for m in loop:
                first = m
                break
            await loop.aclose()  # type: ignore[attr-defined]
            return first, await c.receive(timeout=5)

    first, again = asyncio.run(main())
    assert again is first and not first.settled
