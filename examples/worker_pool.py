"""Worker threads: one thread receives, a thread pool processes and acknowledges.

ack()/nack() work from any thread and never wait for the receiving thread;
max_inflight bounds how many messages are out at once. Use receive() here:
a messages() loop acknowledges a message when it moves on, before a worker
has finished with it.
"""

import concurrent.futures
import os
import threading
import time

from rmq_native import Admin, Consumer, Message, Producer, devbroker

name_server = os.environ.get("RMQ_NAMESRV") or devbroker.start()
topic = "example-worker-pool"
jobs = 20
with Admin(name_server) as admin:
    admin.create_topic(topic)
with Producer(name_server) as producer:
    for i in range(jobs):
        producer.send(topic, f"job {i}")

done = 0
lock = threading.Lock()


def work(msg: Message) -> None:
    try:
        time.sleep(0.05)  # the real work
    except Exception:
        msg.nack()  # failed: redelivered later
        raise
    msg.ack()
    global done
    with lock:
        done += 1


with Consumer(name_server, "example-worker-pool", topic, from_where="first", max_inflight=8) as consumer, \
        concurrent.futures.ThreadPoolExecutor(4) as pool:
    deadline = time.monotonic() + 60
    while done < jobs and time.monotonic() < deadline:
        msg = consumer.receive(timeout=1)
        if msg is not None:
            pool.submit(work, msg)
    pool.shutdown(wait=True)  # let the workers settle what they hold, then close
print(f"{done} jobs acknowledged by worker threads")
