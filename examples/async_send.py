"""Asynchronous sends: futures, thousands in flight, the caller never blocks."""

import concurrent.futures
import os

from rmq_native import Admin, Producer, devbroker

name_server = os.environ.get("RMQ_NAMESRV") or devbroker.start()
with Admin(name_server) as admin:
    admin.create_topic("example-async")

with Producer(name_server) as producer:
    futures = [producer.send_async("example-async", f"event {i}") for i in range(1000)]
    futures[0].add_done_callback(lambda f: print("first one stored:", f.result().msg_id))
    done, _ = concurrent.futures.wait(futures, timeout=60)
    failed = [f for f in done if f.exception()]
    print(f"{len(done) - len(failed)} sent, {len(failed)} failed")
    # a batch: one round trip for many messages of one topic
    result = producer.send_batch("example-async", [f"batched {i}" for i in range(32)])
    print(f"batch of {len(result.msg_ids)} stored")
