#!/usr/bin/env python3
"""Profile the rmq_native binding (numbers for benchmarks/PROFILE.md).

    python benchmarks/profile.py            # needs py-spy (PyPI) on PATH for the sampling part

1. Micro-costs without the network: a cffi call into the Go library, building a
   message (Producer._message), turning a send result into a SendResult, and
   decoding consumed messages (_wire.messages) -- timeit, per call.
2. Interleaved A/B on the live dev broker: rmq_native vs the Go SDK driver for
   sync sends from 1 thread and a 100k drain (per-op cost difference = binding).
3. Go: ``go test -bench`` in benchmarks/go (SDK SendSync, and the Go work the
   binding adds per call) with -benchmem and a CPU profile.
4. py-spy (--native) of rmq_native's sync1 / async / drain drivers, against an
   unstripped build of the library (built from go/ into a temporary copy of the
   package, nothing in the tree is touched), summarised by where samples land.

Writes benchmarks/results/profile.json and prints a summary.
"""

from __future__ import annotations

import collections
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import timeit
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
import run as bench  # noqa: E402

OUT: dict = {}


def micro() -> None:
    import struct

    from rmq_native import _ffi
    from rmq_native._wire import MESSAGE, messages
    from rmq_native.producer import Producer, _result

    lib = _ffi.lib()
    ffi = _ffi.ffi
    buf = ffi.new("char[]", 64)
    n = 200_000
    t = timeit.timeit(lambda: lib.rmq_version(buf, 64), number=n)
    OUT["cffi_call_ns"] = t / n * 1e9
    body = bytes(1024)
    p = Producer.__new__(Producer)  # no connection: only the message-building code
    p._max_message_size = 4 << 20
    p._send_timeout = 3.0
    n = 50_000
    t = timeit.timeit(lambda: p._message("bench_topic", body), number=n)
    OUT["build_message_us"] = t / n * 1e6
    t = timeit.timeit(lambda: p._message("bench_topic", body, tags="t", keys=["k1", "k2"], properties={"a": "b"}),
                      number=n)
    OUT["build_message_with_tags_keys_props_us"] = t / n * 1e6
    out = ffi.new("rmq_send_result *")
    t = timeit.timeit(lambda: (ffi.new("rmq_send_result *"), _result("bench_topic", out)), number=n)
    OUT["result_us"] = t / n * 1e6

    def record(i: int) -> bytes:
        fields = [b"bench_topic", b"", b"", b"7F000001000000000000000000000001", b"7F00000100002A9F00000000000012"
                  b"34", b"broker-a", b"UNIQ_KEY\x00AC11000100002A9F0000000000000001\x00", body]
        return MESSAGE.pack(i, 0, 0, i, 1, 2, *(len(f) for f in fields)) + b"".join(fields)

    data = b"".join(record(i) for i in range(32))
    n = 5_000
    t = timeit.timeit(lambda: messages(data, 32, None), number=n)
    OUT["decode_per_message_us"] = t / n / 32 * 1e6
    _ = struct


def ab(ns: str, go_exe: Path, topic: str, drain_topics: list) -> None:
    py = [sys.executable, str(HERE / "drivers" / "pydriver.py"), "rmq_native"]
    res = collections.defaultdict(list)
    for _ in range(3):
        for name, cmd in (("rmq_native", py), ("go", [str(go_exe)])):
            r = bench.run_driver(cmd, {"workload": "sync1", "ns": ns, "topic": topic, "max_time": 3}, 60)
            if r.get("ok"):
                res[f"sync1_{name}"].append(r["metrics"]["rate"])
    for i, t in enumerate(drain_topics):
        bench.run_driver([str(go_exe)], {"workload": "preload", "ns": ns, "topic": t, "count": 100_000}, 120)
        name, cmd = (("rmq_native", py), ("go", [str(go_exe)]))[i % 2]
        r = bench.run_driver(cmd, {"workload": "drain", "ns": ns, "topic": t, "group": t + "_g", "count": 100_000,
                                   "max_time": 90}, 150)
        if r.get("ok"):
            res[f"drain_{name}"].append(r["metrics"]["rate"])
            res[f"drain_{name}_cpu_us_per_msg"].append(1e6 * r["cpu_s"] / r["n"])
    OUT["ab"] = dict(res)


def go_bench(ns: str, topic: str) -> None:
    prof = Path(tempfile.mkdtemp(prefix="rmqbench-"))
    env = dict(os.environ, BENCH_NS=ns, BENCH_TOPIC=topic)
    p = subprocess.run(["go", "test", "-run", "x", "-bench", ".", "-benchmem", "-benchtime", "3s",
                        "-cpuprofile", str(prof / "cpu.out"), "-o", str(prof / "go.test")],
                       cwd=HERE / "go", env=env, capture_output=True, text=True)
    OUT["go_bench"] = [ln for ln in p.stdout.splitlines() if ln.startswith("Benchmark")]
    top = subprocess.run(["go", "tool", "pprof", "-top", "-nodecount=25", str(prof / "go.test"), str(prof / "cpu.out")],
                         capture_output=True, text=True)
    OUT["go_pprof_top"] = top.stdout.splitlines()[:32]
    shutil.rmtree(prof, ignore_errors=True)


CATS = [  # (category, predicate on a frame string), first match on the leaf-most classified frame
    ("Go: waiting (futex/park)", lambda f: f.startswith(("runtime.futex", "runtime.usleep", "runtime.notesleep"))),
    ("Go: syscalls (network I/O)", lambda f: "Syscall" in f or f.startswith(("syscall.", "internal/poll"))),
    ("Go: GC and allocation", lambda f: f.startswith((
        "runtime.mallocgc", "runtime.gc", "runtime.scan", "runtime.bgsweep", "runtime.memclr", "runtime.(*mheap",
        "runtime.mark"))),
    ("Go: cgo transitions", lambda f: "cgocall" in f or f.startswith(("runtime.needm", "runtime.dropm", "_cgoexp"))),
    ("Go: SDK and binding code", lambda f: "rocketmq-client-go" in f or f.startswith(("main.", "github.com/"))),
    ("Go: runtime (scheduler, other)",
     lambda f: f.startswith(("runtime.", "internal/runtime", "sync.", "internal/sync"))),
    ("Python: rmq_native package", lambda f: "rmq_native/" in f and ".so" not in f),
    ("Python: cffi", lambda f: "_cffi_backend" in f or "cffi/" in f),
    ("Python: benchmark loop and interpreter", lambda f: ".py:" in f or "libpython" in f),
    ("libc/other native", lambda f: True),
]


def summarize(raw: Path) -> dict:
    total = 0
    cats: collections.Counter = collections.Counter()
    leaf: collections.Counter = collections.Counter()
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not n.isdigit():
            continue
        k = int(n)
        total += k
        frames = stack.split(";")
        leaf[frames[-1]] += k
        f = frames[-1]
        for name, pred in CATS:
            if pred(f):
                cats[name] += k
                break
    return {"samples": total,
            "by_category_pct": {c: round(100 * v / total, 1) for c, v in cats.most_common()},
            "top_leaf_pct": [(f[:120], round(100 * v / total, 1)) for f, v in leaf.most_common(15)]}


def pyspy(ns: str, go_exe: Path, topics: dict) -> None:
    spy = shutil.which("py-spy")
    if not spy:
        OUT["py_spy"] = "py-spy not found (pip install py-spy)"
        return
    tmp = Path(tempfile.mkdtemp(prefix="rmqprof-"))
    pkg = tmp / "pkg"
    shutil.copytree(ROOT / "src" / "rmq_native", pkg / "rmq_native",
                    ignore=shutil.ignore_patterns("rmq_native-*", "__pycache__"))
    from rmq_native._ffi import library_filename

    b = subprocess.run(["go", "build", "-buildmode=c-shared", "-o", str(pkg / "rmq_native" / library_filename()), "."],
                       cwd=ROOT / "go", capture_output=True, text=True)
    env = dict(os.environ)
    if b.returncode == 0:
        env["PYTHONPATH"] = str(pkg)  # the unstripped library: Go symbols in native stacks
    OUT["py_spy_symbols"] = b.returncode == 0
    bench.run_driver([str(go_exe)], {"workload": "preload", "ns": ns, "topic": topics["drain"], "count": 100_000}, 120)
    specs = {
        "sync1": {"workload": "sync1", "max_time": 6},
        "async": {"workload": "async", "max_time": 6, "inflight": 1000},
        "drain": {"workload": "drain", "count": 100_000, "max_time": 90, "group": topics["drain"] + "_g"},
    }
    OUT["py_spy"] = {}
    for w, spec in specs.items():
        raw = tmp / f"{w}.txt"
        spec = {**spec, "ns": ns, "topic": topics[w]}
        p = subprocess.run([spy, "record", "--native", "-r", "200", "-f", "raw", "-o", str(raw), "--",
                            sys.executable, str(HERE / "drivers" / "pydriver.py"), "rmq_native", json.dumps(spec)],
                           env=env, capture_output=True, text=True)
        line = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
        OUT["py_spy"][w] = {"result_under_py_spy": json.loads(line[-1]) if line else p.stderr[-300:],
                            **(summarize(raw) if raw.exists() else {})}
    shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    sys.path.insert(0, str(ROOT / "src"))
    from rmq_native import devbroker

    bench.CACHE.mkdir(parents=True, exist_ok=True)
    go_exe = bench.build_go()
    home = bench.CACHE / "devbroker"
    ns = devbroker.start(namesrv_port=bench.NAMESRV_PORT, broker_port=bench.BROKER_PORT, home=home, quiet=True)
    try:
        run_id = time.strftime("%H%M%S")
        topics = {k: f"prof_{run_id}_{k}" for k in ("sync1", "async", "drain", "go", "ab", "d0", "d1", "d2", "d3")}
        r = bench.run_driver([str(go_exe)], {"workload": "create_topics", "ns": ns,
                                             "broker": f"{bench.HOST}:{bench.BROKER_PORT}",
                                             "topics": list(topics.values())}, 120)
        assert r.get("ok"), r
        OUT["load_before"] = os.getloadavg()
        micro()
        ab(ns, go_exe, topics["ab"], [topics[k] for k in ("d0", "d1", "d2", "d3")])
        go_bench(ns, topics["go"])
        pyspy(ns, go_exe, topics)
        OUT["load_after"] = os.getloadavg()
    finally:
        devbroker.stop(home=home, clean=True, quiet=True)
    path = HERE / "results" / "profile.json"
    path.write_text(json.dumps(OUT, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(json.dumps(OUT, indent=1, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
