#!/usr/bin/env python3
"""What a burst of asynchronous sends costs in memory, with and without
the producer's back-pressure (``max_pending``; the figure in README.md).

    python -m rmq_native.devbroker start
    python benchmarks/burst.py [--ns 127.0.0.1:9876] [--count 200000]

Each variant runs in a fresh process: ``count`` sends of 1 KiB in a loop,
a done-callback counting outcomes, then ``flush()``; it prints the peak RSS
of the process, the time taken and the outcomes, and writes
benchmarks/results/burst.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

CHILD = r"""
import collections, json, resource, sys, threading, time
from rmq_native import Producer
ns, topic, count, max_pending = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
outcomes, lock = collections.Counter(), threading.Lock()
def done(f):
    e = f.exception()
    with lock:
        outcomes["ok" if e is None else type(e).__name__] += 1
with Producer(ns, max_pending=max_pending) as p:
    p.send(topic, b"warm-up")
    body = b"x" * 1024
    t0 = time.perf_counter()
    for _ in range(count):
        p.send_async(topic, body).add_done_callback(done)
    p.flush()
    took = time.perf_counter() - t0
print(json.dumps({"max_pending": max_pending, "seconds": round(took, 2), "outcomes": dict(outcomes),
                  "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ns", default="127.0.0.1:9876")
    ap.add_argument("--topic", default="BenchBurst")
    ap.add_argument("--count", type=int, default=200_000)
    args = ap.parse_args()
    import rmq_native

    with rmq_native.Admin(args.ns) as admin:  # a fresh dev broker has no such topic
        admin.create_topic(args.topic, 8)
    rows = []
    for max_pending in (1 << 30, 10_000, 1_000):  # no limit, the default, a small one
        out = subprocess.run([sys.executable, "-c", CHILD, args.ns, args.topic, str(args.count), str(max_pending)],
                             capture_output=True, text=True, timeout=600)
        if out.returncode:
            print(out.stderr, file=sys.stderr)
            return 1
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(rows[-1], flush=True)
    path = Path(__file__).parent / "results" / "burst.json"
    path.write_text(json.dumps({"count": args.count, "body_bytes": 1024, "runs": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
