"""Issue 17's figures: consumers created and closed on a topic with a
backlog do not keep their prefetched messages (RSS 60 s after the last
close within 30 MiB of the RSS before the first). Runs on its own dev
broker (name server 21886 with RocketMQ's default 120 s idle timeout,
broker 22941), which it stops at the end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from reliability import harness
from rmq_native import Admin, Consumer, Producer, devbroker

pytestmark = pytest.mark.reliability


def _rss() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@pytest.fixture(scope="module")
def idle120() -> Iterator[str]:
    home = Path(tempfile.gettempdir()) / f"rmq_native_churn_{os.getuid()}"
    addr = devbroker.start(namesrv_port=21886, broker_port=22941, home=home, quiet=True, namesrv_idle_timeout=120)
    try:
        yield addr
    finally:
        devbroker.stop(home=home, clean=True, quiet=True)


def churn(ns: str, topic: str, group: str) -> dict[str, Any]:
    """In a fresh process (no test framework holding log records): 30
    consumers each take one message of the backlog and close."""
    stats_before = harness.stats()  # loads the library
    before = peak = _rss()
    for _ in range(30):
        with Consumer(ns, group, topic, from_where="first") as c:
            msg = c.receive(timeout=30)
            assert msg is not None
            msg.ack()
        peak = max(peak, _rss())
    time.sleep(60)
    after, stats_after = _rss(), harness.stats()
    return {
        "rss_before_mib": round(before / 2**20, 1), "rss_peak_mib": round(peak / 2**20, 1),
        "rss_after_60s_mib": round(after / 2**20, 1), "rss_growth_mib": round((after - before) / 2**20, 1),
        "goroutines_before": stats_before["goroutines"], "goroutines_after_60s": stats_after["goroutines"],
        "heap_after_60s_kib": stats_after["heap_bytes"] // 1024,
    }


def test_30_consumer_cycles_on_a_2000_message_backlog(idle120: str) -> None:
    topic, group = f"TCHURN_{os.getpid()}", f"GCHURN_{os.getpid()}"
    with Admin(idle120) as a:
        a.create_topic(topic, queues=4)
    with Producer(idle120) as p:
        for _ in range(2000):
            p.send(topic, os.urandom(512).hex())  # 1 KiB
    code = ("import json, sys\nfrom reliability.test_client_churn import churn\n"
            "print('@@RESULT@@' + json.dumps(churn(*sys.argv[1:])), flush=True)\n")
    r = subprocess.run([sys.executable, "-c", code, idle120, topic, group], env=harness.child_env(),
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-5000:]
    res = json.loads(r.stdout.split("@@RESULT@@")[1])
    harness.record_result("consumer_churn_backlog_2000", res)
    assert res["rss_growth_mib"] < 30, res
    assert res["goroutines_after_60s"] <= res["goroutines_before"] + 30 * harness.CONSUMER_RESIDUE_GOROUTINES, res
