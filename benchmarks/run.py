#!/usr/bin/env python3
"""Benchmarks: rmq_native against every peer, on the same broker, in the same run.

    python benchmarks/run.py            # full run (< 15 min on 2 cores); writes results/latest.*
    python benchmarks/run.py --quick    # a small version of everything (< 2 min); writes results/quick.*

Systems (each in its own process, driven by a small CLI/JSON protocol, so the
peak RSS is that client's own):

* ``rmq_native``  -- this package (Python, cffi over the Go SDK)
* ``go``          -- benchmarks/go: the same Go SDK (rocketmq-client-go/v2 v2.1.2) used directly
* ``java``        -- benchmarks/java: org.apache.rocketmq:rocketmq-client 5.3.3 (remoting)
* ``rocketmq044`` -- PyPI ``rocketmq`` 0.4.4 (ctypes over a bundled C++ librocketmq)
* ``grpc5``       -- PyPI ``rocketmq-python-client`` 5.x (gRPC via the RocketMQ proxy)

The dev broker (name server + broker, own state dir, ports 17876/18911) serves
every system; the RocketMQ 5.3.3 proxy runs in cluster mode in front of that
same broker for the gRPC client, with every listener bound to 127.0.0.1.
Workloads run in an interleaved order (each workload, every system, the
starting system rotated), so drift over the run hits all systems alike.

Driver protocol: ``<driver> '<spec json>'`` -> one JSON line on stdout
``{"ok": true, "n": N, "elapsed": s, "errors": E, "metrics": {...}}`` or
``{"ok": false, "error": "..."}``, with ``"peak_rss_kib"`` (the driver's own
VmHWM) added to either.  Spec keys: workload (sync1, sync8, async,
batch, drain, latency, drain_part, topics; the Go driver also has preload and
create_topics), ns, endpoint (gRPC), topic, topics, group, count, size,
threads, inflight, batch, rate, duration, max_time, idle, first_wait, barrier.
With ``barrier`` a driver prints ``READY`` once its client is built and starts
it on a line from stdin (several consumer processes start together).

Scale workloads (``--workloads scale`` = sizes,drain_procs,topics; one round,
their own table, rows in the same results files, chart ``<out>-scale.png``):
sync sends of 100 B .. 1 MiB bodies from 4 threads; a backlog on an 8-queue
topic drained by 1, 2 and 4 consumer processes of one group; one producer
sending to 100 topics (first send per topic = route lookup, then round-robin).
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
CACHE = Path(os.environ.get("RMQ_NATIVE_BENCH_CACHE", Path.home() / ".cache" / "rmq_native" / "bench"))
HOST = "127.0.0.1"
NAMESRV_PORT = 17876
BROKER_PORT = 18911
PROXY_GRPC_PORT = 18081
PROXY_REMOTING_PORT = 18080
ROCKETMQ_VERSION = "5.3.3"
PEER_PACKAGES = {"rocketmq044": "rocketmq==0.4.4", "grpc5": "rocketmq-python-client>=5,<6"}
TOOLS_PACKAGES = ["matplotlib"]

SYSTEMS = ["rmq_native", "go", "java", "rocketmq044", "grpc5"]
LABELS = {
    "rmq_native": "rmq_native",
    "go": "Go SDK (direct)",
    "java": "Java client",
    "rocketmq044": "rocketmq 0.4.4 (C++)",
    "grpc5": "rocketmq-python-client 5 (gRPC)",
    # the cost of observability (issue 16): run only when asked (--systems)
    "rmq_native+otel": "rmq_native, OpenTelemetry on",
    "rmq_native+trace": "rmq_native, message trace on",
    "rmq_native+bare": "rmq_native, stats and hooks no-op",
}
VARIANTS = ["rmq_native+otel", "rmq_native+trace", "rmq_native+bare"]
WORKLOADS = ["sync1", "sync8", "async", "batch", "drain", "latency"]
SCALE_WORKLOADS = ["sizes", "drain_procs", "topics"]
SIZES = [(100, "100 B"), (1024, "1 KiB"), (64 << 10, "64 KiB"), (1 << 20, "1 MiB")]
PROCS = [1, 2, 4]
ROUTE_TOPICS = 100
SCALE_THREADS = 4
SCALE_SYSTEMS = {  # who runs which scale workload (sizes reuse every driver's sync8)
    "sizes": SYSTEMS,
    "drain_procs": ["rmq_native", "go"],
    "topics": ["rmq_native", "go", "rocketmq044"],
}
SCALE_ROWS = (  # (key, workload, label, unit)
    [(f"size_{n}", "sizes", f"sync send, {name} bodies", "msg/s") for n, name in SIZES]
    + [(f"size_{n}_mb", "sizes", f"sync send, {name} bodies", "MB/s") for n, name in SIZES]
    + [(f"size_{n}_cpu", "sizes", f"sync send, {name} bodies, client CPU/msg", "µs") for n, name in SIZES]
    + [(f"procs_{k}", "drain_procs", f"drain, {k} consumer process{'es' if k > 1 else ''}", "msg/s")
       for k in PROCS]
    + [(f"procs_{k}_cpu", "drain_procs", f"drain, {k} consumer process{'es' if k > 1 else ''}, client CPU/msg",
        "µs") for k in PROCS]
    + [("topics_rate", "topics", f"sync send round-robin over {ROUTE_TOPICS} topics", "msg/s"),
       ("topics_first_p50", "topics", "first send to a new topic, p50", "ms"),
       ("topics_first_max", "topics", "first send to a new topic, max", "ms")]
)
ROWS = [  # (workload key in results, label, unit, higher is better)
    ("sync1", "sync send, 1 thread", "msg/s", True),
    ("sync8", "sync send, 8 threads", "msg/s", True),
    ("async", "async send, ≤1000 in flight", "msg/s", True),
    ("batch", "batch send of 32", "msg/s", True),
    ("drain", "drain a backlog", "msg/s", True),
    ("latency_p50", "e2e latency p50 @1000 msg/s", "ms", False),
    ("latency_p99", "e2e latency p99 @1000 msg/s", "ms", False),
    ("rss", "peak RSS of the client process", "MiB", False),
]

JDK_FLAGS = [
    "--add-opens=java.base/java.nio=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
    "--add-exports=java.base/sun.nio.ch=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.ref=ALL-UNNAMED",
    "--add-opens=java.base/java.lang=ALL-UNNAMED",
    "--add-opens=java.base/java.util=ALL-UNNAMED",
]


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def run_quiet(cmd: List[str], cwd: Optional[Path] = None, env: Optional[dict] = None, timeout: float = 1800) -> None:
    proc = subprocess.run(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, errors="replace", timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed ({proc.returncode}):\n{proc.stdout[-3000:]}")


# --------------------------------------------------------------------------- preparing the systems


def _newer(sources: List[Path], target: Path) -> bool:
    if not target.exists():
        return True
    t = target.stat().st_mtime
    return any(s.stat().st_mtime > t for s in sources if s.exists())


def build_go() -> Path:
    """The Go driver, rebuilt when its sources' digest differs from the one
    it was built from (not by file times: checkouts share the cache)."""
    import hashlib

    exe = CACHE / "bench-go"
    stamp = CACHE / "bench-go.sha256"
    digest = hashlib.sha256()
    for f in sorted((HERE / "go").glob("*")):
        if f.suffix in (".go", ".mod", ".sum") and not f.name.endswith("_test.go"):
            digest.update(f.name.encode() + b"\0" + f.read_bytes())
    want = digest.hexdigest()
    if not exe.exists() or not stamp.exists() or stamp.read_text().strip() != want:
        log("building the Go driver")
        new = exe.with_name(exe.name + ".new")
        run_quiet(["go", "build", "-o", str(new), "."], cwd=HERE / "go")
        os.replace(new, exe)  # a driver running from the old file keeps it
        stamp.write_text(want + "\n")
    return exe


def build_java() -> List[str]:
    jdir = HERE / "java"
    classes = jdir / "target" / "classes" / "bench" / "Driver.class"
    if _newer([jdir / "pom.xml", jdir / "src" / "main" / "java" / "bench" / "Driver.java"], classes) or not (
        jdir / "target" / "dependency"
    ).is_dir():
        log("building the Java driver with Maven")
        run_quiet(["mvn", "-B", "-q", "package", "dependency:copy-dependencies", "-DincludeScope=runtime"], cwd=jdir)
    cp = os.pathsep.join([str(jdir / "target" / "classes"), str(jdir / "target" / "dependency" / "*")])
    return ["java", "-Xms64m", "-Xmx512m", "-XX:+UseSerialGC", "-cp", cp, "bench.Driver"]


def venv_python(name: str, packages: List[str]) -> Path:
    """A venv per peer under the cache: the PyPI peers both install a top-level
    ``rocketmq`` package, so they cannot share one environment."""
    vdir = CACHE / f"venv-{name}"
    py = vdir / "bin" / "python"
    marker = vdir / ".installed"
    want = "\n".join(packages)
    if not (marker.is_file() and marker.read_text() == want):
        log(f"preparing venv {vdir} ({', '.join(packages)})")
        shutil.rmtree(vdir, ignore_errors=True)
        run_quiet([sys.executable, "-m", "venv", str(vdir)])
        run_quiet([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", *packages])
        marker.write_text(want)
    return py


def proxy_jars() -> Path:
    lib = CACHE / "proxy-lib"
    if (CACHE / "proxy-lib.complete").is_file() and lib.is_dir():
        return lib
    log(f"fetching the RocketMQ {ROCKETMQ_VERSION} proxy jars with Maven (one time)")
    tmp = CACHE / "proxy-lib.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    run_quiet(["mvn", "-B", "-q", "-f", str(HERE / "proxy" / "pom.xml"), "dependency:copy-dependencies",
               f"-DoutputDirectory={tmp}", "-DincludeScope=runtime"])
    shutil.rmtree(lib, ignore_errors=True)
    os.replace(tmp, lib)
    (CACHE / "proxy-lib.complete").write_text("ok")
    return lib


def loopback_shim() -> Path:
    so = CACHE / "libloopback_bind.so"
    src = HERE / "proxy" / "loopback_bind.c"
    if _newer([src], so):
        cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or "cc"
        run_quiet([cc, "-shared", "-fPIC", "-O2", "-o", str(so), str(src), "-ldl"])
    return so


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((HOST, port)) == 0


class Proxy:
    """rocketmq-proxy in cluster mode in front of the dev broker (for the gRPC client)."""

    def __init__(self, namesrv: str) -> None:
        self.namesrv = namesrv
        self.proc: Optional[subprocess.Popen] = None
        self.home = CACHE / "proxy"

    def launch(self) -> None:
        """Start the JVM (returns at once; wait_ready() waits for the gRPC port)."""
        lib = proxy_jars()
        shim = loopback_shim()
        for p in (PROXY_GRPC_PORT, PROXY_REMOTING_PORT):
            if _port_open(p):
                raise RuntimeError(f"port {p} is already in use")
        self.home.mkdir(parents=True, exist_ok=True)
        conf = self.home / "rmq-proxy.json"
        conf.write_text(json.dumps({
            "rocketMQClusterName": "DefaultCluster",
            "grpcServerPort": PROXY_GRPC_PORT,
            "remotingListenPort": PROXY_REMOTING_PORT,
            "namesrvAddr": self.namesrv,
            "enablePrintJstack": False,
        }))
        env = dict(os.environ, ROCKETMQ_HOME=str(self.home), LD_PRELOAD=str(shim))
        cmd = ["java", "-Xms256m", "-Xmx512m", "-XX:MaxDirectMemorySize=256m", *JDK_FLAGS,
               f"-Drocketmq.home.dir={self.home}", f"-Duser.home={self.home}",
               "-Drmq.logback.configurationFile=rmq.proxy.logback.xml", "-Drmq_native.bench.proxy=1",
               "-cp", str(lib / "*"), "org.apache.rocketmq.proxy.ProxyStartup",
               "-pm", "cluster", "-n", self.namesrv, "-pc", str(conf)]
        out = open(self.home / "proxy.out", "wb")
        self.proc = subprocess.Popen(cmd, cwd=self.home, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, timeout: float = 120) -> str:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while not _port_open(PROXY_GRPC_PORT):
            if self.proc.poll() is not None:
                tail = (self.home / "proxy.out").read_text(errors="replace")[-1500:]
                raise RuntimeError(f"proxy exited with {self.proc.returncode}: {tail}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"proxy not listening on {PROXY_GRPC_PORT} after {timeout:.0f}s")
            time.sleep(0.3)
        return f"{HOST}:{PROXY_GRPC_PORT}"

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


# --------------------------------------------------------------------------- running drivers


def _spawn(cmd: List[str], spec: dict, stdin: Any = subprocess.DEVNULL) -> subprocess.Popen:
    return subprocess.Popen([*cmd, json.dumps(spec)], stdin=stdin, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True,
                            env=dict(os.environ, PYTHONUNBUFFERED="1"))


def run_driver(cmd: List[str], spec: dict, timeout: float) -> Dict[str, Any]:
    """Run one driver process; returns its JSON result plus peak RSS and CPU time
    (from wait4's rusage of that process alone)."""
    t0 = time.monotonic()
    return _collect(_spawn(cmd, spec), timeout, t0)


def run_together(cmd: List[str], specs: List[dict], timeout: float) -> List[Dict[str, Any]]:
    """Run one driver process per spec at the same time: each builds its client,
    prints READY and waits; once all are ready (or 60 s passed) they are released
    together. Returns each process's result as run_driver does."""
    t0 = time.monotonic()
    procs = [_spawn(cmd, {**spec, "barrier": True}, stdin=subprocess.PIPE) for spec in specs]
    early = [b""] * len(procs)

    def wait_ready(i: int) -> None:
        for line in iter(procs[i].stdout.readline, b""):  # type: ignore[union-attr]
            if line.strip() == b"READY":
                return
            early[i] += line  # anything else (an error result) is kept for _collect

    ts = [threading.Thread(target=wait_ready, args=(i,), daemon=True) for i in range(len(procs))]
    for t in ts:
        t.start()
    for t in ts:
        t.join(max(0.0, t0 + 60 - time.monotonic()))
    for p in procs:
        try:
            p.stdin.write(b"go\n")  # type: ignore[union-attr]
            p.stdin.close()  # type: ignore[union-attr]
        except OSError:
            pass  # already exited; _collect reports it
    results: List[Dict[str, Any]] = [{} for _ in procs]

    def collect(i: int) -> None:
        results[i] = _collect(procs[i], timeout, t0, early[i])

    cs = [threading.Thread(target=collect, args=(i,)) for i in range(len(procs))]
    for t in cs:
        t.start()
    for t in cs:
        t.join()
    return results


def _collect(proc: subprocess.Popen, timeout: float, t0: float, early: bytes = b"") -> Dict[str, Any]:
    chunks: Dict[str, bytes] = {}

    def reader(name: str, f: Any) -> None:
        chunks[name] = f.read()

    ts = [threading.Thread(target=reader, args=(n, f), daemon=True)
          for n, f in (("out", proc.stdout), ("err", proc.stderr))]
    for t in ts:
        t.start()
    killed = []

    def kill() -> None:
        killed.append(True)
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    timer = threading.Timer(timeout, kill)
    timer.start()
    try:
        _, status, ru = os.wait4(proc.pid, 0)
    finally:
        timer.cancel()
    proc.returncode = os.waitstatus_to_exitcode(status)
    try:  # leftover children of the session (none expected)
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    for t in ts:
        t.join(5)
    wall = time.monotonic() - t0
    out = (early + chunks.get("out", b"")).decode(errors="replace").strip().splitlines()
    res: Dict[str, Any] = {}
    for line in reversed(out):
        if line.startswith("{"):
            try:
                res = json.loads(line)
                break
            except ValueError:
                pass
    if not res:
        err = chunks.get("err", b"").decode(errors="replace").strip().splitlines()
        why = "timed out" if killed else f"exit {proc.returncode}"
        res = {"ok": False, "error": f"{why}; no result. " + " | ".join(err[-3:])[-400:]}
    # the driver's own VmHWM: wait4's ru_maxrss keeps the peak of the forked
    # copy of this orchestrator from before the exec (a floor of ~26 MiB)
    res["rss_mib"] = (res.pop("peak_rss_kib", 0) or ru.ru_maxrss) / 1024.0
    res["cpu_s"] = ru.ru_utime + ru.ru_stime
    res["wall_s"] = wall
    return res


class Bench:
    def __init__(self, quick: bool, systems: List[str], workloads: List[str], rounds: Optional[int]) -> None:
        self.quick = quick
        self.systems = systems
        self.workloads = [w for w in workloads if w in WORKLOADS]
        self.scale_workloads = [w for w in workloads if w in SCALE_WORKLOADS]
        if quick:
            self.send_time, self.rounds = 1.0, rounds or 1
            self.drain_count, self.drain_time = 5000, 30.0
            self.lat_duration = 2.0
            self.scale_send_time, self.idle, self.first_wait = 0.5, 1.0, 4.0
        else:
            self.send_time, self.rounds = 6.0, rounds or 2
            self.drain_count, self.drain_time = 100_000, 150.0
            self.lat_duration = 15.0
            self.scale_send_time, self.idle, self.first_wait = 3.0, 2.0, 10.0
        self.run_id = time.strftime("%H%M%S")
        self.samples: Dict[str, Dict[str, List[Dict[str, Any]]]] = {s: {} for s in systems}
        # scale cells (size_100, procs_2, topics...) apart: they must not enter the main RSS row
        self.scale_samples: Dict[str, Dict[str, List[Dict[str, Any]]]] = {s: {} for s in systems}
        self.unavailable: Dict[str, str] = {}
        self.cmd: Dict[str, List[str]] = {}
        self.ns = ""
        self.endpoint = ""
        self.go_exe: Optional[Path] = None
        self.loads: List[float] = []

    # -- setup
    def prepare(self) -> None:
        self.go_exe = build_go()  # also the preload and topic tool: required
        pydriver = str(HERE / "drivers" / "pydriver.py")
        for s in self.systems:
            try:
                if s == "rmq_native" or s in VARIANTS:
                    import rmq_native  # (fails early with a clear error)

                    # byte-compiled as pip installs a wheel, like the peers'
                    # packages: a source tree run with PYTHONDONTWRITEBYTECODE
                    # compiles every module in every driver process
                    compileall.compile_dir(str(Path(rmq_native.__file__).parent), quiet=1)
                    self.cmd[s] = [sys.executable, pydriver, s]
                elif s == "go":
                    self.cmd[s] = [str(self.go_exe)]
                elif s == "java":
                    self.cmd[s] = build_java()
                elif s in PEER_PACKAGES:
                    py = venv_python(s, [PEER_PACKAGES[s]])
                    self.cmd[s] = [str(py), pydriver, s]
            except Exception as e:  # the system's rows say why
                self.unavailable[s] = f"could not be prepared: {str(e).strip().splitlines()[0][:300]}"
                log(f"{s}: {self.unavailable[s]}")

    def go(self, spec: dict, timeout: float = 300) -> Dict[str, Any]:
        return run_driver([str(self.go_exe)], {"ns": self.ns, **spec}, timeout)

    def topic(self, system: str, workload: str, rnd: int) -> str:
        # a variant's "+" (rmq_native+otel) is not allowed in a topic name
        return f"bench_{self.run_id}_{system.replace('+', '_')}_{workload}_{rnd}"

    def route_topics(self, system: str) -> List[str]:
        return [f"bench_{self.run_id}_{system.replace('+', '_')}_rt{i:03d}" for i in range(ROUTE_TOPICS)]

    def scales(self, system: str) -> List[str]:
        """The scale workloads this run measures for this system."""
        return [w for w in self.scale_workloads if system in SCALE_SYSTEMS[w]]

    def create_topics(self) -> None:
        topics = [self.topic(s, w, r) for s in self.systems for w in self.workloads for r in range(self.rounds)]
        topics.append(self.topic("warmup", "sync8", 0))
        if "latency" in self.workloads:
            topics += [self.topic("settle", "latency", r) for r in range(self.rounds)]
        for s in self.systems:
            for w in self.scales(s):
                if w == "sizes":
                    topics += [self.topic(s, f"size{n}", 0) for n, _ in SIZES]
                elif w == "drain_procs":
                    topics += [self.topic(s, f"procs{k}", 0) for k in PROCS]
                else:
                    topics += [self.topic(s, "topics", 0), *self.route_topics(s)]
        r = self.go({"workload": "create_topics", "broker": f"{HOST}:{BROKER_PORT}", "topics": topics, "queues": 8})
        if not r.get("ok"):
            raise RuntimeError(f"cannot create topics: {r.get('error')}")
        log(f"created {len(topics)} topics in {r['wall_s']:.1f}s")

    # -- one measurement
    def measure(self, system: str, workload: str, rnd: int) -> None:
        if system in self.unavailable:
            return
        topic = self.topic(system, workload, rnd)
        spec: Dict[str, Any] = {"workload": workload, "ns": self.ns, "endpoint": self.endpoint, "topic": topic,
                                "group": f"{topic}_g", "size": 1024, "threads": 8, "inflight": 1000,
                                "batch": 32}
        timeout = 90.0
        if workload in ("sync1", "sync8", "async", "batch"):
            spec["max_time"] = self.send_time
            timeout += self.send_time
        elif workload == "drain":
            pre = self.go({"workload": "preload", "topic": topic, "count": self.drain_count})
            if not pre.get("ok"):
                self.record(system, workload, {"ok": False, "error": f"preload failed: {pre.get('error')}"})
                return
            spec.update(count=self.drain_count, max_time=self.drain_time)
            timeout += self.drain_time
        elif workload == "latency":
            spec.update(rate=1000, duration=self.lat_duration)
            timeout += self.lat_duration + 45
        self.loads.append(os.getloadavg()[0])
        res = run_driver(self.cmd[system], spec, timeout)
        m = res.get("metrics") or {}
        brief = ", ".join(f"{k}={v:.1f}" for k, v in m.items() if isinstance(v, (int, float)))
        log(f"{system:12} {workload:8} r{rnd}: " + (brief if res.get("ok") else f"FAILED {res.get('error')}")
            + f" (rss {res['rss_mib']:.0f} MiB, wall {res['wall_s']:.1f}s)")
        self.record(system, workload, res)

    def record(self, system: str, workload: str, res: Dict[str, Any]) -> None:
        self.samples[system].setdefault(workload, []).append(res)

    # -- one scale measurement (cell: size_<n>, procs_<k> or topics)
    def measure_scale(self, system: str, cell: str) -> None:
        if system in self.unavailable:
            return
        base: Dict[str, Any] = {"ns": self.ns, "endpoint": self.endpoint, "size": 1024, "threads": SCALE_THREADS,
                                "max_time": self.scale_send_time}
        timeout = 90.0 + self.scale_send_time
        self.loads.append(os.getloadavg()[0])
        if cell.startswith("size_"):
            n = int(cell[5:])
            topic = self.topic(system, f"size{n}", 0)
            res = run_driver(self.cmd[system], {**base, "workload": "sync8", "topic": topic, "size": n}, timeout)
        elif cell == "topics":
            topic = self.topic(system, "topics", 0)
            res = run_driver(self.cmd[system], {**base, "workload": "topics", "topic": topic,
                                                "topics": self.route_topics(system)}, timeout + 60)
        else:
            res = self.drain_procs(system, int(cell[6:]))
        m = res.get("metrics") or {}
        brief = ", ".join(f"{k}={v:.1f}" for k, v in m.items() if isinstance(v, (int, float)))
        log(f"{system:12} {cell:11}: " + (brief if res.get("ok") else f"FAILED {res.get('error')}")
            + f" (rss {res['rss_mib']:.0f} MiB, cpu {res['cpu_s']:.1f}s, wall {res['wall_s']:.1f}s)")
        self.scale_samples[system].setdefault(cell, []).append(res)

    def drain_procs(self, system: str, procs: int) -> Dict[str, Any]:
        """A backlog of drain_count messages on an 8-queue topic, drained by
        `procs` consumer processes of one group started together. Rate = the
        backlog / the span from the first message any process got to the last."""
        topic = self.topic(system, f"procs{procs}", 0)
        pre = self.go({"workload": "preload", "topic": topic, "count": self.drain_count})
        if not pre.get("ok"):
            return {"ok": False, "error": f"preload failed: {pre.get('error')}", "rss_mib": 0, "cpu_s": 0,
                    "wall_s": 0}
        spec = {"workload": "drain_part", "ns": self.ns, "endpoint": self.endpoint, "topic": topic,
                "group": f"{topic}_g", "idle": self.idle, "first_wait": self.first_wait,
                "max_time": self.drain_time}
        parts = run_together(self.cmd[system], [spec] * procs, 90 + self.drain_time)
        agg: Dict[str, Any] = {"rss_mib": max(p["rss_mib"] for p in parts),
                               "cpu_s": sum(p["cpu_s"] for p in parts),
                               "wall_s": max(p["wall_s"] for p in parts),
                               "parts": [{k: p.get(k) for k in ("n", "metrics", "rss_mib", "cpu_s", "error")}
                                         for p in parts]}
        bad = [p for p in parts if not p.get("ok")]
        got = [p["metrics"] for p in parts if p.get("ok") and "first_t" in (p.get("metrics") or {})]
        if bad or not got:
            agg.update(ok=False, error=bad[0].get("error", "failed") if bad else "no message received")
            return agg
        received = sum(p["n"] for p in parts)
        span = max(m["last_t"] for m in got) - min(m["first_t"] for m in got)
        done = min(received, self.drain_count)  # duplicates (redeliveries on rebalance) do not count
        agg.update(ok=True, n=done, elapsed=span, errors=0, metrics={
            "rate": done / max(span, 1e-6), "received": received,
            "first_ms": 1000 * (min(m["first_t"] for m in got) - min(p["metrics"]["start_t"] for p in parts)),
            "busy_procs": len(got)})
        return agg

    def warm_up(self) -> None:
        """Sends and a drain by the Go driver, not recorded, before the first
        measurement: a broker just started is slower for a while (its JIT,
        the commit log's first pages), and without this the first system of
        the first workload (always rmq_native, the first in the list) paid
        for it: sync1 3,897 msg/s in round 0 against 6,558 in round 1. Sends
        for one send time were not enough (every system's sync8 of round 0
        in the observability run 0.4-0.9x of round 1): three send times."""
        topic = self.topic("warmup", "sync8", 0)
        t0 = time.monotonic()
        sent = self.go({"workload": "sync8", "topic": topic, "size": 1024, "threads": 8,
                        "max_time": 3 * self.send_time}, timeout=90 + 3 * self.send_time)
        self.go({"workload": "drain", "topic": topic, "group": f"{topic}_g", "count": max(1, sent.get("n") or 0),
                 "max_time": 60}, timeout=90)
        log(f"warmed the broker up in {time.monotonic() - t0:.1f}s (not recorded)")

    def settle_latency(self, rnd: int) -> None:
        """A latency run by the Go driver, not recorded, before each round's
        latency measurements: the system measured first after the drains
        had the worst p99 of its two rounds in nearly every full run
        (rmq_native, first in round 0: 4.6 vs 2.2, 3.8 vs 1.9, 4.0 vs 1.8,
        4.3 vs 2.3 ms; the Go driver, first in round 1: 3.7 vs 1.8, 3.2 vs
        1.7, 3.7 vs 1.9), and the peers never came first. Now none does."""
        topic = self.topic("settle", "latency", rnd)
        t0 = time.monotonic()
        r = self.go({"workload": "latency", "topic": topic, "group": f"{topic}_g", "size": 1024, "rate": 1000,
                     "duration": self.lat_duration}, timeout=90 + self.lat_duration)
        p99 = (r.get("metrics") or {}).get("p99")
        log(f"settled the broker before round {rnd}'s latency row in {time.monotonic() - t0:.1f}s "
            f"(not recorded; Go driver p99 {p99 if p99 is None else round(p99, 2)} ms)")

    def run(self) -> None:
        self.warm_up()
        order = list(self.systems)
        k = 0
        for rnd in range(self.rounds):
            for w in self.workloads:  # every workload every round: the value is the median
                rot = order[k % len(order):] + order[: k % len(order)]
                k += 1
                if w == "latency":
                    self.settle_latency(rnd)
                for s in rot:
                    self.measure(s, w, rnd)
        cells = {"sizes": [f"size_{n}" for n, _ in SIZES], "drain_procs": [f"procs_{p}" for p in PROCS],
                 "topics": ["topics"]}
        for w in self.scale_workloads:  # one round: each cell, every system, the first one rotated
            for cell in cells[w]:
                rot = order[k % len(order):] + order[: k % len(order)]
                k += 1
                for s in rot:
                    if w in self.scales(s):
                        self.measure_scale(s, cell)

    # -- results
    def rows(self) -> List[Dict[str, Any]]:
        out: List[Dict[str, Any]] = []
        for s in self.systems:
            for key, label, unit, _hib in ROWS:
                w = "latency" if key.startswith("latency") else key
                if (w not in self.workloads) if key != "rss" else not self.workloads:
                    continue  # not selected with --workloads
                row: Dict[str, Any] = {"system": s, "workload": label, "value": None, "unit": unit, "key": key}
                if s in self.unavailable:
                    row["note"] = self.unavailable[s]
                    out.append(row)
                    continue
                if key == "rss":
                    runs = [r for rs in self.samples[s].values() for r in rs if r.get("ok")]
                    if runs:
                        peak = max(runs, key=lambda r: r["rss_mib"])
                        row["value"] = round(peak["rss_mib"], 1)
                        row["note"] = "max over this system's runs (" + ", ".join(
                            f"{w} {max(r['rss_mib'] for r in rs):.0f}" for w, rs in self.samples[s].items()
                            if any(r.get("ok") for r in rs)) + ")"
                    out.append(row)
                    continue
                w, metric = (("latency", key.split("_")[1]) if key.startswith("latency") else (key, "rate"))
                runs = self.samples[s].get(w, [])
                ok = [r for r in runs if r.get("ok") and metric in (r.get("metrics") or {})]
                if ok:
                    vals = [r["metrics"][metric] for r in ok]
                    row["value"] = round(statistics.median(vals), 2 if unit == "ms" else 0)
                    row["samples"] = [round(v, 2) for v in vals]
                    errs = sum(r.get("errors", 0) for r in ok)
                    notes = []
                    if errs:
                        notes.append(f"{errs} failed sends")
                    short = [r["n"] for r in ok if w == "drain" and r["n"] < self.drain_count]
                    if short:
                        notes.append(f"only {'/'.join(map(str, short))} of {self.drain_count} received "
                                     f"in {self.drain_time:.0f} s")
                    lost = [r["metrics"].get("lost", 0) for r in ok if w == "latency"]
                    if any(lost):
                        notes.append(f"{'/'.join(f'{n:.0f}' for n in lost)} of {self.lat_duration * 1000:.0f} "
                                     "not received within 10 s")
                    if notes:
                        row["note"] = "; ".join(notes)
                elif runs:
                    row["note"] = runs[-1].get("error", "failed")
                else:
                    row["note"] = "not run"
                out.append(row)
        return out + self.scale_rows()

    def scale_rows(self) -> List[Dict[str, Any]]:
        out: List[Dict[str, Any]] = []
        for s in self.systems:
            for key, w, label, unit in SCALE_ROWS:
                if w not in self.scale_workloads:
                    continue
                row: Dict[str, Any] = {"system": s, "workload": label, "value": None, "unit": unit, "key": key}
                out.append(row)
                if s in self.unavailable:
                    row["note"] = self.unavailable[s]
                    continue
                if w not in self.scales(s):
                    row["note"] = "not measured for this system"
                    continue
                cell = "topics" if w == "topics" else "_".join(key.split("_")[:2])
                runs = self.scale_samples[s].get(cell, [])
                ok = [r for r in runs if r.get("ok") and r.get("n")]
                if not ok:
                    last = runs[-1] if runs else {}
                    row["note"] = (f"all {last['errors']} sends failed" if last.get("ok") and last.get("errors")
                                   else last.get("error", "failed") if runs else "not run")
                    continue
                r = ok[-1]  # one round
                if key.endswith("_cpu"):
                    v = 1e6 * r["cpu_s"] / r["n"]
                elif key.endswith("_mb"):
                    v = r["metrics"]["rate"] * int(key.split("_")[1]) / 1e6
                else:
                    v = r["metrics"]["rate" if key == "topics_rate" or w != "topics" else key[len("topics_"):]]
                row["value"] = round(v, 2 if unit in ("ms", "MB/s") else 0)
                notes = []
                if r.get("errors"):
                    notes.append(f"{r['errors']} failed sends")
                if w == "drain_procs" and not key.endswith("_cpu"):
                    m = r["metrics"]
                    if len(r["parts"]) > 1:
                        notes.append("received per process " + "/".join(str(p.get("n") or 0) for p in r["parts"]))
                    if m["received"] < self.drain_count:
                        notes.append(f"only {m['received']:.0f} of {self.drain_count} received")
                    elif m["received"] > self.drain_count:
                        notes.append(f"{m['received'] - self.drain_count:.0f} redelivered")
                if notes:
                    row["note"] = "; ".join(notes)
        return out


# --------------------------------------------------------------------------- reports


def machine_info() -> Dict[str, Any]:
    cpu = "unknown"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = 0.0
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                mem = int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass

    def ver(cmd: List[str]) -> str:
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
            return (p.stdout + p.stderr).strip().splitlines()[0]
        except Exception:
            return "?"

    return {
        "cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(mem, 1),
        "os": platform.platform(), "python": platform.python_version(),
        "go": ver(["go", "version"]), "java": ver(["java", "-version"]),
    }


def fmt(v: Optional[float], unit: str) -> str:
    if v is None:
        return "—"
    if unit == "msg/s":
        return f"{v:,.0f}"
    if unit == "MB/s" and v < 10:
        return f"{v:,.2f}"
    if unit in ("ms", "MB/s"):
        return f"{v:,.1f}" if v < 100 else f"{v:,.0f}"
    return f"{v:,.0f}"


def write_markdown(path: Path, rows: List[Dict[str, Any]], systems: List[str], meta: Dict[str, Any]) -> None:
    by = {(r["system"], r["key"]): r for r in rows}
    lines = [
        f"Run {meta['finished']} ({'quick' if meta['quick'] else 'full'}, {meta['duration_s']:.0f} s) on "
        f"{meta['machine']['cores']} × {meta['machine']['cpu']}, {meta['machine']['memory_gib']} GiB, "
        f"{meta['machine']['os']}; Python {meta['machine']['python']}, {meta['machine']['go']}, "
        f"{meta['machine']['java']}. 1 KiB bodies; one dev broker (RocketMQ {ROCKETMQ_VERSION}) for all"
        + (", the gRPC client through rocketmq-proxy (cluster mode) in front of it." if "grpc5" in systems else "."),
        f"Load average during the run: {meta['load_min']:.1f}–{meta['load_max']:.1f} "
        f"({meta['machine']['cores']} cores, shared by the broker and the clients under test: "
        "single numbers are noisy, the same-run ratios and the CPU per message less so).",
        "",
        "Value (× ratio to rmq_native; for msg/s and MB/s higher is better, for ms, µs and MiB lower is better).",
    ]
    notes: List[str] = []
    shown = [0]

    def flush_notes() -> None:  # footnotes under their table, numbered through
        if len(notes) > shown[0]:
            lines.append("")
            lines.extend(f"{i}. {n}" for i, n in enumerate(notes[shown[0]:], shown[0] + 1))
            shown[0] = len(notes)

    def table_rows(spec: List[tuple]) -> None:
        for key, label, unit in spec:
            if not any((s, key) in by for s in systems):
                continue  # workload not selected
            base = by.get(("rmq_native", key), {}).get("value")
            cells = []
            for s in systems:
                r = by.get((s, key))
                if r is None:
                    cells.append("")
                    continue
                v = r["value"]
                cell = fmt(v, unit)
                if v is not None and base and s != "rmq_native":
                    cell += f" (×{v / base:.2f})"
                if r.get("note") == "not measured for this system":
                    cell = "n/a"
                elif r.get("note") and (v is None or key != "rss"):
                    notes.append(f"{LABELS[s]}, {label}: {r['note']}")
                    cell += f" [{len(notes)}]"
                cells.append(cell)
            lines.append(f"| {label} | {unit} | " + " | ".join(cells) + " |")

    if any(r["key"] in {k for k, *_ in ROWS} for r in rows):
        lines += ["", "| workload | unit | " + " | ".join(LABELS[s] for s in systems) + " |",
                  "|---|---|" + "---|" * len(systems)]
        table_rows([(key, label, unit) for key, label, unit, _hib in ROWS])
    flush_notes()
    cpu = meta.get("cpu_us_per_msg") or {}
    if any(cpu.values()):
        lines += ["", "Client CPU time per message (µs; user+system of the client process from wait4, "
                  "process start-up included; less sensitive to the machine's load than msg/s):", "",
                  "| workload | " + " | ".join(LABELS[s] for s in systems) + " |",
                  "|---|" + "---|" * len(systems)]
        for w in WORKLOADS:  # (the scale table has its own CPU rows)
            if any(w in cpu.get(s, {}) for s in systems):
                lines.append(f"| {w} | " + " | ".join(
                    f"{cpu[s][w]:,.0f}" if w in cpu.get(s, {}) else "—" for s in systems) + " |")
    if any(r["key"] in {k for k, *_ in SCALE_ROWS} for r in rows):
        lines += ["", f"Scale: how cost grows with the work (one round; sync sends from {SCALE_THREADS} threads; "
                  f"MB/s = 10⁶ bytes of message body per second; the Go SDK and rmq_native (and by their "
                  f"defaults the Java client and librocketmq) zlib-compress bodies ≥ 4 KiB, and the "
                  f"repeating-alphabet body compresses well; drain = a backlog on an 8-queue "
                  f"topic consumed by that many processes of one group; {ROUTE_TOPICS} topics = the first send to "
                  f"each topic timed, then round-robin over all of them; CPU/msg = all the client processes' "
                  f"user+system time, start-up included).", "",
                  "| workload | unit | " + " | ".join(LABELS[s] for s in systems) + " |",
                  "|---|---|" + "---|" * len(systems)]
        table_rows([(key, label, unit) for key, _w, label, unit in SCALE_ROWS])
        flush_notes()
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


CHART_SCRIPT = r"""
import json, sys
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
rows, labels, systems, out, title = json.load(open(sys.argv[1]))
panels = [("msg/s (higher is better)", ["sync1", "sync8", "async", "batch", "drain"], True),
          ("latency ms @1000 msg/s (lower is better)", ["latency_p50", "latency_p99"], False),
          ("peak RSS MiB (lower is better)", ["rss"], False)]
panels[1] = (panels[1][0], panels[1][1], True)
names = {r["key"]: r["workload"] for r in rows}
val = {(r["system"], r["key"]): r["value"] for r in rows}
fig, axes = plt.subplots(1, 3, figsize=(17, 5.5), gridspec_kw={"width_ratios": [5, 2, 1.3]})
colors = ["#d62728", "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd"]
for ax, (ylabel, keys, log) in zip(axes, panels):
    w = 0.8 / len(systems)
    for i, s in enumerate(systems):
        xs, ys = [], []
        for j, k in enumerate(keys):
            v = val.get((s, k))
            if v:
                xs.append(j + (i - (len(systems) - 1) / 2) * w); ys.append(v)
        ax.bar(xs, ys, w, label=labels[s], color=colors[i % len(colors)])
    ax.set_xticks(range(len(keys)))
    ax.set_xticklabels([names.get(k, k).replace(" @1000 msg/s", "")
                        .replace("peak RSS of the client process", "peak RSS")
                        .replace(", ", "\n") for k in keys], fontsize=8)
    ax.set_ylabel(ylabel)
    if log:
        ax.set_yscale("log")
    ax.grid(axis="y", alpha=0.3)
axes[0].legend(fontsize=8)
fig.suptitle(title, fontsize=10)
fig.tight_layout()
fig.savefig(out, dpi=110)
"""


SCALE_CHART_SCRIPT = r"""
import json, sys
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
rows, labels, systems, out, title, sizes, procs, ntopics = json.load(open(sys.argv[1]))
val = {(r["system"], r["key"]): r["value"] for r in rows}
colors = ["#d62728", "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd"]
fig, axes = plt.subplots(2, 3, figsize=(16, 9))
def lines(ax, xs, keys, ylabel, ideal=False):
    for i, s in enumerate(systems):
        pts = [(x, val.get((s, k))) for x, k in zip(xs, keys) if val.get((s, k))]
        if not pts:
            continue
        ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", color=colors[i % 5], label=labels[s])
        if ideal and pts[0][0] == xs[0]:  # linear scaling from one process
            ax.plot(xs, [pts[0][1] * x / xs[0] for x in xs], ":", color=colors[i % 5], alpha=0.6)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
names = [n for _, n in sizes]
xs = list(range(len(sizes)))
for ax, suffix, ylabel in ((axes[0][0], "", "sync send msg/s by body size"),
                           (axes[0][1], "_mb", "sync send MB/s (bodies) by body size"),
                           (axes[1][0], "_cpu", "client CPU µs per message by body size")):
    lines(ax, xs, [f"size_{n}{suffix}" for n, _ in sizes], ylabel)
    ax.set_xticks(xs)
    ax.set_xticklabels(names)
    if ax.lines:
        ax.set_yscale("log")
lines(axes[0][2], procs, [f"procs_{k}" for k in procs], "drain msg/s (dotted: linear scaling)", ideal=True)
axes[0][2].set_xticks(procs)
axes[0][2].set_ylim(bottom=0)
axes[0][2].set_xlabel("consumer processes of one group, 8 queues")
w = 0.8 / max(1, len(systems))
for ax, groups, ylabel in (
        (axes[1][1], [("size_1024", "1 topic"), ("topics_rate", f"{ntopics} topics")], "sync send msg/s (1 KiB)"),
        (axes[1][2], [("topics_first_p50", "p50"), ("topics_first_max", "max")],
         f"first send to each of {ntopics} new topics, ms")):
    for i, s in enumerate(systems):
        pts = [(j + (i - (len(systems) - 1) / 2) * w, val.get((s, k))) for j, (k, _) in enumerate(groups)]
        pts = [p for p in pts if p[1]]
        if pts:
            ax.bar([p[0] for p in pts], [p[1] for p in pts], w, color=colors[i % 5], label=labels[s])
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels([g for _, g in groups])
    ax.set_ylabel(ylabel)
    ax.grid(axis="y", alpha=0.3)
for ax in axes.flat:  # one legend, on the first panel with data
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
        break
fig.suptitle(title, fontsize=10)
fig.tight_layout()
fig.savefig(out, dpi=100)
"""


def write_chart(path: Path, rows: List[Dict[str, Any]], systems: List[str], title: str,
                script_text: str = CHART_SCRIPT, extra: Optional[list] = None) -> Optional[str]:
    try:
        py = venv_python("tools", TOOLS_PACKAGES)
        data = CACHE / "chart-input.json"
        data.write_text(json.dumps([rows, LABELS, systems, str(path), title, *(extra or [])]))
        script = CACHE / "chart.py"
        script.write_text(script_text)
        run_quiet([str(py), str(script), str(data)], timeout=300)
        return None
    except Exception as e:
        log(f"chart not written: {e}")
        return str(e)


# --------------------------------------------------------------------------- main


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a small version of everything (< 2 min)")
    ap.add_argument("--systems", default=",".join(SYSTEMS), help=f"comma list of {SYSTEMS + VARIANTS}")
    ap.add_argument("--workloads", default=",".join(WORKLOADS + SCALE_WORKLOADS),
                    help=f"comma list of {WORKLOADS + SCALE_WORKLOADS}; 'scale' = all of {SCALE_WORKLOADS}")
    ap.add_argument("--rounds", type=int, default=None,
                    help="rounds of every workload but the scale ones (full: 2, quick: 1)")
    ap.add_argument("--out", default=None, help="results basename (default: latest, or quick with --quick)")
    ap.add_argument("--keep-broker", action="store_true", help="leave the dev broker and proxy running")
    args = ap.parse_args()
    systems = [s for s in args.systems.split(",") if s]
    workloads = [x for w in args.workloads.split(",") if w for x in (SCALE_WORKLOADS if w == "scale" else [w])]
    for s in systems:
        if s not in SYSTEMS and s not in VARIANTS:
            ap.error(f"unknown system {s}")
    for w in workloads:
        if w not in WORKLOADS + SCALE_WORKLOADS:
            ap.error(f"unknown workload {w}")
    if "rmq_native" not in systems:
        systems.insert(0, "rmq_native")
    CACHE.mkdir(parents=True, exist_ok=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out_base = RESULTS / (args.out or ("quick" if args.quick else "latest"))

    sys.path.insert(0, str(ROOT / "src"))
    from rmq_native import devbroker  # stdlib only; does not load the Go library

    t_start = time.monotonic()
    bench = Bench(args.quick, systems, workloads, args.rounds)
    home = CACHE / "devbroker"
    proxy: Optional[Proxy] = None
    try:
        log("starting the dev broker (own state dir, ports "
            f"{NAMESRV_PORT}/{BROKER_PORT})")
        bench.ns = devbroker.start(namesrv_port=NAMESRV_PORT, broker_port=BROKER_PORT, home=home, quiet=True,
                                   clean=True, timeout=300)  # a loaded machine can take minutes
        if "grpc5" in systems:
            proxy = Proxy(bench.ns)
            try:
                proxy.launch()  # starts while the drivers are being prepared
            except Exception as e:
                bench.unavailable["grpc5"] = f"the RocketMQ proxy could not run: {str(e)[:300]}"
                log(bench.unavailable["grpc5"])
        bench.prepare()
        if proxy and "grpc5" not in bench.unavailable:
            try:
                bench.endpoint = proxy.wait_ready()
                log(f"proxy (cluster mode) listening on {bench.endpoint}")
            except Exception as e:
                bench.unavailable["grpc5"] = f"the RocketMQ proxy could not run: {str(e)[:300]}"
                log(bench.unavailable["grpc5"])
        bench.create_topics()
        t_setup = time.monotonic() - t_start
        log(f"setup took {t_setup:.0f}s; running")
        bench.run()
    finally:
        if proxy and not args.keep_broker:
            proxy.stop()
        if not args.keep_broker:
            devbroker.stop(home=home, clean=True, quiet=True)
    duration = time.monotonic() - t_start
    rows = bench.rows()
    meta = {
        "finished": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "quick": args.quick,
        "duration_s": duration, "setup_s": t_setup, "machine": machine_info(),
        "load_min": min(bench.loads or [0]), "load_max": max(bench.loads or [0]),
        "systems": {s: LABELS[s] for s in systems},
        "cpu_us_per_msg": {s: {w: 1e6 * sum(r["cpu_s"] for r in rs if r.get("ok")) /
                               max(1, sum(r.get("n", 0) for r in rs if r.get("ok")))
                               for w, rs in ws.items() if any(r.get("ok") and r.get("n") for r in rs)}
                           for s, ws in bench.samples.items()},
    }
    public = [{k: v for k, v in r.items() if k != "key"} for r in rows]
    out_base.with_suffix(".json").write_text(json.dumps(public, indent=1, ensure_ascii=False) + "\n",
                                             encoding="utf-8")
    raw = {"meta": meta, "samples": bench.samples, "scale_samples": bench.scale_samples,
           "unavailable": bench.unavailable}
    out_base.with_name(out_base.name + "-raw.json").write_text(json.dumps(raw, indent=1) + "\n", encoding="utf-8")
    write_markdown(out_base.with_suffix(".md"), rows, systems, meta)
    charts = []
    if bench.workloads:
        write_chart(out_base.with_suffix(".png"), rows, systems,
                    f"rmq_native vs peers, one RocketMQ {ROCKETMQ_VERSION} broker, 1 KiB bodies "
                    f"({meta['machine']['cores']} cores, {meta['finished']})")
        charts.append(".png")
    if bench.scale_workloads:
        write_chart(out_base.with_name(out_base.name + "-scale.png"), rows, systems,
                    f"Scale: rmq_native vs peers, one RocketMQ {ROCKETMQ_VERSION} broker, sync sends from "
                    f"{SCALE_THREADS} threads ({meta['machine']['cores']} cores, {meta['finished']})",
                    SCALE_CHART_SCRIPT, [SIZES, PROCS, ROUTE_TOPICS])
        charts.append("-scale.png")
    print(out_base.with_suffix(".md").read_text(encoding="utf-8"))
    log(f"done in {duration:.0f}s (setup {t_setup:.0f}s); wrote {out_base}.json/.md, "
        + ", ".join(out_base.name + c for c in charts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
