"""The operations commands of rmq-native against real brokers: topic list
and stats, group lag (also --watch) and reset, message find, read."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import unique

from rmq_native import Admin, Producer

ROOT = Path(__file__).resolve().parents[1]


def cli(*args: str, ns: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run rmq-native; RMQ_NAMESRV points nowhere, so only -n reaches the broker."""
    env = dict(os.environ, RMQ_NAMESRV="127.0.0.1:1", PYTHONPATH=str(ROOT / "src"))
    argv = [sys.executable, "-m", "rmq_native", *(["-n", ns] if ns else []), *args]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def aligned(lines: list[str], left: int, right: int) -> bool:
    """Whether the first ``left`` columns start, and the next ``right``
    (numbers) end, at the same place on every line."""
    edges = set()
    for line in lines:
        spans = [m.span() for m in re.finditer(r"\S+", line)][: left + right]
        edges.add(tuple([a for a, _ in spans[:left]] + [b for _, b in spans[left:]]))
    return len(edges) == 1


def test_global_name_server_topic_list_and_stats(rocketmq_namesrv: str, topic: str, producer: Producer) -> None:
    for i in range(7):
        producer.send(topic, f"m{i}")
    r = cli("topic", "list", ns=rocketmq_namesrv)  # -n before the command
    assert r.returncode == 0, r.stderr
    assert topic in r.stdout.split() and "TBW102" not in r.stdout.split()
    r = cli("topic", "list", "--all", "--json", "-n", rocketmq_namesrv)  # and after it
    assert r.returncode == 0, r.stderr
    assert topic in json.loads(r.stdout) and "TBW102" in json.loads(r.stdout)
    r = cli("topic", "stats", topic, ns=rocketmq_namesrv)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["BROKER", "QUEUE", "MIN_OFFSET", "MAX_OFFSET", "MESSAGES", "LAST_UPDATE"]
    assert len(lines) == 5 and all(ln.startswith("broker-a") for ln in lines[1:])
    assert aligned(lines, 1, 4)
    assert sum(int(ln.split()[4]) for ln in lines[1:]) == 7
    r = cli("topic", "stats", topic, "--json", ns=rocketmq_namesrv)
    rows = json.loads(r.stdout)
    assert sum(q["max_offset"] - q["min_offset"] for q in rows) == 7 and {q["queue_id"] for q in rows} == {0, 1, 2, 3}
    r = cli("topic", "stats", unique("NOPE"), ns=rocketmq_namesrv)
    assert r.returncode == 1 and "does not exist" in r.stderr


def test_group_lag_watch_and_reset(rocketmq_namesrv: str, topic: str, producer: Producer) -> None:
    ns, group = rocketmq_namesrv, unique("G")
    for i in range(5):
        producer.send(topic, f"a{i}")
    time.sleep(1.5)
    middle = dt.datetime.now().isoformat()
    time.sleep(1.5)
    r = cli("consume", topic, "--group", group, "--count", "5", "--timeout", "60", ns=ns)
    assert r.returncode == 0, r.stderr
    deadline = time.monotonic() + 30
    while True:
        r = cli("group", "lag", group, "--topic", topic, "--json", ns=ns)
        if (r.returncode == 0 and json.loads(r.stdout)["total_lag"] == 0) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert r.returncode == 0 and json.loads(r.stdout)["total_lag"] == 0, r.stdout + r.stderr
    for i in range(3):
        producer.send(topic, f"b{i}")
    r = cli("group", "lag", group, ns=ns)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["TOPIC", "BROKER", "QUEUE", "BROKER_OFFSET", "CONSUMER_OFFSET", "LAG"]
    assert lines[-1] == "total lag: 3"
    assert aligned(lines[:-1], 2, 4)
    data = json.loads(cli("group", "lag", group, "--topic", topic, "--json", ns=ns).stdout)
    assert data["total_lag"] == 3 and sum(q["lag"] for q in data["queues"]) == 3

    deadline = time.monotonic() + 30
    while True:  # once the broker noticed that the consumer closed
        r = cli("group", "reset", group, topic, "--to", "first", "--json", ns=ns)
        if r.returncode == 0 or "online" not in r.stderr or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert r.returncode == 0, r.stderr
    assert {q["offset"] for q in json.loads(r.stdout)} == {0}
    assert json.loads(cli("group", "lag", group, "--json", ns=ns).stdout)["total_lag"] == 8
    r = cli("group", "reset", group, topic, "--to", middle, ns=ns)  # between the two batches
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0].split() == ["BROKER", "QUEUE", "OFFSET"]
    assert json.loads(cli("group", "lag", group, "--json", ns=ns).stdout)["total_lag"] == 3
    r = cli("group", "reset", group, topic, "--to", "tomorrow-ish", ns=ns)
    assert r.returncode == 2 and "ISO time" in r.stderr

    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    watch = subprocess.Popen([sys.executable, "-m", "rmq_native", "-n", ns, "group", "lag", group, "--watch", "0.5",
                              "--json"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert watch.stdout is not None
        rounds = [json.loads(watch.stdout.readline()) for _ in range(2)]
        assert [x["total_lag"] for x in rounds] == [3, 3]
        producer.send(topic, "c")
        deadline = time.monotonic() + 30
        while json.loads(watch.stdout.readline())["total_lag"] != 4:
            assert time.monotonic() < deadline
    finally:
        watch.send_signal(signal.SIGINT)
        assert watch.wait(30) == 130
    r = cli("group", "lag", unique("NOGROUP"), ns=ns)
    assert r.returncode == 1 and "no offsets" in r.stderr


def test_message_find(rocketmq_namesrv: str, topic: str, producer: Producer) -> None:
    ns = rocketmq_namesrv
    sent = [producer.send(topic, f"body{i}", keys=[f"key{i}"]) for i in range(3)]
    deadline = time.monotonic() + 30
    while True:
        r = cli("message", "find", topic, "--key", "key1", ns=ns)
        if r.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(sent[1].msg_id) and "  body1" in r.stdout
    r = cli("message", "find", topic, "--id", sent[2].msg_id, "--json", ns=ns)
    assert r.returncode == 0, r.stderr
    rec = json.loads(r.stdout)
    assert rec["body"] == "body2" and rec["keys"] == ["key2"] and rec["queue_offset"] == sent[2].queue_offset
    r = cli("message", "find", topic, "--key", "nothing-here", ns=ns)
    assert r.returncode == 1 and "no message found" in r.stderr
    r = cli("message", "find", topic, ns=ns)
    assert r.returncode == 2


def test_read_between_times(rocketmq_namesrv: str, topic: str, producer: Producer) -> None:
    ns = rocketmq_namesrv
    for i in range(4):
        producer.send(topic, f"old{i}")
    time.sleep(1.2)
    start = dt.datetime.now(dt.timezone.utc).isoformat().replace("+00:00", "Z")
    for i in range(6):
        producer.send(topic, f"mid{i}")
    time.sleep(1.2)
    end = dt.datetime.now().isoformat()
    for i in range(2):
        producer.send(topic, f"new{i}")
    time.sleep(0.5)
    r = cli("read", topic, "--from", start, "--to", end, "--json", ns=ns)
    assert r.returncode == 0, r.stderr
    recs = [json.loads(ln) for ln in r.stdout.splitlines()]
    assert sorted(x["body"] for x in recs) == [f"mid{i}" for i in range(6)]
    r = cli("read", topic, ns=ns)  # from the first message to the end as of now
    assert r.returncode == 0, r.stderr
    assert sorted(r.stdout.split()) == sorted([f"old{i}" for i in range(4)] + [f"mid{i}" for i in range(6)] +
                                              ["new0", "new1"])
    r = cli("read", unique("NOPE"), ns=ns)
    assert r.returncode == 1 and "does not exist" in r.stderr


def test_cluster_stats_and_read(cluster2_namesrv: str) -> None:
    ns = cluster2_namesrv
    topic = unique("CLI")
    with Admin(ns) as admin, Producer(ns, unique("P")) as producer:
        admin.create_topic(topic, queues=2)
        try:
            for i in range(8):
                producer.send(topic, f"c{i}")
            r = cli("topic", "stats", topic, ns=ns)
            assert r.returncode == 0, r.stderr
            assert sorted({ln.split()[0] for ln in r.stdout.splitlines()[1:]}) == ["broker-a", "broker-b"]
            r = cli("read", topic, "--json", ns=ns)
            assert r.returncode == 0, r.stderr
            recs = [json.loads(ln) for ln in r.stdout.splitlines()]
            assert sorted(x["body"] for x in recs) == [f"c{i}" for i in range(8)]
            assert {x["broker_name"] for x in recs} == {"broker-a", "broker-b"}
        finally:
            admin.delete_topic(topic)


@pytest.mark.parametrize("argv", [["topic"], ["group", "lag"], ["message", "find", "t"], ["read"]])
def test_usage_errors(argv: list[str]) -> None:
    assert cli(*argv).returncode == 2
