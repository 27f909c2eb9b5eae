"""Every example runs green against the broker; the command line works."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import unique

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted(p.name for p in (ROOT / "examples").glob("*.py"))
EXPECTED = {
    "quickstart.py": "10 of 10 messages received",
    "producer.py": "stored",
    "consumer.py": "processed",
    "async_send.py": "batch of 32 stored",
    "ordered.py": "created -> paid -> shipped",
    "delay.py": "at a given time",
    "transaction.py": "delivered:",
    "broadcasting.py": "cache b got",
    "sql92.py": "big payment: payment of 500",
    "aio_example.py": "received 10 messages",
    "worker_pool.py": "20 jobs acknowledged by worker threads",
    # issue 16: statistics, OpenTelemetry, request/reply
    "stats.py": "producer: sent 40, failed 0, in flight 0",
    "otel_tracing.py": "one trace: True",
    "request_reply.py": "answer: price of pears: 42",
    "message_trace.py": "trace records: Pub, SubBefore, SubAfter",
}


def run(args: list[str], ns: str, timeout: float = 120, **kw: object) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, RMQ_NAMESRV=ns, PYTHONPATH=str(ROOT / "src"))
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout, cwd=ROOT, **kw)  # type: ignore[call-overload]


def test_every_example_is_tested() -> None:
    assert set(EXAMPLES) == set(EXPECTED)


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_runs(rocketmq_namesrv: str, name: str) -> None:
    r = run([sys.executable, f"examples/{name}"], rocketmq_namesrv)
    assert r.returncode == 0, r.stdout + r.stderr
    assert EXPECTED[name] in r.stdout, r.stdout


def cli(*args: str, ns: str, **kw: object) -> subprocess.CompletedProcess[str]:
    return run([sys.executable, "-m", "rmq_native", *args], ns, **kw)


def test_cli_send_then_consume_prints_hello(rocketmq_namesrv: str, topic: str) -> None:
    r = cli("send", topic, "hello", ns=rocketmq_namesrv)
    assert r.returncode == 0, r.stderr
    r = cli("consume", topic, "--group", unique("g"), "--count", "1", "--timeout", "30", ns=rocketmq_namesrv)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "hello\n"


def test_cli_stdin_tags_properties_and_json(rocketmq_namesrv: str, topic: str) -> None:
    r = cli("send", topic, "--tags", "t1", "--keys", "k1,k2", "--property", "a=1", ns=rocketmq_namesrv,
            input="line one\nline two\n")
    assert r.returncode == 0, r.stderr
    r = cli("consume", topic, "--group", unique("g"), "--json", "--count", "2", "--timeout", "30",
            ns=rocketmq_namesrv)
    assert r.returncode == 0, r.stderr
    records = [json.loads(line) for line in r.stdout.splitlines()]
    assert sorted(x["body"] for x in records) == ["line one", "line two"]
    assert all(x["tags"] == "t1" and x["keys"] == ["k1", "k2"] and x["properties"] == {"a": "1"} for x in records)


def test_cli_topic_and_errors(rocketmq_namesrv: str) -> None:
    t = unique("T")
    assert cli("topic", "create", t, "--queues", "2", ns=rocketmq_namesrv).returncode == 0
    assert cli("topic", "delete", t, ns=rocketmq_namesrv).returncode == 0
    r = cli("send", "bad topic", "x", ns=rocketmq_namesrv)
    assert r.returncode == 1 and "invalid topic" in r.stderr
    r = cli("send", "t", "x", ns="127.0.0.1:1")
    assert r.returncode == 1 and "unreachable" in r.stderr
    r = cli("consume", "t", ns=rocketmq_namesrv)
    assert r.returncode == 2 and "--group" in r.stderr
    r = cli("consume", unique("T"), "--group", "g", "--count", "1", "--timeout", "1", ns=rocketmq_namesrv)
    assert r.returncode in (1, 3)  # no route for an unknown topic, or nothing in time


@pytest.mark.parametrize("args", [["--help"], ["send", "--help"], ["consume", "--help"], ["topic", "--help"],
                                  ["devbroker", "--help"]])
def test_cli_help_everywhere(args: list[str]) -> None:
    r = cli(*args, ns="127.0.0.1:9876")
    assert r.returncode == 0 and "usage" in r.stdout.lower(), r.stdout + r.stderr
