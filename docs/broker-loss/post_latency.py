"""How long POST /orders takes while a broker of a three-node cluster is SIGKILLed.

Against a running `ordersaga run --brokers 3` (web view on 127.0.0.1:6066 unless
ORDERSAGA_WEB_PORT says otherwise, auth off): places ``--rate`` orders per second
for ``--seconds``, each with an Idempotency-Key, SIGKILLs one Apache Kafka broker
(the first ``kafka.Kafka`` process found) after ``--kill-at`` seconds, and prints
how the POSTs were answered: status counts, latency percentiles, the slowest, and
how many took longer than 3 s or got no answer within ``--timeout``. Every order
it placed is then looked up until it ended (or ``--settle`` seconds passed).

    python docs/broker-loss/post_latency.py --rate 15 --seconds 60 --kill-at 15
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import time
import uuid

import aiohttp

BODY = {
    "customer_id": "cust-ada",  # registered by `ordersaga run`
    "items": [{"sku": "book", "quantity": 1}],
    "payment_token": "tok_visa",
    "shipping_address": {
        "name": "Ada Lovelace",
        "line1": "12 St James's Square",
        "city": "London",
        "postal_code": "SW1Y 4JH",
        "country": "GB",
    },
}


def a_broker_pid() -> int:
    found = subprocess.run(["pgrep", "-f", "kafka.Kafka"], capture_output=True, text=True)
    pids = [int(p) for p in found.stdout.split()]
    if not pids:
        raise SystemExit("no Apache Kafka broker running (start `ordersaga run --brokers 3`)")
    return pids[0]


async def place(
    session: aiohttp.ClientSession, base: str, timeout: float
) -> tuple[float, str, str]:
    started = time.monotonic()
    headers = {"Content-Type": "application/json", "Idempotency-Key": uuid.uuid4().hex}
    try:
        async with session.post(
            f"{base}/orders", json=BODY, headers=headers, timeout=aiohttp.ClientTimeout(timeout)
        ) as resp:
            body = await resp.json(content_type=None)
            return time.monotonic() - started, str(resp.status), str(body.get("order_id", ""))
    except (TimeoutError, aiohttp.ClientError) as exc:
        return time.monotonic() - started, type(exc).__name__, ""


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=15.0)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--kill-at", type=float, default=15.0)
    parser.add_argument("--timeout", type=float, default=10.0)
    parser.add_argument("--settle", type=float, default=120.0)
    args = parser.parse_args()
    base = f"http://127.0.0.1:{os.environ.get('ORDERSAGA_WEB_PORT', '6066')}"
    async with aiohttp.ClientSession() as session:
        # Stock for every order, so each accepted one can complete.
        restock = {"quantity": int(args.rate * args.seconds) + 10}
        async with session.post(f"{base}/inventory/book/restock", json=restock) as resp:
            print(f"restocked book: {resp.status}")
        await asyncio.sleep(2.0)
        tasks: list[asyncio.Task[tuple[float, str, str]]] = []
        start, killed = time.monotonic(), False
        for i in range(int(args.rate * args.seconds)):
            await asyncio.sleep(max(0.0, start + i / args.rate - time.monotonic()))
            if not killed and time.monotonic() - start >= args.kill_at:
                pid = a_broker_pid()
                os.kill(pid, signal.SIGKILL)
                print(f"SIGKILLed broker pid {pid} at {time.monotonic() - start:.1f} s")
                killed = True
            tasks.append(asyncio.create_task(place(session, base, args.timeout)))
        answers = await asyncio.gather(*tasks)
        latencies = sorted(a[0] for a in answers)
        statuses: dict[str, int] = {}
        for _, status, _ in answers:
            statuses[status] = statuses.get(status, 0) + 1

        def pct(p: float) -> float:
            return latencies[min(len(latencies) - 1, int(p * len(latencies)))]

        print(f"{len(answers)} POSTs: {statuses}")
        print(
            f"latency p50 {pct(0.5) * 1000:.0f} ms, p99 {pct(0.99) * 1000:.0f} ms, "
            f"max {latencies[-1]:.2f} s; over 3 s: {sum(1 for x in latencies if x > 3.0)}"
        )
        ids = {order_id for _, status, order_id in answers if status == "202" and order_id}
        ended: dict[str, str] = {}
        deadline = time.monotonic() + args.settle
        while len(ended) < len(ids) and time.monotonic() < deadline:
            for order_id in ids - set(ended):
                async with session.get(f"{base}/orders/{order_id}") as resp:
                    if resp.status == 200:
                        status = (await resp.json())["order"]["status"]
                        if status in ("COMPLETED", "FAILED", "CANCELLED"):
                            ended[order_id] = status
            await asyncio.sleep(1.0)
        outcome: dict[str, int] = {}
        for status in ended.values():
            outcome[status] = outcome.get(status, 0) + 1
        print(f"{len(ids)} accepted: {outcome}, {len(ids) - len(ended)} not ended")


if __name__ == "__main__":
    asyncio.run(main())
