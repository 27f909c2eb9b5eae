"""The cheap future of asynchronous sends (_completions.SendFuture) behaves
as a concurrent.futures.Future under the standard library's waiters."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading

import pytest

from rmq_native._completions import SendFuture, _resolve_all


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


def test_batch_resolution_while_waiting() -> None:
    # the completion thread finishes a poll's futures together (_resolve_all)
    for _ in range(5):
        futs = [SendFuture() for _ in range(3000)]

        def run(futs: list[SendFuture] = futs) -> None:
            for s in range(0, len(futs), 97):
                _resolve_all([(f, None, ValueError(i)) if i % 7 == 0 else (f, i, None)
                              for i, f in enumerate(futs[s:s + 97], s)])

        t = threading.Thread(target=run)
        t.start()
        got = list(concurrent.futures.as_completed(futs, timeout=10))
        t.join()
        assert len(got) == len(set(got)) == len(futs)
        assert [f.exception() is not None for f in futs] == [i % 7 == 0 for i in range(len(futs))]


def test_batch_resolution_runs_callbacks_in_order() -> None:
    futs = [SendFuture() for _ in range(5)]
    seen: list[object] = []
    for f in futs:
        f.add_done_callback(lambda x: seen.append(x.result()))
    futs[2].set_result("own")  # the application finished one itself: the others still resolve
    assert futs[3]._condition is not None  # one a thread waits on: finished under its Condition
    seen.clear()
    _resolve_all([(f, i, None) for i, f in enumerate(futs)])
    assert [f.result() for f in futs] == [0, 1, "own", 3, 4]
    assert seen == [0, 1, 3, 4]
