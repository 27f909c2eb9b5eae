"""asyncio: await sends, `async for` over messages; the event loop never blocks."""

import asyncio
import os

from rmq_native import Admin, aio, devbroker


async def main() -> None:
    name_server = os.environ.get("RMQ_NAMESRV") or devbroker.start()
    topic = "example-asyncio"
    with Admin(name_server) as admin:
        admin.create_topic(topic)
    async with aio.Producer(name_server) as producer:
        results = await asyncio.gather(*(producer.send(topic, f"hello {i}") for i in range(10)))
        print(f"sent {len(results)} messages")
    async with aio.Consumer(name_server, "example-asyncio-group", topic, from_where="first") as consumer:
        count = 0
        async for msg in consumer.messages(timeout=10):
            count += 1
            if count == 10:
                msg.ack()  # handled: break alone would have it redelivered
                break
        print(f"received {count} messages")


asyncio.run(main())
