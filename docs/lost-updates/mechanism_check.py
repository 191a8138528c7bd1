"""Deterministic check of the flush mechanism (no broker, no kills).

Drives Faust's real ``ProducerBuffer`` with fake messages whose hand-over to the
client (``channel.publish_message``) takes --send-delay seconds, as a real send
does while aiokafka waits for metadata or for room in a full batch. Then calls
``flush()`` -- what ``Consumer._commit_offsets`` awaits before committing -- and
reports how many of the put messages had been handed over when it returned.

  /tmp/probe/bin/python docs/lost-updates/mechanism_check.py          # stock
  FIX=1 /tmp/probe/bin/python docs/lost-updates/mechanism_check.py    # patched
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from types import SimpleNamespace

from faust.transport.producer import ProducerBuffer


class SlowChannel:
    def __init__(self, delay: float, log: list) -> None:
        self.delay, self.log = delay, log

    async def publish_message(self, fut, wait: bool = False):
        await asyncio.sleep(self.delay)
        self.log.append(fut)


async def scenario(n: int, delay: float) -> None:
    handed_over: list = []
    buf = ProducerBuffer()
    buf.app = SimpleNamespace(conf=SimpleNamespace(producer_threaded=False))
    await buf.start()
    try:
        chan = SlowChannel(delay, handed_over)
        for i in range(n):
            buf.put(SimpleNamespace(message=SimpleNamespace(channel=chan), i=i))
        t = time.monotonic()
        await buf.flush()
        took = time.monotonic() - t
        print(
            f"FIX={os.environ.get('FIX', '0')} put={n} send_delay={delay}s: flush() returned "
            f"after {took:.2f}s with {len(handed_over)}/{n} handed to the client, "
            f"{n - len(handed_over)} still unsent (queue size reported: {buf.size})"
        )
    finally:
        # Let the sender hand over the rest before stop(), within a bound. Polled: the
        # fake channel only appends to a list, there is no event to wait on.
        deadline = time.monotonic() + n * delay + 5
        while len(handed_over) < n and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        await buf.stop()


async def main(scenarios: list[tuple[int, float]]) -> None:
    if os.environ.get("FIX") == "1":
        from ordersaga.shell.patches import drain_producer_buffer_before_commit

        drain_producer_buffer_before_commit()
    for n, delay in scenarios:
        await scenario(n, delay)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, help="one scenario: messages put")
    ap.add_argument("--send-delay", type=float, help="one scenario: hand-over time, s")
    a = ap.parse_args()
    if a.n is not None:
        runs = [(a.n, a.send_delay if a.send_delay is not None else 0.3)]
    else:
        runs = [(5, 0.3), (1, 0.3), (5, 0.05)]
    asyncio.run(main(runs))
