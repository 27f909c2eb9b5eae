"""The SDK's logs reach Python logging, quietly by default."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[1] / "src")

# A consumer of a topic that does not exist fails to start; the SDK logs
# what it did on the way (INFO) and why it failed (WARNING).
SCRIPT = textwrap.dedent("""
    import logging, sys, time, rmq_native
    records = []
    class Keep(logging.Handler):
        def emit(self, record):
            records.append((record.levelname, record.getMessage()))
    if sys.argv[2] == "capture":
        logging.getLogger("rmq_native").addHandler(Keep())
    try:
        rmq_native.Consumer(sys.argv[1], "log_group", "log_topic_missing_" + str(time.time_ns()))
    except rmq_native.NoRouteError:
        pass
    deadline = time.monotonic() + 10
    while sys.argv[2] == "capture" and not records and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)
    for level, text in records[:50]:
        print(level, text)
""")


def run(ns: str, mode: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", SCRIPT, ns, mode], capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, PYTHONPATH=SRC, **env))


def test_sdk_logs_reach_python_logging_at_the_chosen_level(rocketmq_namesrv: str) -> None:
    r = run(rocketmq_namesrv, "capture", RMQ_NATIVE_LOG_LEVEL="DEBUG")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert any(line.startswith("INFO ") for line in lines), r.stdout
    assert any(line.startswith("WARNING ") and "route" in line for line in lines), r.stdout


def test_default_level_forwards_warnings_only(rocketmq_namesrv: str) -> None:
    r = run(rocketmq_namesrv, "capture")
    assert r.returncode == 0, r.stderr
    levels = {line.split()[0] for line in r.stdout.splitlines()}
    assert levels and levels <= {"WARNING", "ERROR", "CRITICAL"}, r.stdout


def test_quiet_by_default(rocketmq_namesrv: str) -> None:
    r = run(rocketmq_namesrv, "none")
    assert r.returncode == 0 and r.stdout == "" and r.stderr == "", r.stderr


def test_environment_variable_turns_logs_up_on_stderr(rocketmq_namesrv: str) -> None:
    r = run(rocketmq_namesrv, "none", RMQ_NATIVE_LOG_LEVEL="info")
    assert r.returncode == 0, r.stderr
    assert " INFO rmq_native: " in r.stderr and " WARNING rmq_native: " in r.stderr
