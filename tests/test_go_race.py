"""tools/go_race.py -- how CI reads a ``go test -race`` run: the Go SDK's own
race (a pull goroutine's send vs Shutdown's close of a process queue's
channel) is tolerated; a race touching the library's code, a panic, or any
other test failure fails the run."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import go_race  # noqa: E402

SDK = "github.com/apache/rocketmq-client-go/v2"
OURS = "github.com/rmq-native/rmq_native/go"


def report(first: str, second: str) -> str:
    return f"""==================
WARNING: DATA RACE
Write at 0x00c0000fc010 by goroutine 14:
  runtime.closechan()
      GOROOT/src/runtime/chan.go:414 +0x0
  {first}()
      MOD/consumer.go:302 +0x1a8
  sync.(*Once).doSlow()
      GOROOT/src/sync/once.go:78 +0xa1
  {OURS}.TestCloseUnderTraffic.(*consumerState).close.func7()
      go/consumer.go:510 +0x123

Previous read at 0x00c0000fc010 by goroutine 99:
  runtime.chansend()
      GOROOT/src/runtime/chan.go:176 +0x0
  {second}()
      MOD/process_queue.go:128 +0x4a4

Goroutine 14 (running) created at:
  testing.(*T).Run()
      GOROOT/src/testing/testing.go:2101 +0xb12
==================
"""


FAILED = """--- FAIL: TestCloseUnderTraffic (12.82s)
    testing.go:1712: race detected during execution of test
FAIL
FAIL\tgithub.com/rmq-native/rmq_native/go\t13.811s
FAIL
"""

SDK_RACE = report(f"{SDK}/consumer.(*defaultConsumer).shutdown.func1", f"{SDK}/consumer.(*processQueue).putMessage")


def test_a_passing_run_passes() -> None:
    assert go_race.verdict("ok  \tgithub.com/rmq-native/rmq_native/go\t3.1s\n", 0)[0]


def test_the_sdks_own_race_is_tolerated_and_named() -> None:
    ok, why = go_race.verdict(SDK_RACE + FAILED, 1)
    assert ok, why
    assert "putMessage" in why and "shutdown" in why


def test_a_race_in_the_librarys_code_fails() -> None:
    out = report(f"{OURS}.(*consumerState).close", f"{SDK}/consumer.(*processQueue).putMessage") + FAILED
    ok, why = go_race.verdict(out, 1)
    assert not ok and "outside the SDK" in why
    out = report(f"{SDK}/consumer.(*defaultConsumer).shutdown.func1", f"{OURS}.settle") + FAILED
    assert not go_race.verdict(out, 1)[0]


def test_another_failure_next_to_the_sdks_race_fails() -> None:
    lost = "    consumer_close_test.go:80: 3 messages lost\n"
    other = FAILED.replace("    testing.go:1712: race", lost + "    testing.go:1712: race")
    ok, why = go_race.verdict(SDK_RACE + other, 1)
    assert not ok and "3 messages lost" in why
    assert not go_race.verdict(SDK_RACE + "panic: send on closed channel\n" + FAILED, 1)[0]


def test_a_failure_without_a_race_report_fails() -> None:
    assert not go_race.verdict(FAILED.replace("race detected during execution of test", "boom"), 1)[0]
    assert not go_race.verdict("# github.com/rmq-native/rmq_native/go\n./x.go:1:1: syntax error\n", 2)[0]
