"""The cheap future of asynchronous sends (_completions.SendFuture) behaves
as a concurrent.futures.Future under the standard library's waiters."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading

import pytest

from rmq_native._completions import SendFuture


def _resolve_soon(futs: list[SendFuture], exc_every: int = 0) -> threading.Thread:
    def run() -> None:
        for i, f in enumerate(futs):
            if exc_every and i % exc_every == 0:
                f.set_exception(ValueError(i))
            else:
                f.set_result(i)

    t = threading.Thread(target=run)
    t.start()
    return t


def test_is_a_future_and_resolves_once() -> None:
    f = SendFuture()
    assert isinstance(f, concurrent.futures.Future)
    assert f.running() and not f.done() and not f.cancel() and not f.cancelled()
    seen: list[object] = []
    f.add_done_callback(lambda x: seen.append(x.result()))
    f.set_result(7)
    f.add_done_callback(lambda x: seen.append(x.result()))  # runs at once
    assert seen == [7, 7] and f.done() and f.result() == 7 and f.exception() is None
    with pytest.raises(concurrent.futures.InvalidStateError):
        f.set_result(8)
    with pytest.raises(concurrent.futures.TimeoutError):
        SendFuture().result(timeout=0.01)


def test_as_completed_and_wait_while_resolving() -> None:
    for _ in range(10):  # a waiter arriving while the futures resolve sees each once
        futs = [SendFuture() for _ in range(3000)]
        t = _resolve_soon(futs, exc_every=7)
        got = list(concurrent.futures.as_completed(futs, timeout=10))
        t.join()
        assert len(got) == len(set(got)) == len(futs)
        futs = [SendFuture() for _ in range(3000)]
        t = _resolve_soon(futs)
        done, pending = concurrent.futures.wait(futs, timeout=10)
        t.join()
        assert len(done) == len(futs) and not pending


def test_result_waits_and_asyncio_wraps_it() -> None:
    f = SendFuture()
    threading.Timer(0.05, f.set_exception, (KeyError("k"),)).start()
    with pytest.raises(KeyError):
        f.result(timeout=5)

    async def main() -> int:
        g = SendFuture()
        threading.Timer(0.05, g.set_result, (9,)).start()
        return await asyncio.wrap_future(g)

    assert asyncio.run(main()) == 9
