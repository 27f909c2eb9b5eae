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

The dev broker (name server + broker, own state dir, ports 21876/22911) serves
every system; the RocketMQ 5.3.3 proxy runs in cluster mode in front of that
same broker for the gRPC client, with every listener bound to 127.0.0.1.
Workloads run in an interleaved order (each workload, every system, the
starting system rotated), so drift over the run hits all systems alike.

Driver protocol: ``<driver> '<spec json>'`` -> one JSON line on stdout
``{"ok": true, "n": N, "elapsed": s, "errors": E, "metrics": {...}}`` or
``{"ok": false, "error": "..."}``.  Spec keys: workload (sync1, sync8, async,
batch, drain, latency; the Go driver also has preload and create_topics), ns,
endpoint (gRPC), topic, group, count, size, threads, inflight, batch, rate,
duration, max_time.
"""

from __future__ import annotations

import argparse
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
NAMESRV_PORT = 21876
BROKER_PORT = 22911
PROXY_GRPC_PORT = 22081
PROXY_REMOTING_PORT = 22080
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
}
VARIANTS = ["rmq_native+otel", "rmq_native+trace"]
WORKLOADS = ["sync1", "sync8", "async", "batch", "drain", "latency"]
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
    exe = CACHE / "bench-go"
    src = [HERE / "go" / "main.go", HERE / "go" / "go.mod", HERE / "go" / "go.sum"]
    if _newer(src, exe):
        log("building the Go driver")
        run_quiet(["go", "build", "-o", str(exe), "."], cwd=HERE / "go")
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


def run_driver(cmd: List[str], spec: dict, timeout: float) -> Dict[str, Any]:
    """Run one driver process; returns its JSON result plus peak RSS and CPU time
    (from wait4's rusage of that process alone)."""
    t0 = time.monotonic()
    proc = subprocess.Popen([*cmd, json.dumps(spec)], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True,
                            env=dict(os.environ, PYTHONUNBUFFERED="1"))
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
    out = chunks.get("out", b"").decode(errors="replace").strip().splitlines()
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
    res["rss_mib"] = ru.ru_maxrss / 1024.0
    res["cpu_s"] = ru.ru_utime + ru.ru_stime
    res["wall_s"] = wall
    return res


class Bench:
    def __init__(self, quick: bool, systems: List[str], workloads: List[str], rounds: Optional[int]) -> None:
        self.quick = quick
        self.systems = systems
        self.workloads = workloads
        if quick:
            self.send_time, self.rounds = 1.0, rounds or 1
            self.drain_count, self.drain_time = 5000, 30.0
            self.lat_duration = 2.0
        else:
            self.send_time, self.rounds = 6.0, rounds or 2
            self.drain_count, self.drain_time = 100_000, 150.0
            self.lat_duration = 15.0
        self.run_id = time.strftime("%H%M%S")
        self.samples: Dict[str, Dict[str, List[Dict[str, Any]]]] = {s: {} for s in systems}
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
                    import rmq_native  # noqa: F401  (fails early with a clear error)

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
        return f"bench_{self.run_id}_{system}_{workload}_{rnd}"

    def create_topics(self) -> None:
        topics = [self.topic(s, w, r) for s in self.systems for w in self.workloads for r in range(self.rounds)]
        r = self.go({"workload": "create_topics", "broker": f"{HOST}:{BROKER_PORT}", "topics": topics, "queues": 8})
        if not r.get("ok"):
            raise RuntimeError(f"cannot create topics: {r.get('error')}")

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

    def run(self) -> None:
        order = list(self.systems)
        k = 0
        for rnd in range(self.rounds):
            for w in self.workloads:
                if w in ("drain", "latency") and rnd > 0 and not self.quick:
                    continue  # long workloads: one round in the full run
                rot = order[k % len(order):] + order[: k % len(order)]
                k += 1
                for s in rot:
                    self.measure(s, w, rnd)

    # -- results
    def rows(self) -> List[Dict[str, Any]]:
        out: List[Dict[str, Any]] = []
        for s in self.systems:
            for key, label, unit, _hib in ROWS:
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
                    if w == "drain" and ok[0]["n"] < self.drain_count:
                        notes.append(f"only {ok[0]['n']} of {self.drain_count} received in {self.drain_time:.0f} s")
                    if w == "latency":
                        lost = ok[0]["metrics"].get("lost", 0)
                        if lost:
                            notes.append(f"{lost:.0f} of {self.lat_duration * 1000:.0f} not received within 10 s")
                    if notes:
                        row["note"] = "; ".join(notes)
                elif runs:
                    row["note"] = runs[-1].get("error", "failed")
                else:
                    row["note"] = "not run"
                out.append(row)
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
    if unit == "ms":
        return f"{v:,.1f}" if v < 100 else f"{v:,.0f}"
    return f"{v:,.0f}"


def write_markdown(path: Path, rows: List[Dict[str, Any]], systems: List[str], meta: Dict[str, Any]) -> None:
    by = {(r["system"], r["key"]): r for r in rows}
    lines = [
        f"Run {meta['finished']} ({'quick' if meta['quick'] else 'full'}, {meta['duration_s']:.0f} s) on "
        f"{meta['machine']['cores']} × {meta['machine']['cpu']}, {meta['machine']['memory_gib']} GiB, "
        f"{meta['machine']['os']}; Python {meta['machine']['python']}, {meta['machine']['go']}, "
        f"{meta['machine']['java']}. 1 KiB bodies; one dev broker (RocketMQ {ROCKETMQ_VERSION}) for all, "
        "the gRPC client through rocketmq-proxy (cluster mode) in front of it.",
        f"Load average during the run: {meta['load_min']:.1f}–{meta['load_max']:.1f} "
        f"(2 cores; other builds and tests shared the machine: numbers are noisy).",
        "",
        "Value (× ratio to rmq_native; for msg/s higher is better, for ms and MiB lower is better).",
        "",
        "| workload | unit | " + " | ".join(LABELS[s] for s in systems) + " |",
        "|---|---|" + "---|" * len(systems),
    ]
    notes: List[str] = []
    for key, label, unit, _hib in ROWS:
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
            if r.get("note") and (v is None or key != "rss"):
                notes.append(f"{LABELS[s]}, {label}: {r['note']}")
                cell += f" [{len(notes)}]"
            cells.append(cell)
        lines.append(f"| {label} | {unit} | " + " | ".join(cells) + " |")
    if notes:
        lines.append("")
        lines += [f"{i}. {n}" for i, n in enumerate(notes, 1)]
    cpu = meta.get("cpu_us_per_msg") or {}
    if cpu:
        lines += ["", "Client CPU time per message (µs; user+system of the client process from wait4, "
                  "process start-up included; less sensitive to the machine's load than msg/s):", "",
                  "| workload | " + " | ".join(LABELS[s] for s in systems) + " |",
                  "|---|" + "---|" * len(systems)]
        for w in WORKLOADS:
            if any(w in cpu.get(s, {}) for s in systems):
                lines.append(f"| {w} | " + " | ".join(
                    f"{cpu[s][w]:,.0f}" if w in cpu.get(s, {}) else "—" for s in systems) + " |")
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


def write_chart(path: Path, rows: List[Dict[str, Any]], systems: List[str], title: str) -> Optional[str]:
    try:
        py = venv_python("tools", TOOLS_PACKAGES)
        data = CACHE / "chart-input.json"
        data.write_text(json.dumps([rows, LABELS, systems, str(path), title]))
        script = CACHE / "chart.py"
        script.write_text(CHART_SCRIPT)
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
    ap.add_argument("--workloads", default=",".join(WORKLOADS), help=f"comma list of {WORKLOADS}")
    ap.add_argument("--rounds", type=int, default=None, help="rounds of the send workloads (full: 2, quick: 1)")
    ap.add_argument("--out", default=None, help="results basename (default: latest, or quick with --quick)")
    ap.add_argument("--keep-broker", action="store_true", help="leave the dev broker and proxy running")
    args = ap.parse_args()
    systems = [s for s in args.systems.split(",") if s]
    workloads = [w for w in args.workloads.split(",") if w]
    for s in systems:
        if s not in SYSTEMS and s not in VARIANTS:
            ap.error(f"unknown system {s}")
    for w in workloads:
        if w not in WORKLOADS:
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
                                   clean=True)
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
    raw = {"meta": meta, "samples": bench.samples, "unavailable": bench.unavailable}
    out_base.with_name(out_base.name + "-raw.json").write_text(json.dumps(raw, indent=1) + "\n", encoding="utf-8")
    write_markdown(out_base.with_suffix(".md"), rows, systems, meta)
    write_chart(out_base.with_suffix(".png"), rows, systems,
                f"rmq_native vs peers, one RocketMQ {ROCKETMQ_VERSION} broker, 1 KiB bodies "
                f"({meta['machine']['cores']} cores, {meta['finished']})")
    print(out_base.with_suffix(".md").read_text(encoding="utf-8"))
    log(f"done in {duration:.0f}s (setup {t_setup:.0f}s); wrote {out_base}.json/.md/.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
