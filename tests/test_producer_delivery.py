"""The producer's delivery contract (issue 11, items 7, 8, 10, 12): sends
queued at exit are flushed, a timeout never hides a stored message or
stores copies with other ids, close() reports real outcomes, the broker's
refusals map to the right exceptions, helper threads survive failures."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest
from conftest import dev_broker_pid, pause_process, unique

import rmq_native
from rmq_native import Consumer, Producer, devbroker
from rmq_native import _completions as completions_mod
from rmq_native import _transaction as transaction_mod

SRC = str(Path(__file__).resolve().parents[1] / "src")


def stored(ns: str, topic: str, want: int, quiet: float = 5.0, timeout: float = 120.0) -> list[rmq_native.Message]:
    """Every message of topic, read by a new group from the first offset:
    until want arrived and then nothing for quiet seconds (or timeout)."""
    got: list[rmq_native.Message] = []
    deadline = time.monotonic() + timeout
    with Consumer(ns, unique("G"), topic, from_where="first") as c:
        last = time.monotonic()
        while time.monotonic() < deadline:
            m = c.receive(timeout=1)
            if m is not None:
                m.ack()
                got.append(m)
                last = time.monotonic()
            elif len(got) >= want and time.monotonic() - last > quiet:
                break
            elif time.monotonic() - last > max(quiet, 30):
                break
    return got


def stored_ids_by_key(ns: str, topic: str, want: int, quiet: float = 3.0) -> dict[str, list[str]]:
    """The ids of the stored messages of topic (stored()), grouped by their
    first key; messages without keys are left out."""
    copies: dict[str, list[str]] = {}
    for m in stored(ns, topic, want, quiet=quiet):
        if m.keys:
            copies.setdefault(m.keys[0], []).append(m.msg_id)
    return copies


def run_script(code: str, ns: str, topic: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    script = f"import sys\nsys.path.insert(0, {SRC!r})\nNS, TOPIC = {ns!r}, {topic!r}\n" + textwrap.dedent(code)
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=timeout)


# ---------------------------------------------------------------- item 7: exit without close()


def test_exit_without_close_flushes_queued_async_sends(rocketmq_namesrv: str, topic: str) -> None:
    r = run_script(
        """
        import rmq_native
        p = rmq_native.Producer(NS, send_timeout=10)
        for i in range(5000):
            p.send_async(TOPIC, f"exit-{i}")
        # no close(), no flush(): the interpreter exits here
        """,
        rocketmq_namesrv, topic,
    )
    assert r.returncode == 0, r.stderr
    assert "could not be sent" not in r.stderr, r.stderr
    bodies = {m.body for m in stored(rocketmq_namesrv, topic, 5000)}
    assert bodies == {f"exit-{i}".encode() for i in range(5000)}


def test_exit_warns_how_many_sends_could_not_be_sent(rocketmq_namesrv: str, topic: str) -> None:
    # the first half is sent and confirmed; then the broker stalls (stopped,
    # sockets open) and the second half is queued: none of it can be sent
    # within the flush at exit, bounded by the send timeout of 50 ms
    broker_pid = dev_broker_pid(rocketmq_namesrv)
    tests_dir = str(Path(__file__).resolve().parent)
    try:
        r = run_script(
            f"""
            import logging, rmq_native
            sys.path.insert(0, {tests_dir!r})
            from conftest import pause_process
            h = logging.StreamHandler(sys.stderr)
            h.setFormatter(logging.Formatter("LOGGER %(name)s %(levelname)s %(message)s"))
            logging.getLogger("rmq_native").addHandler(h)
            p = rmq_native.Producer(NS, send_timeout=0.05)
            for f in [p.send_async(TOPIC, f"exit-{{i}}", timeout=30) for i in range(2500)]:
                f.result()
            pause_process({broker_pid}, True)
            for i in range(2500, 5000):
                p.send_async(TOPIC, f"exit-{{i}}")
            """,
            rocketmq_namesrv, topic,
        )
    finally:
        pause_process(broker_pid, False)
    assert r.returncode == 0, r.stderr
    plain = [ln for ln in r.stderr.splitlines() if ln.startswith("rmq_native: at exit,")]
    logged = [ln for ln in r.stderr.splitlines() if ln.startswith("LOGGER rmq_native WARNING rmq_native: at exit,")]
    assert plain and logged, r.stderr
    m = re.search(r"at exit, (\d+) of (\d+) asynchronous sends", plain[0])
    assert m, plain[0]
    assert (int(m.group(1)), int(m.group(2))) == (2500, 2500), plain[0]
    # the first half was stored; of the second, what reached the stalled
    # broker's socket may be stored after all (the warning says "could not
    # be sent within the timeout", not "lost")
    got = {m.body for m in stored(rocketmq_namesrv, topic, 2500, quiet=3)}
    assert {f"exit-{i}".encode() for i in range(2500)} <= got


def test_sync_sends_to_a_stalled_broker_end_at_their_deadline(rocketmq_namesrv: str, topic: str) -> None:
    """With the broker stalled (stopped, sockets open) every thread waiting
    in a synchronous send, plain sends and a batch, must end at its deadline
    with SendUnknownError, not hang; once the broker continues, the producer
    sends again and each stalled message is stored at most once, under the
    id it was given."""
    broker_pid = dev_broker_pid(rocketmq_namesrv)
    outcomes: dict[int, tuple[str, str, float]] = {}
    with Producer(rocketmq_namesrv, retries=2) as p:
        p.send(topic, b"warm-up", keys="warm")
        p.send_batch(topic, [b"warm-a", b"warm-b"])

        def one(i: int) -> None:
            t0 = time.monotonic()
            try:
                if i == 0:
                    p.send_batch(topic, [b"stalled-b0", b"stalled-b1"], timeout=1.0)
                else:
                    p.send(topic, f"stalled-{i}", keys=f"s{i}", timeout=1.0)
                outcomes[i] = ("sent", "", time.monotonic() - t0)
            except rmq_native.SendUnknownError as e:
                outcomes[i] = ("unknown", e.msg_id, time.monotonic() - t0)
            except Exception as e:  # reported by the assertion below
                outcomes[i] = (type(e).__name__, str(e), time.monotonic() - t0)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(5)]
        pause_process(broker_pid, True)
        try:
            for t in threads:
                t.start()
            for t in threads:
                t.join(15)
            assert not any(t.is_alive() for t in threads), "a synchronous send outlived its deadline by 14 s"
        finally:
            pause_process(broker_pid, False)
        for i, (kind, msg_id, took) in sorted(outcomes.items()):
            assert kind == "unknown" and msg_id, (i, kind, msg_id)
            assert 0.9 <= took <= 4.0, f"send {i} ended after {took:.2f} s, its deadline was 1 s"
        assert len(outcomes) == 5
        assert p.send(topic, b"after", keys="after", timeout=10).status == rmq_native.SendStatus.SEND_OK
    copies = stored_ids_by_key(rocketmq_namesrv, topic, 4)
    assert copies["after"] and copies["warm"]
    for i in range(1, 5):
        assert copies.get(f"s{i}", []) in ([], [outcomes[i][1]]), (i, copies.get(f"s{i}"), outcomes[i])


def test_a_lone_sync_send_to_a_stalled_broker_ends_at_its_deadline(rocketmq_namesrv: str, topic: str) -> None:
    """A send from the only sending thread waits for its answer outside the
    Go scheduler (go/send.go, attemptWaiting): with the broker stalled it
    must still end at its deadline with SendUnknownError naming its id, and
    once the broker continues that message is stored at most once, under
    that id, while the next send succeeds."""
    broker_pid = dev_broker_pid(rocketmq_namesrv)
    with Producer(rocketmq_namesrv, retries=2) as p:
        p.send(topic, b"warm-up", keys="warm")
        pause_process(broker_pid, True)
        try:
            t0 = time.monotonic()
            with pytest.raises(rmq_native.SendUnknownError) as info:
                p.send(topic, b"stalled-alone", keys="alone", timeout=1.0)
            took = time.monotonic() - t0
        finally:
            pause_process(broker_pid, False)
        assert info.value.msg_id
        assert 0.9 <= took <= 4.0, f"the send ended after {took:.2f} s, its deadline was 1 s"
        assert p.send(topic, b"after", keys="after", timeout=10).status == rmq_native.SendStatus.SEND_OK
    copies = stored_ids_by_key(rocketmq_namesrv, topic, 2)
    assert copies["after"] and copies["warm"]
    assert copies.get("alone", []) in ([], [info.value.msg_id]), copies.get("alone")


# ---------------------------------------------------------------- item 8: unknown outcomes, one id


def test_timeout_reports_unknown_outcome_with_the_stored_msg_id(rocketmq_namesrv: str, topic: str) -> None:
    """With a 1 ms deadline some sends are written but not answered in
    time: they raise SendUnknownError naming the id the stored copy has.
    No send stores copies after its deadline (at most one copy per send)."""
    outcome: dict[str, tuple[str, str]] = {}
    with Producer(rocketmq_namesrv, retries=2) as p:
        p.send(topic, b"warm-up", keys="warm")
        for i in range(3000):  # until a few sends ran into their deadline (a quiet machine answers most within 1 ms)
            if sum(1 for kind, _ in outcome.values() if kind == "unknown") >= 5:
                break
            key = f"k{i}"
            try:
                r = p.send(topic, f"m{i}", keys=key, timeout=0.001)
                outcome[key] = ("ok", r.msg_id)
            except rmq_native.SendUnknownError as e:
                assert e.msg_id and e.retriable and isinstance(e, rmq_native.TimeoutError)
                assert e.code == rmq_native.RocketMQError.code_send_unknown
                outcome[key] = ("unknown", e.msg_id)
            except rmq_native.TimeoutError:
                outcome[key] = ("not sent", "")
    unknown = [k for k, (kind, _) in outcome.items() if kind == "unknown"]
    assert unknown, f"no send ran into its deadline after being written: {outcome}"
    copies = stored_ids_by_key(rocketmq_namesrv, topic, sum(1 for kind, _ in outcome.values() if kind == "ok") + 1,
                               quiet=5.0)
    for key, (kind, msg_id) in outcome.items():
        ids = copies.get(key, [])
        assert len(ids) <= 1, f"{key} ({kind}) stored {len(ids)} times: {ids}"
        if kind == "ok":
            assert ids == [msg_id]
        elif kind == "unknown":
            assert ids in ([], [msg_id]), (key, ids, msg_id)
        else:
            assert ids == [], f"{key} raised a plain TimeoutError (not sent) but was stored"


def test_close_resolves_in_flight_sends_with_their_real_outcome(rocketmq_namesrv: str, topic: str) -> None:
    """close() right after 5,000 send_async: every future is resolved, and no
    future reports 'not sent' for a message that was stored."""
    p = Producer(rocketmq_namesrv, send_timeout=0.3)
    futures = {f"k{i}": p.send_async(topic, f"m{i}", keys=f"k{i}") for i in range(5000)}
    p.close()
    assert all(f.done() for f in futures.values())
    kinds: dict[str, int] = {}
    for f in futures.values():
        e = f.exception()
        kinds[type(e).__name__ if e else "ok"] = kinds.get(type(e).__name__ if e else "ok", 0) + 1
    ok = {k: f.result().msg_id for k, f in futures.items() if f.exception() is None}
    copies = stored_ids_by_key(rocketmq_namesrv, topic, len(ok))
    for key, f in futures.items():
        e = f.exception()
        ids = copies.get(key, [])
        assert len(ids) <= 1, (key, ids)
        if e is None:
            assert ids == [ok[key]], (key, ids)
        elif isinstance(e, rmq_native.SendUnknownError):
            assert ids in ([], [e.msg_id]), (key, ids, e.msg_id)
        else:
            assert ids == [], f"{key}: future failed with {e!r} ({kinds}) but the message was stored"


# ---------------------------------------------------------------- item 10: refusals by code and remark

ACL_NS_PORT, ACL_BROKER_PORT = 29976, 31011
UPDATE_BROKER_CONFIG, UPDATE_AND_CREATE_TOPIC = 25, 17


@pytest.fixture(scope="module")
def acl_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An own dev broker with ACL on (this module makes it read-only)."""
    home = tmp_path_factory.mktemp("refusals")
    ns = devbroker.start(namesrv_port=ACL_NS_PORT, broker_port=ACL_BROKER_PORT, home=home, acl=True, quiet=True)
    try:
        yield ns
    finally:
        devbroker.stop(home=home)


CREDS = {"access_key": devbroker.ACL_ACCESS_KEY, "secret_key": devbroker.ACL_SECRET_KEY}


def _message_illegal(ns: str, topic: str) -> None:
    # the broker's maxMessageSize is 4 MiB; the producer lets 5 MiB through
    with Producer(ns, max_message_size=8 * 1024 * 1024, compress_over=0, **CREDS) as p:
        p.send(topic, b"x" * (5 * 1024 * 1024))


def _read_only_broker(ns: str, topic: str) -> None:
    # A broker made read-only (brokerPermission=4, the usual drain for
    # maintenance) refuses writes to orderly topics with code 16 "the
    # broker[...] sending message is forbidden" (other topics' routes steer
    # producers away instead).
    addr = f"127.0.0.1:{ACL_BROKER_PORT}"
    creds = (devbroker.ACL_ACCESS_KEY, devbroker.ACL_SECRET_KEY)
    ordered = unique("TO")
    header, _ = devbroker.remoting_request(addr, UPDATE_AND_CREATE_TOPIC, {
        "topic": ordered, "defaultTopic": "TBW102", "readQueueNums": "2", "writeQueueNums": "2", "perm": "6",
        "topicFilterType": "SINGLE_TAG", "topicSysFlag": "0", "order": "true"}, credentials=creds)
    assert header.get("code") == 0, header
    with Producer(ns, retries=1, **CREDS) as p:
        deadline = time.monotonic() + 60
        while True:  # until the route is known (and cached from now on)
            try:
                p.send(ordered, b"route is cached")
                break
            except rmq_native.NoRouteError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)
        header, _ = devbroker.remoting_request(addr, UPDATE_BROKER_CONFIG, {}, b"brokerPermission=4\n",
                                               credentials=creds)
        assert header.get("code") == 0, header
        try:
            p.send(ordered, b"refused")
        finally:
            devbroker.remoting_request(addr, UPDATE_BROKER_CONFIG, {}, b"brokerPermission=6\n", credentials=creds)


def _wrong_secret(ns: str, topic: str) -> None:
    with Producer(ns, access_key=devbroker.ACL_ACCESS_KEY, secret_key="wrong-secret") as p:
        p.send(topic, b"refused")


#: (case, broker response, action, exception class, retriable)
REFUSALS: list[tuple[str, str, Callable[[str, str], None], type[rmq_native.RocketMQError], bool]] = [
    ("body over the broker's limit", "13 message illegal", _message_illegal, rmq_native.MessageRejectedError, False),
    ("read-only broker", "16 sending message is forbidden", _read_only_broker, rmq_native.ForbiddenError, True),
    ("wrong secret key (ACL)", "16 signature / no permission", _wrong_secret, rmq_native.AuthenticationError, False),
]


def test_broker_refusals_map_by_code_and_remark(acl_broker: str) -> None:
    topic = unique("TR")
    with rmq_native.Admin(acl_broker, **CREDS) as a:
        a.create_topic(topic, queues=2)
    failures = []
    for case, response, action, cls, retriable in REFUSALS:
        try:
            action(acl_broker, topic)
        except rmq_native.RocketMQError as e:
            if type(e) is not cls or e.retriable != retriable:
                failures.append(f"{case} ({response}): {type(e).__name__} retriable={e.retriable}: {e}")
        else:
            failures.append(f"{case} ({response}): no error")
    assert not failures, "\n".join(failures)
    assert issubclass(rmq_native.ForbiddenError, PermissionError)
    assert not issubclass(rmq_native.ForbiddenError, rmq_native.AuthenticationError)


# ---------------------------------------------------------------- item 12: helper threads survive


def test_completion_thread_survives_an_exception(
    rocketmq_namesrv: str, topic: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    real = completions_mod.resolve_futures
    calls = []

    def flaky(*args: object) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("boom in the completion thread")
        real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(completions_mod, "resolve_futures", flaky)
    with caplog.at_level(logging.ERROR, logger="rmq_native"), Producer(rocketmq_namesrv) as p:
        p.send_async(topic, b"first batch: its outcome is lost with the exception")
        deadline = time.monotonic() + 30
        while not calls and time.monotonic() < deadline:
            time.sleep(0.05)
        f = p.send_async(topic, b"second")
        assert f.result(timeout=30).status == rmq_native.SendStatus.SEND_OK
        assert p._pump is not None and p._pump.is_alive()
    assert any("boom in the completion thread" in r.getMessage() or (r.exc_info and "boom" in str(r.exc_info[1]))
               for r in caplog.records)


def test_transaction_check_thread_survives_an_exception(
    rocketmq_namesrv: str, topic: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    real = transaction_mod.answer_checks
    calls = []

    def flaky(*args: object) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("boom in the check thread")
        real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(transaction_mod, "answer_checks", flaky)
    answered = threading.Event()

    def check(msg: rmq_native.Message) -> rmq_native.TransactionState:
        answered.set()
        return rmq_native.TransactionState.COMMIT

    with caplog.at_level(logging.ERROR, logger="rmq_native"), \
            rmq_native.TransactionProducer(rocketmq_namesrv, unique("TXP"), check) as tp:
        tp.send_in_transaction(topic, b"unknown", execute=lambda m: rmq_native.TransactionState.UNKNOWN)
        # the first batch of checks raises; the broker asks again (every 3 s
        # on the dev broker) and the surviving thread answers
        assert answered.wait(120), "the check thread did not answer after its first failure"
    assert calls[0] == 1 and len(calls) >= 2
    assert any("rmq_native-tx-checks failed" in r.getMessage() for r in caplog.records)


# ---------------------------------------------------------------- back-pressure of asynchronous sends

def test_send_async_waits_for_room_under_max_pending(rocketmq_namesrv: str, topic: str) -> None:
    """A burst of send_async never holds more than max_pending sends (or
    max_pending_bytes of bodies) unfinished: each new one waits for room,
    and every message is stored."""
    bodies = [f"small-{i}".encode() for i in range(300)] + [f"big-{i}-".encode().ljust(3000, b"x") for i in range(300)]
    most, most_bytes = 0, 0
    with Producer(rocketmq_namesrv, max_pending=20, max_pending_bytes=30_000) as p:
        futs = []
        for body in bodies:
            futs.append(p.send_async(topic, body))
            most, most_bytes = max(most, p.pending), max(most_bytes, p._pending_bytes)
        assert all(f.result(30).status == rmq_native.SendStatus.SEND_OK for f in futs)
        assert p.pending == 0 and p._pending_bytes == 0
    assert 1 <= most <= 20, most
    assert most_bytes <= 30_000 + 3000, most_bytes  # room: under the limit before the last one
    got = [m.body for m in stored(rocketmq_namesrv, topic, len(bodies), quiet=3)]
    assert sorted(got) == sorted(bodies)


def test_send_async_without_room_ends_at_its_timeout_and_callbacks_never_wait(rocketmq_namesrv: str,
                                                                              topic: str) -> None:
    """With the broker stalled and max_pending sends unfinished, a new
    send_async raises TimeoutError at its timeout and sends nothing; the
    unfinished ones complete once the broker continues. A send from a
    future's callback (the thread that finishes sends) never waits for room."""
    broker_pid = dev_broker_pid(rocketmq_namesrv)
    with Producer(rocketmq_namesrv, max_pending=3) as p:
        p.send(topic, b"warm-up")
        pause_process(broker_pid, True)
        try:
            stalled = [p.send_async(topic, f"stalled-{i}") for i in range(3)]
            t0 = time.monotonic()
            with pytest.raises(rmq_native.TimeoutError, match=r"max_pending=3\b.*nothing was sent") as err:
                p.send_async(topic, b"no-room", timeout=0.5)
            took = time.monotonic() - t0
            assert 0.45 <= took <= 2.0, took
            assert err.value.retriable
        finally:
            pause_process(broker_pid, False)
        assert [f.result(10).status for f in stalled] == [rmq_native.SendStatus.SEND_OK] * 3
        assert p.stats()["send_failed"] == 1

        chained: list[object] = []

        with Producer(rocketmq_namesrv, max_pending=1, send_timeout=3) as q:

            def send_three(f: object) -> None:  # on the completion thread: the second and third find no room
                t = time.monotonic()
                try:
                    chained.extend(q.send_async(topic, f"chained-{i}") for i in range(3))
                except Exception as e:  # reported below
                    chained.append(e)
                chained.append(time.monotonic() - t)

            q.send_async(topic, b"first").add_done_callback(send_three)  # type: ignore[arg-type]
            deadline = time.monotonic() + 10
            while len(chained) < 4 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert len(chained) == 4, chained
            assert chained[3] < 1.0, f"a callback's send waited {chained[3]:.2f} s for room"
            assert all(f.result(10).status == rmq_native.SendStatus.SEND_OK for f in chained[:3])  # type: ignore[attr-defined]
    want = {b"warm-up", b"first"} | {f"stalled-{i}".encode() for i in range(3)} | {
        f"chained-{i}".encode() for i in range(3)}
    got = [m.body for m in stored(rocketmq_namesrv, topic, len(want), quiet=3)]
    assert sorted(got) == sorted(want)  # each once; "no-room" never sent


def test_sends_the_broker_refuses_free_their_room(rocketmq_namesrv: str, topic: str) -> None:
    """A send the broker refuses (a body over its 4 MiB limit, let through
    by the producer's own limit) finishes with its error and frees its room
    under max_pending at once: the next sends neither wait nor fail, and the
    accounting returns to zero."""
    with Producer(rocketmq_namesrv, max_pending=1, max_message_size=8 * 1024 * 1024, compress_over=0,
                  retries=0) as p:
        t0 = time.monotonic()
        refused = []
        for _ in range(3):  # each waits for the one before it, refused within milliseconds
            refused.append(p.send_async(topic, b"x" * (5 * 1024 * 1024)))
        for f in refused:
            with pytest.raises(rmq_native.MessageRejectedError):
                f.result(10)
        ok = p.send_async(topic, b"after the refusals")
        assert ok.result(10).status == rmq_native.SendStatus.SEND_OK
        took = time.monotonic() - t0
        assert took < 2.5, f"sends waited {took:.2f} s for room a refused send held"
        assert p.pending == 0 and p._pending_bytes == 0
        assert p.stats()["send_failed"] == 3


def test_aio_send_waits_for_room_off_the_event_loop(rocketmq_namesrv: str, topic: str) -> None:
    """aio.Producer.send under back-pressure waits on a thread, never on the
    event loop; a send cancelled while it waits for room sends nothing."""
    import asyncio

    from rmq_native import aio

    broker_pid = dev_broker_pid(rocketmq_namesrv)

    async def main() -> tuple[float, int]:
        async with aio.Producer(rocketmq_namesrv, max_pending=1) as p:
            await p.send(topic, b"warm-up")
            gaps: list[float] = []
            stop = asyncio.Event()

            async def tick() -> None:
                last = time.monotonic()
                while not stop.is_set():
                    await asyncio.sleep(0.01)
                    now = time.monotonic()
                    gaps.append(now - last)
                    last = now

            ticker = asyncio.create_task(tick())
            results = await asyncio.gather(*(p.send(topic, f"many-{i}") for i in range(50)))
            assert all(r.status == rmq_native.SendStatus.SEND_OK for r in results)
            pause_process(broker_pid, True)
            try:
                first = asyncio.create_task(p.send(topic, b"stalled"))
                await asyncio.sleep(0.2)
                waiting = asyncio.create_task(p.send(topic, b"cancelled"))
                await asyncio.sleep(0.5)
                assert not first.done() and not waiting.done()
                waiting.cancel()
            finally:
                pause_process(broker_pid, False)
            assert (await first).status == rmq_native.SendStatus.SEND_OK
            with pytest.raises(asyncio.CancelledError):
                await waiting
            await asyncio.sleep(0.5)
            stop.set()
            await ticker
            return max(gaps), p.stats()["sent"]

    worst_gap, sent = asyncio.run(main())
    assert worst_gap < 0.5, f"the event loop stalled {worst_gap:.2f} s"  # the broker is paused for 0.7 s
    assert sent == 52
    got = [m.body for m in stored(rocketmq_namesrv, topic, 52, quiet=3)]
    assert b"cancelled" not in got and len(got) == 52
