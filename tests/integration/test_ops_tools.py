"""The operator tools against the running system: audit, dlq, topics, tail.

Each test makes what it reads (an order, a poison message), so it holds wherever it
runs in the session; the audit covers every order placed before it.
"""

from __future__ import annotations

import asyncio
import subprocess
import uuid

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from tests.integration.conftest import System
from tests.integration.support import final, new_sku, order_body, place, wait_for
from tests.integration.support import ordersaga_cli as ordersaga

pytestmark = pytest.mark.integration


def test_audit_passes_once_the_system_is_idle(system: System, client: httpx.Client) -> None:
    sku = new_sku(client, 3, 700)
    final(client, place(client, order_body([(sku, 1)])))

    def audited() -> subprocess.CompletedProcess[str] | None:
        run = ordersaga(system, "audit")
        return run if run.returncode == 0 else None

    run = wait_for(audited, timeout=60, interval=2)
    verdicts = [line.split()[0] for line in run.stdout.splitlines() if line[:4] in {"PASS", "FAIL"}]
    assert verdicts == ["PASS"] * 6, run.stdout


def test_dlq_list_and_replay(system: System) -> None:
    key = f"poison-ops-{uuid.uuid4().hex[:8]}"

    async def produce() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=system.bootstrap)
        await producer.start()
        try:
            await producer.send_and_wait("orders.commands", b"{not json", key=key.encode())
        finally:
            await producer.stop()

    asyncio.run(produce())

    def listed() -> subprocess.CompletedProcess[str] | None:
        run = ordersaga(system, "dlq", "list", "orders.commands")
        return run if run.returncode == 0 and f"key={key}" in run.stdout else None

    produced = wait_for(listed, timeout=30, interval=1)
    mine = produced.stdout[produced.stdout.index(f"key={key}") :]
    assert "error: " in mine and "not JSON" in mine.split("error: ", 1)[1].splitlines()[0]
    # A replay is chosen (test_abuse_records.py replays one, once, and refuses the old).
    replay = ordersaga(system, "dlq", "replay", "orders.commands.dlq")
    assert replay.returncode == 2
    assert "--id" in replay.stderr and "--since" in replay.stderr


def test_topics_and_tail(system: System, client: httpx.Client) -> None:
    topics = ordersaga(system, "topics")
    assert topics.returncode == 0, topics.stderr
    for name in ("orders.commands", "orders.events", "inventory.sku-commands", "notifications"):
        assert name in topics.stdout.split()
    sku = new_sku(client, 3, 700)
    order_id = place(client, order_body([(sku, 1)]))
    assert final(client, order_id)["status"] == "COMPLETED"
    tail = ordersaga(system, "tail", "orders.events")
    assert tail.returncode == 0, tail.stderr
    # One message is a `p<partition>@<offset> key=...` line and its value below it.
    messages = tail.stdout.split("\np")
    mine = [m for m in messages if f"key={order_id} " in m and "type=OrderEvent" in m]
    assert len(mine) >= 3, tail.stdout[-2000:]
    assert "OrderPlaced" in mine[0] and any("OrderCompleted" in m for m in mine), mine


def test_seed_stocks_the_demo_catalogue_and_registers_the_demo_customers(
    system: System, client: httpx.Client
) -> None:
    # What docker-compose's one-shot `seed` service runs; twice, as a restarted one would.
    for _ in range(2):
        run = ordersaga(system, "seed", "--url", system.base_url)
        assert run.returncode == 0, run.stdout + run.stderr
        assert "customers cust-ada, cust-grace, cust-alan" in run.stdout
    book = client.get("/inventory/book").json()
    assert book["put_in"] == 100, book  # the second seed's restock was the first's, again
    assert client.get("/customers/cust-ada").status_code == 200
