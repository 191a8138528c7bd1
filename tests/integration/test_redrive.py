"""Re-drives: a lost PlaceOrder still runs, once; a view that missed an event catches up."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import orjson
import pytest

from ordersaga.config.settings import Settings
from ordersaga.ops.audit import read_table
from ordersaga.schemas.messages import Address, OrderLine, PlaceOrder
from ordersaga.tables import SAGAS
from ordersaga.web.intake import OrderIntake
from ordersaga.web.orders import accepted_record
from ordersaga.web.read_model import ViewStore
from ordersaga.web.redis_keys import ACCEPTED, OPEN, ORDER
from tests.integration.conftest import System
from tests.integration.support import (
    ADDRESS,
    final,
    history,
    new_sku,
    order_body,
    place,
    stock,
    wait_for,
)

pytestmark = pytest.mark.integration


@asynccontextmanager
async def view_store(system: System) -> AsyncIterator[ViewStore]:
    """The running system's view store, closed on exit."""
    store = ViewStore.from_url(system.redis_url, finished_ttl_s=60)
    try:
        yield store
    finally:
        await store.close()


def accept_without_sending(system: System, command: PlaceOrder, accepted_at: float) -> bool:
    """Do what the HTTP edge does for an order, except the send (as if it was lost)."""

    async def go() -> bool:
        async with view_store(system) as store:
            intake = OrderIntake(store.redis)
            body = command.model_dump(mode="json")
            await intake.remember_accepted(
                command.order_id, accepted_record(command, accepted_at).body(), 60
            )
            return await intake.await_confirmation(
                command.order_id, body, accepted_at, redrive_at=accepted_at + 0.5
            )

    return asyncio.run(go())


async def forget_accepted(system: System, order_id: str) -> None:
    async with view_store(system) as store:
        await store.redis.delete(ACCEPTED + order_id)


def place_order(sku: str, quantity: int) -> PlaceOrder:
    return PlaceOrder(
        order_id=f"ord_redrive{uuid.uuid4().hex[:12]}",
        customer_id="cust-redrive",
        items=(OrderLine(sku=sku, quantity=quantity),),
        payment_token="tok_visa",
        shipping_address=Address.model_validate(ADDRESS),
    )


def webview_counter(system: System, name: str) -> float:
    """A counter of the (only) webview worker, read from its /metrics page."""
    text = httpx.get(f"http://127.0.0.1:{system.web_port}/metrics").text
    [line] = [line for line in text.splitlines() if line.startswith(name + " ")]
    return float(line.split()[1])


def sagas(system: System) -> dict[str, Any]:
    return asyncio.run(read_table(system.bootstrap, SAGAS))


def test_a_lost_place_order_is_sent_again_and_runs_once(
    system: System, client: httpx.Client
) -> None:
    sku = new_sku(client, 10, 300)
    command = place_order(sku, 2)
    assert accept_without_sending(system, command, time.time())

    order = final(client, command.order_id)

    assert order["status"] == "COMPLETED"
    assert history(client, command.order_id).count("OrderPlaced") == 1

    # The commit nobody awaits reaches the shelf just after the order completes.
    def levels() -> tuple[int, int, int]:
        found = stock(client, sku)
        return found["available"], found["reserved"], found["committed"]

    wait_for(lambda: levels() == (8, 0, 2))
    assert webview_counter(system, "ordersaga_orders_redriven_total") >= 1


def test_an_order_accepted_before_the_window_is_not_sent(
    system: System, client: httpx.Client
) -> None:
    # The orchestrator could have run and forgotten an order this old: not sent again.
    sku = new_sku(client, 10, 300)
    command = place_order(sku, 1)
    window = Settings(retention_s=6).redrive_window_s  # the session's retention
    given_up = webview_counter(system, "ordersaga_orders_unstarted_total")
    assert accept_without_sending(system, command, time.time() - window - 1)

    time.sleep(4)

    assert command.order_id not in sagas(system)
    assert client.get(f"/orders/{command.order_id}/events").json()["events"] == []
    assert stock(client, sku)["available"] == 10
    assert webview_counter(system, "ordersaga_orders_unstarted_total") == given_up + 1
    # The audit rightly reports an accepted order that never ran; this one was made
    # up by the test, so it goes before the audit test runs.
    asyncio.run(forget_accepted(system, command.order_id))


def test_a_view_that_missed_its_last_event_gets_it_again(
    system: System, client: httpx.Client
) -> None:
    sku = new_sku(client, 10, 300)
    order_id = place(client, order_body([(sku, 1)]))
    assert final(client, order_id)["status"] == "COMPLETED"
    # Every event the orchestrator published is projected: only a refresh can heal now.
    wait_for(
        lambda: (
            client.get(f"/orders/{order_id}").json()["events_seen"]
            == sagas(system)[order_id]["seq"]
        ),
        5,
    )

    # As if the web view had skipped every event after OrderPlaced (and had waited
    # long enough to ask): the saga is still in the table, the retention is 6 s.
    async def roll_back_view() -> None:
        async with view_store(system) as store:
            view = await store.order(order_id)
            assert view is not None
            stale = {**view["order"], "status": "PENDING"}
            await store.redis.hset(
                ORDER + order_id, mapping={"seq": 1, "order": orjson.dumps(stale)}
            )
            await store.redis.zadd(OPEN, {order_id: time.time()})

    asyncio.run(roll_back_view())
    assert client.get(f"/orders/{order_id}").json()["status"] == "PENDING"

    wait_for(lambda: client.get(f"/orders/{order_id}").json()["status"] == "COMPLETED", 5)
