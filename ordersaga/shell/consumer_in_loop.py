"""Faust's aiokafka consumer runs in the worker's own event loop, not in a thread of its own.

A patch of Faust like those of ``ordersaga.shell.patches`` (which applies it),
kept in a module of its own. Faust moved its consumer into a thread so that
heartbeats go on while an agent blocks the loop (robinhood/faust#231); no agent
here blocks: every handler awaits its I/O. The thread costs instead: each fetch,
seek and commit is a call across threads (a queue, a future and a wake-up each
way, and the GIL handed over twice), and the thread keeps an event loop of its
own. Run in the worker's loop, the same ``AIOKafkaConsumerThread`` service does
the same work with direct awaits: the system's CPU per saga fell 8% with both
variants running at once and 16% in alternated runs at ``make bench``'s
settings (BENCHMARKS.md, issue 21, sixth steps).

What stays as it was: the service's start and stop order, its method queue, the
rebalance callbacks (which go through the consumer's method queue, in the same
loop now), and aiokafka's own tasks (heartbeat, fetcher, coordinator), which
aiokafka stops with the consumer. ``ORDERSAGA_CONSUMER_IN_LOOP=false`` puts
Faust's thread back.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from mode import Service
from mode.utils.futures import maybe_async

log = logging.getLogger(__name__)

# How long a stopping consumer may take to leave its group and close.
_STOP_TIMEOUT_S = 30.0


async def _start(self: Any) -> None:
    # ServiceThread.start without the thread: serve in this loop, and return once
    # the service has started (or raise what it crashed with).
    assert not self._thread_started.is_set()
    self._thread_started.set()
    self._thread_running = asyncio.Future(loop=self.parent_loop)
    try:
        # No WorkerThread: ServiceThread.stop, replaced below, was its only user.
        self._serving = asyncio.ensure_future(self._serve())
        if not self.should_stop:
            await self._thread_running
    finally:
        self._thread_running = None


async def _stop(self: Any) -> None:
    if not self._started.is_set():
        return
    await Service.stop(self)
    serving = getattr(self, "_serving", None)
    if serving is not None:
        try:
            await asyncio.wait_for(asyncio.shield(serving), _STOP_TIMEOUT_S)
        except TimeoutError:
            log.warning("the consumer took over %.0f s to stop", _STOP_TIMEOUT_S)
        except Exception as exc:  # it crashed on the way out: already logged by mode
            log.debug("the consumer stopped with %r", exc)


async def _call_in_loop(self: Any, fun: Any, *args: Any, **kwargs: Any) -> Any:
    return await maybe_async(fun(*args, **kwargs))


async def _no_sweep(self: Any) -> None:
    # ServiceThread cancels every task left in its thread's loop when it stops;
    # in the worker's loop those are the worker's own tasks.
    return None


def consume_in_the_loop() -> None:
    """Run every Faust aiokafka consumer of this process in the worker's loop (once)."""
    from faust.transport.drivers import aiokafka as driver

    thread_class: Any = driver.AIOKafkaConsumerThread
    if getattr(thread_class, "_ordersaga_in_loop", False):
        return
    thread_class._ordersaga_in_loop = True

    def _new_consumer_thread(self: Any) -> Any:
        return thread_class(self, loop=self.loop, thread_loop=self.loop, beacon=self.beacon)

    driver.Consumer._new_consumer_thread = _new_consumer_thread  # type: ignore[method-assign]
    thread_class.start = _start
    thread_class.stop = _stop
    thread_class.call_thread = _call_in_loop
    thread_class._gather_remaining_tasks = _no_sweep
