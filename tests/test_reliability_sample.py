"""A short sample of the reliability suite (tests/reliability, ``pytest -m
reliability``) inside the normal test run: the same checks with small
numbers. The Go panic and fork() checks live in tests/test_ffi.py
(test_go_panic_becomes_internal_error_and_process_lives,
test_fork_child_gets_clear_error_instead_of_hanging)."""

from __future__ import annotations

import multiprocessing
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Callable

import pytest
from conftest import unique
from reliability import harness

import rmq_native
from rmq_native import Producer


def test_sample_consumer_sigkill_loses_nothing(rocketmq_namesrv: str, topic: str, group: str,
                                               tmp_path: Path) -> None:
    res = harness.consumer_kill_trials(rocketmq_namesrv, topic, group, 1000, 2, tmp_path, seed=7)
    harness.record_result("sample_consumer_sigkill", res)
    assert res["acknowledged_sends"] == 1000
    assert res["missing"] == 0, res


def test_sample_fuzz_python_api(rocketmq_namesrv: str, topic: str, group: str) -> None:
    res = harness.fuzz_python_api(rocketmq_namesrv, topic, group, examples=60)
    harness.record_result("sample_fuzz_python_api", res)
    assert res["cases"] >= 200
    assert res["undocumented_count"] == 0, res["undocumented"]


def test_sample_fuzz_c_abi(rocketmq_namesrv: str, topic: str) -> None:
    res = harness.run_child("abi_fuzz", rocketmq_namesrv, topic, 400, 1234, False, timeout=300)
    harness.record_result("sample_fuzz_c_abi", res)
    assert res["cases"] == 400
    assert res["problem_count"] == 0, res["problems"]


def test_sample_memory_is_bounded(rocketmq_namesrv: str, topic: str) -> None:
    res = harness.run_child("rss_growth", rocketmq_namesrv, topic, 10_000, 3_000, timeout=300)
    harness.record_result("sample_rss", res)
    assert res["rss_growth_mib"] < 20, res


def test_ordinary_runs_write_results_to_an_ignored_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    """The sample tests above record into tests/reliability/runs/ (ignored by git); the
    committed results.json is written only with RMQ_NATIVE_RECORD_RESULTS=1."""
    monkeypatch.delenv(harness.RECORD_ENV, raising=False)
    assert harness.results_path() == harness.RUN_RESULTS != harness.RESULTS
    monkeypatch.setenv(harness.RECORD_ENV, "1")
    assert harness.results_path() == harness.RESULTS
    git = shutil.which("git")
    if git is None or not (harness.TESTS.parent / ".git").exists():
        pytest.skip("not a git checkout: cannot ask git what it ignores")
    ignored = subprocess.run([git, "check-ignore", "-q", str(harness.RUN_RESULTS)], cwd=harness.HERE)
    assert ignored.returncode == 0, f"{harness.RUN_RESULTS} is not ignored by git"
    tracked = subprocess.run([git, "ls-files", "--error-unmatch", str(harness.RESULTS)], cwd=harness.HERE,
                             capture_output=True)
    assert tracked.returncode == 0, f"{harness.RESULTS} should be committed"


def test_name_server_down_at_start_is_unreachable_error() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t = time.monotonic()
    for make in (lambda: Producer(f"127.0.0.1:{port}"),
                 lambda: rmq_native.Consumer(f"127.0.0.1:{port}", "g", "t")):
        with pytest.raises(rmq_native.UnreachableError) as ei:
            make()
        assert ei.value.retriable and str(port) in str(ei.value)
    assert time.monotonic() - t < 30


def test_spawned_process_sends_and_receives(rocketmq_namesrv: str, make_topic: Callable[..., str]) -> None:
    topic = make_topic()
    rmq_native._ffi.lib()  # the library is loaded in this process: spawn must not care
    ctx = multiprocessing.get_context("spawn")
    token = unique("spawn")
    with ctx.Pool(1) as pool:
        got = pool.apply(harness.spawn_child_roundtrip, (rocketmq_namesrv, topic, unique("G"), token))
    assert got == token
