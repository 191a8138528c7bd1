"""Finished orders leave the tables after the retention period; the web view keeps them."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from ordersaga.ops.audit import read_table, stock_with_holds
from ordersaga.tables import (
    NOTIFIED,
    ORDER_STOCK,
    PAYMENT_LEDGER,
    SAGAS,
    SHIPMENTS,
    SKU_HOLDS,
    STOCK,
)
from tests.integration.conftest import System
from tests.integration.support import final, new_sku, order_body, place, wait_for

pytestmark = pytest.mark.integration


def test_a_finished_order_is_forgotten_by_every_group(system: System, client: httpx.Client) -> None:
    sku = new_sku(client, 10, 400)
    body = order_body([(sku, 3)], customer="cust-retention")
    completed = place(client, body, **{"Idempotency-Key": f"retention-{sku}"})
    declined = place(client, order_body([(sku, 2)], token="tok_decline"))
    assert final(client, completed)["status"] == "COMPLETED"
    assert final(client, declined)["status"] == "FAILED"

    def tables() -> dict[str, dict]:  # type: ignore[type-arg]
        async def read() -> dict[str, dict]:  # type: ignore[type-arg]
            deleted: set[str] = set()
            found = {
                "sagas": await read_table(system.bootstrap, SAGAS, deleted),
                "order_stock": await read_table(system.bootstrap, ORDER_STOCK),
                "stock": stock_with_holds(
                    await read_table(system.bootstrap, STOCK),
                    await read_table(system.bootstrap, SKU_HOLDS),
                ),
                "ledger": await read_table(system.bootstrap, PAYMENT_LEDGER),
                "shipments": await read_table(system.bootstrap, SHIPMENTS),
                "notified": await read_table(system.bootstrap, NOTIFIED),
            }
            found["deleted"] = dict.fromkeys(deleted)
            return found

        return asyncio.run(read())

    # Before the retention period is over, every group still remembers both orders.
    now = tables()
    assert {completed, declined} <= now["sagas"].keys()
    assert {completed, declined} <= now["stock"][sku]["holds"].keys()

    def forgotten() -> dict[str, dict] | None:  # type: ignore[type-arg]
        t = tables()
        holds = t["stock"][sku]["holds"]
        gone = all(
            order_id not in t[name] and order_id not in holds
            for order_id in (completed, declined)
            for name in ("sagas", "order_stock", "ledger", "shipments", "notified")
        )
        return t if gone else None

    t = wait_for(forgotten, timeout=60, interval=1)
    assert {completed, declined} <= t["deleted"].keys()
    record = t["stock"][sku]
    # The levels did not move: 3 stay committed, now outside any hold.
    assert (record["available"], record["reserved"], record["committed"]) == (7, 0, 3)
    assert record["forgotten_committed"] == 3
    # The web view answers from Redis, which keeps finished orders for its own TTL.
    assert client.get(f"/orders/{completed}").json()["status"] == "COMPLETED"
    metrics = httpx.get(f"http://127.0.0.1:{system.web_port + 1}/metrics").text
    assert 'ordersaga_entries_forgotten_total{table="sagas"}' in metrics

    # A client retrying the POST now gets the same order, and it does not run again
    # although the orchestrator has forgotten it.
    assert place(client, body, **{"Idempotency-Key": f"retention-{sku}"}) == completed
    time.sleep(3)
    again = tables()
    assert completed not in again["sagas"]
    assert again["stock"][sku]["available"] == 7
