"""A worker's Kafka consumer is made to run in the worker's own event loop."""

from __future__ import annotations

import asyncio

from ordersaga.agents import shipping
from ordersaga.shell.consumer_in_loop import consume_in_the_loop


async def test_the_consumer_service_serves_in_the_worker_s_loop() -> None:
    consumer = shipping.app.consumer
    service = consumer._thread
    assert service.thread_loop is service.parent_loop is consumer.loop
    # No loop of its own, so none to close when it stops.
    assert service._close_thread_loop_on_stop is False
    # Calls reach the consumer by a plain await, not across threads.
    assert await service.call_thread(asyncio.sleep, 0, result="here") == "here"


async def test_stopping_it_leaves_the_worker_s_other_tasks_running() -> None:
    # Faust's thread cancels every task left in its loop; that loop is the worker's now.
    service = shipping.app.consumer._thread
    bystander = asyncio.ensure_future(asyncio.sleep(0.05, result="still here"))
    await service._gather_remaining_tasks()
    assert await bystander == "still here"


def test_it_is_applied_once_however_often_asked() -> None:
    from faust.transport.drivers import aiokafka as driver

    before = driver.AIOKafkaConsumerThread.start
    consume_in_the_loop()
    assert driver.AIOKafkaConsumerThread.start is before
