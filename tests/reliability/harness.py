"""Shared machinery of the reliability suite (tests/reliability) and its
sample in the normal run (tests/test_reliability_sample.py).

Everything that could crash the interpreter (raw C ABI fuzzing) or whose
numbers must not be disturbed by the test process (RSS) runs in a child
Python process; a crash there is a failed test, not a dead test session.
"""

from __future__ import annotations

import collections
import datetime as dt
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

import rmq_native
from rmq_native import Consumer, Producer, _ffi

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent
#: The committed results: written only by a run that asks for it on purpose
#: (``RMQ_NATIVE_RECORD_RESULTS=1``, see the README's "Reliability" section).
RESULTS = HERE / "results.json"
#: Where every other run writes its results (ignored by git: a test run leaves the tree clean).
RUN_RESULTS = HERE / "runs" / "results.json"
RECORD_ENV = "RMQ_NATIVE_RECORD_RESULTS"

#: Exceptions the public API documents (anything else is a bug).
DOCUMENTED = (rmq_native.RocketMQError, TypeError, ValueError)

#: Status codes of the C ABI (rmq_native.h).
# every status the C ABI documents (RMQ_OK and the RMQ_ERR_* codes of the header)
ABI_CODES = {int(v) for v in re.findall(r"^#define RMQ_(?:OK|ERR_[A-Z_]+) (\d+)",
                                        (Path(__file__).resolve().parents[2] / "go" / "rmq_native.h").read_text(),
                                        re.M)}


def results_path() -> Path:
    """RESULTS when the environment sets RECORD_ENV=1, else RUN_RESULTS."""
    return RESULTS if os.environ.get(RECORD_ENV) == "1" else RUN_RESULTS


def record_result(key: str, value: Any) -> None:
    """Merge one measurement into :func:`results_path` and print it."""
    path = results_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = {}
    data[key] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(f"[reliability] {key}: {json.dumps(value)}", flush=True)


# goroutines a closed push consumer leaves asleep for minutes to a month (go/reap.go)
CONSUMER_RESIDUE_GOROUTINES = 16


def stats() -> dict[str, int]:
    """rmq_debug_stats of this process."""
    out = _ffi.ffi.new("uint8_t **")
    n = _ffi.ffi.new("int64_t *")
    _ffi.check(_ffi.lib().rmq_debug_stats(out, n))
    return dict(json.loads(_ffi.take_buffer(out[0], n[0])))


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_child(func: str, *args: Any, timeout: float = 600, env: dict[str, str] | None = None) -> Any:
    """Run ``reliability.harness.<func>(*args)`` in a fresh interpreter; return its JSON result.

    A crash (signal, non-zero exit) raises AssertionError with the child's output."""
    code = (
        "import json, sys\n"
        "from reliability import harness\n"
        f"res = getattr(harness, {func!r})(*json.loads(sys.argv[1]))\n"
        "print('@@RESULT@@' + json.dumps(res), flush=True)\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code, json.dumps(list(args))],
        env={**child_env(), **(env or {})}, capture_output=True, text=True, timeout=timeout,
    )
    assert r.returncode == 0, f"{func} child exited with {r.returncode}:\n{r.stdout[-3000:]}\n{r.stderr[-5000:]}"
    for line in r.stdout.splitlines():
        if line.startswith("@@RESULT@@"):
            return json.loads(line[len("@@RESULT@@"):])
    raise AssertionError(f"{func} child printed no result:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")


# --------------------------------------------------------------------------- consumer killed with SIGKILL

_CONSUMER_CHILD = r"""
import os, sys
from rmq_native import Consumer
ns, group, topic, out = sys.argv[1:5]
fd = os.open(out, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
with Consumer(ns, group, topic, from_where="first", max_inflight=64) as c:
    # the loop acknowledges a message when it asks for the next one, so the
    # line is in the kernel (it survives SIGKILL) before the message is acked
    for msg in c.messages():
        os.write(fd, msg.body + b"\n")
"""


def consumer_kill_trials(
    ns: str, topic: str, group: str, n_messages: int, trials: int, workdir: Path, seed: int | None = None,
    final_timeout: float = 180.0,
) -> dict[str, Any]:
    """Send ``n_messages`` while a consumer process is SIGKILLed ``trials`` times at
    random moments and restarted; then let a last consumer finish. Returns the counts."""
    rnd = random.Random(seed)
    out = workdir / f"received-{group}.txt"
    out.write_bytes(b"")
    sent: set[int] = set()
    send_errors: list[str] = []
    pace = n_messages / max(5.0, trials * 2.5)  # messages per second: sending spans the kills

    def produce() -> None:
        with Producer(ns, send_timeout=5) as p:
            t0 = time.monotonic()
            for i in range(n_messages):
                ahead = i / pace - (time.monotonic() - t0)
                if ahead > 0:
                    time.sleep(ahead)
                for _attempt in range(5):
                    try:
                        p.send(topic, str(i))
                        sent.add(i)
                        break
                    except rmq_native.RocketMQError as e:
                        send_errors.append(repr(e))
                        time.sleep(0.5)

    def spawn() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-c", _CONSUMER_CHILD, ns, group, topic, str(out)],
            env=child_env(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )

    sender = threading.Thread(target=produce, daemon=True)
    t_start = time.monotonic()
    sender.start()
    kills = []
    for _ in range(trials):
        proc = spawn()
        wait = rnd.uniform(0.3, 4.0)
        time.sleep(wait)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        kills.append(round(wait, 2))
    sender.join(600)
    assert not sender.is_alive(), "the producer did not finish"

    def received() -> collections.Counter[int]:
        c: collections.Counter[int] = collections.Counter()
        for line in out.read_bytes().splitlines():
            if line.strip():
                c[int(line)] += 1
        return c

    final = spawn()
    deadline = time.monotonic() + final_timeout
    try:
        while time.monotonic() < deadline and not sent <= set(received()):
            assert final.poll() is None, final.stderr.read().decode()[-3000:] if final.stderr else ""
            time.sleep(0.5)
    finally:
        final.send_signal(signal.SIGTERM)
        try:
            final.wait(30)
        except subprocess.TimeoutExpired:
            final.kill()
            final.wait(10)
    got = received()
    missing = sorted(sent - set(got))
    total = sum(got.values())
    dups = total - len(got)
    return {
        "messages": n_messages,
        "acknowledged_sends": len(sent),
        "send_errors": len(send_errors),
        "kills": trials,
        "kill_after_s": kills,
        "received_total": total,
        "received_unique": len(got),
        "missing": len(missing),
        "missing_sample": missing[:20],
        "duplicates": dups,
        "duplicate_rate": round(dups / max(1, n_messages), 4),
        "seconds": round(time.monotonic() - t_start, 1),
    }


# --------------------------------------------------------------------------- memory


def _rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def roundtrip(ns: str, topic: str, group: str, n: int, body_size: int = 100) -> float:
    """Send n messages (asynchronously, bounded) and receive them all; returns seconds."""
    t0 = time.monotonic()
    body = b"m" * body_size
    got = 0
    done = threading.Event()

    def consume() -> None:
        nonlocal got
        with Consumer(ns, group, topic, from_where="first", max_inflight=256, batch_size=64) as c:
            last = time.monotonic()
            while got < n and time.monotonic() - last < 60:
                m = c.receive(timeout=1)
                if m is not None:
                    m.ack()
                    got += 1
                    last = time.monotonic()
        done.set()

    th = threading.Thread(target=consume, daemon=True)
    th.start()
    with Producer(ns, send_timeout=10) as p:
        futs: collections.deque[Any] = collections.deque()
        for _ in range(n):
            futs.append(p.send_async(topic, body))
            if len(futs) >= 2000:
                futs.popleft().result(30)
        for f in futs:
            f.result(30)
    th.join(600)
    assert got >= n, f"received {got} of {n}"
    return time.monotonic() - t0


def rss_growth(ns: str, topic: str, n: int, warmup: int) -> dict[str, Any]:
    """In a fresh process: warm up, then n messages round trip; RSS before/after (MiB)."""
    import gc

    roundtrip(ns, topic, f"rss_{os.getpid()}_w", warmup)
    gc.collect()
    time.sleep(2)
    before = _rss_bytes()
    secs = roundtrip(ns, topic, f"rss_{os.getpid()}_m", n)
    gc.collect()
    time.sleep(2)
    after = _rss_bytes()
    return {
        "messages": n,
        "warmup": warmup,
        "rss_before_mib": round(before / 2**20, 1),
        "rss_after_mib": round(after / 2**20, 1),
        "rss_growth_mib": round((after - before) / 2**20, 1),
        "seconds": round(secs, 1),
    }


def create_close_cycles(ns: str, topic: str, group: str, cycles: int) -> dict[str, Any]:
    """``cycles`` x (Producer send/close, Consumer receive/close, Admin close): handles and
    goroutines back to the baseline, except the bounded residue of each closed consumer
    (CONSUMER_RESIDUE_GOROUTINES, see tests/test_lifecycle.py)."""
    with Producer(ns) as warm:
        warm.send(topic, b"warm")
    with Consumer(ns, group, topic, from_where="first") as c:
        c.receive(timeout=10)
    time.sleep(1)
    before = stats()
    t0 = time.monotonic()
    for i in range(cycles):
        with Producer(ns) as p:
            p.send(topic, f"cycle {i}")
        with Consumer(ns, group, topic) as c:
            c.receive(timeout=0.1)
        with rmq_native.Admin(ns):
            pass
    secs = time.monotonic() - t0
    after = stats()
    deadline = time.monotonic() + 60
    while stats()["goroutines"] > before["goroutines"] + CONSUMER_RESIDUE_GOROUTINES * cycles and \
            time.monotonic() < deadline:
        time.sleep(0.5)
    settled = stats()
    return {
        "cycles": cycles,
        "seconds": round(secs, 1),
        "before": before,
        "right_after": after,
        "settled": settled,
        "settle_seconds": round(time.monotonic() - t0 - secs, 1),
    }


# --------------------------------------------------------------------------- multiprocessing (spawn)


def spawn_child_roundtrip(ns: str, topic: str, group: str, token: str) -> str:
    """Runs in a child started with multiprocessing's spawn method."""
    with Producer(ns) as p:
        p.send(topic, token)
    with Consumer(ns, group, topic, from_where="first") as c:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            m = c.receive(timeout=1)
            if m is not None:
                m.ack()
                if m.text == token:
                    return token
    return "nothing received"


# --------------------------------------------------------------------------- raw C ABI fuzzing


def abi_fuzz(ns: str, topic: str, cases: int, seed: int, allow_create: bool) -> dict[str, Any]:
    """Random calls of the C ABI with random handles, struct fields, lengths (negative,
    NULL with non-zero length; lengths never beyond the buffers allocated here), JSON
    configs, ids, kinds, delays and timeouts. Checks that every status is a documented
    one and comes with an "rmq_native:" message. Runs in a child process."""
    rnd = random.Random(seed)
    ffi, lib = _ffi.ffi, _ffi.lib()
    keep: list[Any] = []
    counts: collections.Counter[str] = collections.Counter()
    codes: collections.Counter[int] = collections.Counter()
    problems: list[str] = []

    def new_handle(fn: str, cfg: bytes) -> int:
        h = ffi.new("uint64_t *")
        rc = getattr(lib, fn)(cfg, len(cfg), h)
        if rc != 0:
            raise RuntimeError(f"{fn}: {_ffi.last_error()}")
        return int(h[0])

    base = {"name_server": ns}
    producer = new_handle("rmq_producer_new", json.dumps({**base, "send_timeout_ms": 2000}).encode())
    consumer = new_handle("rmq_consumer_new", json.dumps({
        **base, "group": f"abifuzz_{os.getpid()}", "from_where": "first",
        "subscriptions": [{"topic": topic, "type": "tag", "expression": "*"}]}).encode())
    admin = new_handle("rmq_admin_new", json.dumps(base).encode())
    closed = new_handle("rmq_producer_new", json.dumps(base).encode())
    lib.rmq_producer_close(closed)
    delivery_ids: list[int] = []

    def rint(bits: int, signed: bool = True) -> int:
        choice = rnd.random()
        if choice < 0.3:
            return rnd.choice([0, 1, -1, 2, 18, 19, 100, 1000, 2**31 - 1, -(2**31)] if signed else [0, 1, 2, 2**64 - 1])
        if signed:
            return rnd.randint(-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
        return rnd.randint(0, 2**bits - 1)

    def timeout_ms() -> int:
        return rnd.choice([0, -1, -(2**31), 1, 5, 20, 50, rnd.randint(-5000, 100)])

    def handle(real: int) -> int:
        return rnd.choice([real, real, real, 0, closed, rint(64, signed=False), real + 1000])

    def rbytes() -> bytes:
        kind = rnd.random()
        if kind < 0.25:
            return topic.encode()
        if kind < 0.5:
            return bytes(rnd.getrandbits(8) for _ in range(rnd.randint(0, 40)))
        if kind < 0.6:
            return "".join(chr(rnd.randint(0x80, 0x10FFFF)) for _ in range(rnd.randint(1, 20))).encode(
                "utf-8", "surrogatepass")
        if kind < 0.65:
            return os.urandom(rnd.choice([4096, 70000, 1 << 20]))
        if kind < 0.8:
            return b"\0".join(bytes(rnd.getrandbits(8) for _ in range(rnd.randint(0, 8))) for _ in range(5)) + b"\0"
        return rnd.choice([b"", b" ", b"a b", b"k\0v\0", b"k\0", b"\0\0\0\0", b"TAG", b"x" * 200])

    def ptr_len() -> tuple[Any, int]:
        r = rnd.random()
        if r < 0.1:
            return ffi.NULL, 0
        if r < 0.2:
            return ffi.NULL, rnd.choice([1, 5, 2**31, 2**62, -1])  # NULL with a non-zero length
        data = rbytes()
        buf = ffi.new("char[]", data) if data else ffi.new("char[]", 1)
        keep.append(buf)
        n = len(data)
        if r < 0.3:
            return buf, rnd.choice([-1, -(2**63), -rnd.randint(1, 2**40)])  # negative lengths
        return buf, rnd.randint(0, n) if rnd.random() < 0.3 else n  # never beyond the buffer

    valid = {"topic": topic.encode(), "body": b"fuzz body", "tags": b"TagA", "keys": b"k1 k2",
             "properties": b"a\0b\0", "sharding_key": b""}

    def fill(m: Any) -> None:
        # half the messages are valid but for one or two fields, the others random throughout
        perturb = set(valid) if rnd.random() < 0.5 else set(rnd.sample(sorted(valid), rnd.randint(0, 2)))
        for f in valid:
            if f in perturb:
                p, n = ptr_len()
            else:
                p = ffi.new("char[]", valid[f])
                keep.append(p)
                n = len(valid[f])
            setattr(m, f, p)
            setattr(m, f + "_len", n)
        ok = not perturb or rnd.random() < 0.5
        m.deliver_at_ms = 0 if ok else rnd.choice([0, -1, int(time.time() * 1000) + 5000, rint(64)])
        m.delay_level = 0 if ok else rnd.choice([0, 1, 18, 19, -1, rint(32)])
        m.reserved = 0 if ok else rnd.choice([0, 1, rint(32)])

    def random_config() -> bytes:
        r = rnd.random()
        if r < 0.15:
            return bytes(rnd.getrandbits(8) for _ in range(rnd.randint(0, 60)))
        if r < 0.25:
            return rnd.choice([b"", b"null", b"[]", b"{}", b"{", b'{"name_server": null}', b"1e999",
                               b'{"name_server": "127.0.0.1:1", "group": 5}'])
        values: list[Any] = [None, True, -1, 0, 2**63, 1.5, "", "x" * 300, "127.0.0.1:1", ns, "ü\u2603",
                             [], {}, [{"topic": topic, "type": "tag", "expression": "*"}],
                             [{"topic": "a", "type": "sqlx", "expression": "(("}], "first", "timestamp",
                             "20000101000000", "broadcasting", "clustering"]
        keys = ["name_server", "group", "instance_name", "send_timeout_ms", "retries", "namespace",
                "access_key", "secret_key", "compress_over", "compress_level", "max_message_size",
                "subscriptions", "model", "from_where", "timestamp", "max_reconsume_times", "max_inflight",
                "pull_batch_size", "max_prefetch_mib", "orderly", "timeout_ms", "bogus", ""]
        cfg = {k: rnd.choice(values) for k in rnd.sample(keys, rnd.randint(0, 6))}
        if rnd.random() < 0.8:
            cfg["name_server"] = "127.0.0.1:1"  # unreachable: creation fails fast
        return json.dumps(cfg).encode()

    def call(name: str, rc: int) -> None:
        counts[name] += 1
        codes[rc] += 1
        if rc not in ABI_CODES:
            problems.append(f"{name}: undocumented status {rc}")
        elif rc != 0:
            msg = _ffi.last_error()
            if not msg.startswith("rmq_native:"):
                problems.append(f"{name}: status {rc} with message {msg!r}")
            if rc == 6:  # RMQ_ERR_INTERNAL: a recovered panic = a bug
                problems.append(f"{name}: internal error {msg!r}")

    out_res = ffi.new("rmq_send_result *")
    pbuf = ffi.new("uint8_t **")
    plen = ffi.new("int64_t *")
    pcount = ffi.new("int32_t *")

    def take() -> None:
        if pbuf[0] != ffi.NULL:
            lib.rmq_free(pbuf[0])
            pbuf[0] = ffi.NULL

    ops: list[tuple[str, Callable[[], None]]] = []

    def op_send() -> None:
        m = ffi.new("rmq_message *")
        fill(m)
        call("rmq_producer_send", lib.rmq_producer_send(handle(producer), rnd.choice([m, m, m, ffi.NULL]),
                                                        timeout_ms(), rnd.choice([out_res, out_res, ffi.NULL])))

    def op_oneway() -> None:
        m = ffi.new("rmq_message *")
        fill(m)
        call("rmq_producer_send_oneway", lib.rmq_producer_send_oneway(handle(producer), m))

    def op_async() -> None:
        m = ffi.new("rmq_message *")
        fill(m)
        call("rmq_producer_send_async",
             lib.rmq_producer_send_async(handle(producer), m, timeout_ms(), rint(64, signed=False)))
        call("rmq_producer_poll_completions", lib.rmq_producer_poll_completions(
            handle(producer), rint(32), rnd.choice([0, 1, 10, -1]), pbuf, plen, pcount))
        take()

    def op_batch() -> None:
        k = rnd.randint(1, 8)
        msgs = ffi.new("rmq_message[]", k)
        for i in range(k):
            fill(msgs[i])
        count = rnd.choice([k, k, rnd.randint(-3, k)])
        ids = ffi.new("uint8_t **")
        idl = ffi.new("int64_t *")
        call("rmq_producer_send_batch", lib.rmq_producer_send_batch(
            handle(producer), rnd.choice([msgs, msgs, ffi.NULL]), count, timeout_ms(), out_res,
            rnd.choice([ids, ids, ffi.NULL]), idl))
        if ids[0] != ffi.NULL:
            lib.rmq_free(ids[0])

    def op_poll() -> None:
        rc = lib.rmq_consumer_poll(handle(consumer), rint(32), rnd.choice([0, 1, 20, -1, -(2**31)]),
                                   pbuf, plen, pcount)
        call("rmq_consumer_poll", rc)
        if rc == 0 and pcount[0] > 0:
            data = bytes(ffi.buffer(pbuf[0], plen[0]))
            off = 0
            for _ in range(pcount[0]):  # collect delivery ids to settle them later
                delivery_ids.append(int.from_bytes(data[off:off + 8], "little"))
                off += 40
                for _f in range(8):
                    n = int.from_bytes(data[off:off + 4], "little")
                    off += 4 + n
        take()

    def op_ack() -> None:
        k = rnd.randint(0, 6)
        ids = [delivery_ids.pop() if delivery_ids and rnd.random() < 0.5 else rint(64, signed=False)
               for _ in range(k)]
        arr = ffi.new("uint64_t[]", ids) if ids else ffi.NULL
        count = rnd.choice([k, k, rnd.randint(-3, k)])
        if arr == ffi.NULL and rnd.random() < 0.5:
            count = rnd.choice([0, 1, 5])  # NULL ids with a non-zero count
        settled = ffi.new("int32_t *")
        call("rmq_consumer_ack", lib.rmq_consumer_ack(
            handle(consumer), arr, count, rnd.choice([0, 1, 2, -1, rint(32)]),
            rnd.choice([0, 1, 18, 19, -1, rint(32)]), rnd.choice([settled, ffi.NULL])))

    def op_new() -> None:
        fn = rnd.choice(["rmq_producer_new", "rmq_tx_producer_new", "rmq_consumer_new", "rmq_admin_new"])
        cfg = random_config()
        h = ffi.new("uint64_t *")
        if rnd.random() < 0.1:
            rc = getattr(lib, fn)(ffi.NULL, rnd.choice([0, 5, -1]), h)
        else:
            n = rnd.choice([len(cfg), len(cfg), rnd.randint(-2, len(cfg))])
            rc = getattr(lib, fn)(cfg, n, rnd.choice([h, h, h, ffi.NULL]))
        call(fn, rc)
        if rc == 0:
            close = {"rmq_consumer_new": "rmq_consumer_close", "rmq_admin_new": "rmq_admin_close"}.get(
                fn, "rmq_producer_close")
            call(close, getattr(lib, close)(h[0]))

    def op_admin() -> None:
        p, n = ptr_len()
        c, cn = ptr_len()
        queues = rint(32)
        h = handle(admin)
        if h == admin and not allow_create and rnd.random() < 0.9:
            queues = rnd.choice([0, -1, 1025, 2**31 - 1])  # never creates a topic on a shared broker
        elif h == admin and not allow_create:
            h = closed
        call("rmq_admin_create_topic", lib.rmq_admin_create_topic(h, p, n, queues, c, cn))
        if h != admin:
            call("rmq_admin_delete_topic", lib.rmq_admin_delete_topic(h, p, n))

    def op_tx() -> None:
        call("rmq_tx_end", lib.rmq_tx_end(rint(64, signed=False), rint(64, signed=False), rint(32),
                                           rnd.choice([out_res, ffi.NULL])))
        call("rmq_tx_check_reply", lib.rmq_tx_check_reply(handle(producer), rint(64, signed=False), rint(32)))
        call("rmq_tx_poll_checks", lib.rmq_tx_poll_checks(handle(producer), rint(32), timeout_ms(),
                                                          pbuf, plen, pcount))
        take()
        m = ffi.new("rmq_message *")
        fill(m)
        tx = ffi.new("uint64_t *")
        call("rmq_tx_send", lib.rmq_tx_send(handle(producer), m, timeout_ms(), out_res, tx))

    def op_misc() -> None:
        cap = rnd.choice([0, 1, 2, 7, 64, 1024, -1, -(2**31)])
        buf = ffi.new("char[]", max(cap, 1))
        ln = lib.rmq_last_error(rnd.choice([buf, ffi.NULL]) if cap > 0 else rnd.choice([buf, ffi.NULL]),
                                cap if cap <= max(cap, 1) else 1)
        counts["rmq_last_error"] += 1
        if ln < 0:
            problems.append(f"rmq_last_error returned {ln}")
        call("rmq_version", lib.rmq_version(buf if cap > 0 else rnd.choice([buf, ffi.NULL]), max(min(cap, 1), cap)))
        lib.rmq_free(ffi.NULL)
        call("rmq_set_log_level", lib.rmq_set_log_level(rint(32)))
        call("rmq_log_poll", lib.rmq_log_poll(rnd.choice([0, 1, -1]), pbuf, plen, pcount))
        take()
        call("rmq_producer_close", lib.rmq_producer_close(rnd.choice([0, closed, rint(64, signed=False)])))
        call("rmq_consumer_close", lib.rmq_consumer_close(rnd.choice([0, rint(64, signed=False)])))
        call("rmq_set_state_dir", lib.rmq_set_state_dir(ffi.NULL, rnd.choice([1, 5, -1])))

    ops = [("send", op_send), ("send", op_send), ("oneway", op_oneway), ("async", op_async),
           ("batch", op_batch), ("poll", op_poll), ("ack", op_ack), ("new", op_new), ("admin", op_admin),
           ("tx", op_tx), ("misc", op_misc)]
    t0 = time.monotonic()
    for _ in range(cases):
        rnd.choice(ops)[1]()
        counts["cases"] += 1
        if len(keep) > 2000:
            keep.clear()
    # settle what is still taken, then close everything
    while delivery_ids:
        arr = ffi.new("uint64_t[]", delivery_ids[:1000])
        lib.rmq_consumer_ack(consumer, arr, len(delivery_ids[:1000]), 0, 0, ffi.NULL)
        del delivery_ids[:1000]
    for fn, h in (("rmq_producer_close", producer), ("rmq_consumer_close", consumer), ("rmq_admin_close", admin)):
        call(fn, getattr(lib, fn)(h))
    return {
        "cases": counts["cases"],
        "calls": sum(v for k, v in counts.items() if k != "cases"),
        "per_function": {k: v for k, v in sorted(counts.items()) if k != "cases"},
        "status_codes": {str(k): v for k, v in sorted(codes.items())},
        "problems": problems[:50],
        "problem_count": len(problems),
        "seconds": round(time.monotonic() - t0, 1),
    }


# --------------------------------------------------------------------------- Python API fuzzing (hypothesis)


def python_api_strategies(topic: str) -> Any:
    """Hypothesis strategies for the public API's arguments (invalid and extreme values)."""
    from hypothesis import strategies as st

    huge_text = st.sampled_from(["x" * 70_000, "ü" * 40_000, "k" * (1 << 20)])
    text = st.one_of(st.text(max_size=40), st.text(alphabet=st.characters(), max_size=300), huge_text,
                     st.sampled_from(["", " ", "\x00", "a\x01b", "\u2603", "\ud800", "a b", "||", "*", "%DLQ%x"]))
    odd = st.one_of(st.none(), st.integers(), st.floats(), st.booleans(), st.binary(max_size=20),
                    st.lists(st.integers(), max_size=3), st.just(object()))
    topics = st.one_of(st.just(topic), st.just(topic), text, odd,
                       st.sampled_from(["a" * 127, "a" * 128, "TBW102", "%RETRY%x", "-", "|"]))
    bodies = st.one_of(st.binary(max_size=300), st.text(max_size=100), odd,
                       st.sampled_from([b"", b"\0" * 10, b"z" * (4 * 1024 * 1024), b"z" * (4 * 1024 * 1024 + 1),
                                        bytearray(b"ba"), memoryview(b"mv")]))
    keys = st.one_of(st.none(), text, st.lists(text, max_size=4), odd)
    props = st.one_of(st.none(), st.dictionaries(text, text, max_size=4), odd,
                      st.dictionaries(st.sampled_from(["UNIQ_KEY", "KEYS", "TAGS", "DELAY", "__STARTDELIVERTIME",
                                                       "TRAN_MSG", "k", ""]), text, max_size=3))
    numbers = st.one_of(st.none(), st.integers(min_value=-(2**70), max_value=2**70),
                        st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0, 1, 18, 19, -1, True]),
                        odd)
    timeouts = st.one_of(st.none(), st.floats(min_value=-1e300, max_value=5.0), st.sampled_from(
        [0, 0.0, -1, float("nan"), 1e-9, 2**40, 1e300, float("inf"), "1", True]))
    dates = st.one_of(st.none(), st.datetimes(min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30)),
                      odd)
    return {"topic": topics, "body": bodies, "text": text, "keys": keys, "props": props, "numbers": numbers,
            "timeouts": timeouts, "dates": dates, "odd": odd}


def fuzz_python_api(ns: str, topic: str, group: str, examples: int) -> dict[str, Any]:
    """Hypothesis over Producer/Consumer/Admin/Message calls with invalid and extreme
    values; any exception other than the documented ones fails. Returns counts."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    s = python_api_strategies(topic)
    counts: collections.Counter[str] = collections.Counter()
    undocumented: list[str] = []
    settings_ = settings(max_examples=examples, deadline=None, database=None, derandomize=False,
                         suppress_health_check=list(HealthCheck), print_blob=True)

    def guard(name: str, fn: Callable[[], Any]) -> Any:
        counts[name] += 1
        try:
            res = fn()
            counts[f"{name}:ok"] += 1
            return res
        except DOCUMENTED as e:
            counts[f"{name}:{type(e).__name__}"] += 1
            assert str(e), f"{name}: empty message from {type(e).__name__}"
            return None
        except Exception as e:  # noqa: BLE001 - the point of the test
            undocumented.append(f"{name}: {type(e).__name__}: {e!r}"[:300])
            return None

    with Producer(ns, send_timeout=3) as producer, Consumer(ns, group, topic, from_where="first") as consumer:

        fields = {
            "topic": s["topic"], "body": s["body"], "tags": st.one_of(st.none(), s["text"], s["odd"]),
            "keys": s["keys"], "properties": s["props"], "delay_level": s["numbers"],
            "delay": st.one_of(st.none(), s["timeouts"], s["numbers"]), "deliver_at": s["dates"],
            "sharding_key": st.one_of(st.none(), s["text"], s["odd"]), "timeout": s["timeouts"],
        }
        valid = {"topic": topic, "body": b"fuzz", "tags": "TagA", "keys": ["k1"], "properties": {"a": "b"},
                 "delay_level": None, "delay": None, "deliver_at": None, "sharding_key": None, "timeout": None}

        @settings_
        @given(data=st.data(), mode=st.sampled_from(["send", "send", "async", "oneway", "batch"]),
               perturb=st.one_of(st.sets(st.sampled_from(sorted(fields)), min_size=1, max_size=2),
                                 st.just(set(fields))))
        def sends(data: Any, mode: str, perturb: set[str]) -> None:
            v = dict(valid)
            for f in sorted(perturb):
                v[f] = data.draw(fields[f], label=f)
            topic_, body = v.pop("topic"), v.pop("body")
            opts = {k: v[k] for k in ("tags", "keys", "properties")}
            if mode == "send":
                guard("Producer.send", lambda: producer.send(topic_, body, **v))
            elif mode == "async":
                fut = guard("Producer.send_async", lambda: producer.send_async(topic_, body, **v))
                if fut is not None:
                    guard("Producer.send_async.result", lambda: fut.result(30))
            elif mode == "oneway":
                guard("Producer.send_oneway", lambda: producer.send_oneway(topic_, body,
                                                                         sharding_key=v["sharding_key"], **opts))
            else:
                items = [body, rmq_native.OutgoingMessage(b"x", **opts)] if not isinstance(body, (int, float)) \
                    else body
                guard("Producer.send_batch", lambda: producer.send_batch(topic_, items, timeout=v["timeout"]))

        @settings_
        @given(timeout=st.one_of(st.none(), st.floats(min_value=-1e300, max_value=0.2),
                                 st.sampled_from([0, -1, float("nan"), "1", True])),
               verdict=st.sampled_from(["ack", "nack", "none", "ack2"]), level=s["numbers"])
        def receives(timeout: Any, verdict: str, level: Any) -> None:
            if timeout is None:
                timeout = 0.05
            m = guard("Consumer.receive", lambda: consumer.receive(timeout=timeout))
            if m is None:
                return
            if verdict == "nack":
                guard("Message.nack", lambda: m.nack(delay_level=level))
            guard("Message.ack", m.ack)
            if verdict == "ack2":
                guard("Message.ack(again)", m.ack)
                guard("Message.nack(after ack)", lambda: m.nack(level))
            repr(m)

        @settings_
        @given(name_server=st.one_of(st.just("127.0.0.1:1"), st.just("127.0.0.1:1"), s["text"], s["odd"]),
               group=st.one_of(st.just("fuzz_g"), s["text"], s["odd"]),
               topic=s["topic"], expression=st.one_of(st.just("*"), s["text"], s["odd"]),
               selector=st.one_of(st.sampled_from(["tag", "sql92"]), s["text"]),
               model=st.one_of(st.sampled_from(["clustering", "broadcasting"]), s["text"]),
               from_where=st.one_of(st.sampled_from(["last", "first"]), s["dates"], s["text"]),
               n1=s["numbers"], n2=s["numbers"], n3=s["numbers"], timeout=s["timeouts"], ak=st.one_of(st.none(),
                                                                                                    s["text"]),
               kind=st.sampled_from(["consumer", "producer", "tx", "admin"]))
        def constructors(name_server: Any, group: Any, topic: Any, expression: Any, selector: Any, model: Any,
                         from_where: Any, n1: Any, n2: Any, n3: Any, timeout: Any, ak: Any, kind: str) -> None:
            def make() -> Any:
                if kind == "consumer":
                    return Consumer(name_server, group, topic, expression, selector=selector, model=model,
                                    from_where=from_where, max_reconsume_times=n1, max_inflight=n2, batch_size=n3,
                                    max_prefetch_mib=n1, access_key=ak, secret_key=ak, instance_name=ak)
                if kind == "producer":
                    return Producer(name_server, group, send_timeout=timeout, retries=n1, compress_over=n2,
                                    compress_level=n3, access_key=ak, secret_key=ak, namespace=ak)
                if kind == "tx":
                    return rmq_native.TransactionProducer(name_server, group, lambda m: 0, send_timeout=timeout)
                return rmq_native.Admin(name_server, access_key=ak, secret_key=ak, timeout=timeout)

            c = guard(f"{kind}()", make)
            if c is not None:
                repr(c)
                guard(f"{kind}.close", c.close)

        admin = rmq_native.Admin(ns)

        @settings_
        @given(topic=st.one_of(s["text"], s["odd"]), queues=s["numbers"], cluster=st.one_of(st.none(), s["text"],
                                                                                            s["odd"]))
        def admin_calls(topic: Any, queues: Any, cluster: Any) -> None:
            if isinstance(topic, str) and isinstance(queues, int) and 1 <= queues <= 1024:
                queues = 0  # never create random topics
            guard("Admin.create_topic", lambda: admin.create_topic(topic, queues, cluster=cluster))

        t0 = time.monotonic()
        sends()
        receives()
        constructors()
        admin_calls()
        admin.close()
        # after close: every call raises ClosedError
        producer.close()
        guard("closed Producer.send", lambda: producer.send(topic, b"x"))
    return {
        "examples_per_target": examples,
        "targets": 4,
        "cases": sum(v for k, v in counts.items() if ":" not in k),
        "per_call": {k: v for k, v in sorted(counts.items())},
        "undocumented": undocumented[:50],
        "undocumented_count": len(undocumented),
        "seconds": round(time.monotonic() - t0, 1),
    }


# --------------------------------------------------------------------------- ACL: the secret stays secret


def secret_leak_check(ns: str, topic: str, ak: str, sk: str) -> dict[str, Any]:
    """With RMQ_NATIVE_LOG_LEVEL=DEBUG, capture the rmq_native logger while clients with
    right and wrong secrets work and fail; look for the secrets in the records, reprs and
    exception messages. Runs in a child process."""
    import logging

    records: list[str] = []

    class Grab(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record.getMessage() + repr(record.__dict__))

    logging.getLogger("rmq_native").addHandler(Grab(level=logging.DEBUG))
    logging.getLogger("rmq_native").setLevel(logging.DEBUG)
    wrong = "wrong-secret-Zx81"
    shown: list[str] = []
    for secret in (sk, wrong):
        try:
            with Producer(ns, send_timeout=5, access_key=ak, secret_key=secret) as p:
                shown.append(repr(p))
                p.send(topic, b"secret check")
                p.send_async(topic, b"secret check").result(10)
        except rmq_native.RocketMQError as e:
            shown += [str(e), repr(e), repr(e.args)]
        try:
            with Consumer(ns, f"sc_{os.getpid()}", topic, from_where="first", access_key=ak,
                          secret_key=secret) as c:
                shown.append(repr(c))
                m = c.receive(timeout=5)
                if m is not None:
                    shown.append(repr(m))
                    m.ack()
        except rmq_native.RocketMQError as e:
            shown += [str(e), repr(e)]
        try:
            with rmq_native.Admin(ns, access_key=ak, secret_key=secret) as a:
                shown.append(repr(a))
                a.create_topic(f"sc_{os.getpid()}", queues=1)
        except rmq_native.RocketMQError as e:
            shown += [str(e), repr(e)]
    time.sleep(3)  # let the log pump deliver the SDK's records
    leaks = [f"{where}: {text[:300]}" for where, texts in (("log", records), ("shown", shown))
             for text in texts for secret in (sk, wrong) if secret in text]
    return {"log_records": len(records), "texts_checked": len(shown), "leaks": leaks[:20]}
