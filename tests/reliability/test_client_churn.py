"""Issue 17's figures: consumers created and closed on a topic with a
backlog do not keep their prefetched messages (RSS 60 s after the last
close within 30 MiB of the RSS before the first). Runs on its own dev
broker (name server 21886 with RocketMQ's default 120 s idle timeout,
broker 22941), which it stops at the end."""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Iterator

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


def test_30_consumer_cycles_on_a_2000_message_backlog(idle120: str) -> None:
    topic, group = f"TCHURN_{os.getpid()}", f"GCHURN_{os.getpid()}"
    with Admin(idle120) as a:
        a.create_topic(topic, queues=4)
    with Producer(idle120) as p:
        for _ in range(2000):
            p.send(topic, os.urandom(512).hex())  # 1 KiB
    before, stats_before = _rss(), harness.stats()
    peak = before
    for _ in range(30):
        with Consumer(idle120, group, topic, from_where="first") as c:
            msg = c.receive(timeout=30)
            assert msg is not None
            msg.ack()
        peak = max(peak, _rss())
    time.sleep(60)
    after, stats_after = _rss(), harness.stats()
    res = {
        "rss_before_mib": round(before / 2**20, 1), "rss_peak_mib": round(peak / 2**20, 1),
        "rss_after_60s_mib": round(after / 2**20, 1),
        "goroutines_before": stats_before["goroutines"], "goroutines_after_60s": stats_after["goroutines"],
        "heap_after_60s_kib": stats_after["heap_bytes"] // 1024,
    }
    harness.record_result("consumer_churn_backlog_2000", res)
    print(json.dumps(res))
    assert after - before < 30 * 2**20, res
    assert stats_after["goroutines"] <= stats_before["goroutines"] + 30 * harness.CONSUMER_RESIDUE_GOROUTINES, res
