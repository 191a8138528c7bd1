"""An accepted order whose PlaceOrder never reached the orchestrator still runs, once."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx
import pytest

from ordersaga.app.settings import Settings
from ordersaga.ops.audit import read_table
from ordersaga.schemas.messages import Address, OrderLine, PlaceOrder
from ordersaga.web.routes import accepted_record
from ordersaga.web.store import ViewStore
from tests.integration.conftest import System
from tests.integration.support import ADDRESS, final, history, new_sku, stock

pytestmark = pytest.mark.integration


def accept_without_sending(system: System, command: PlaceOrder, accepted_at: float) -> bool:
    """Do what the HTTP edge does for an order, except the send (as if it was lost)."""

    async def go() -> bool:
        store = ViewStore.from_url(system.redis_url, finished_ttl_s=60)
        try:
            body = command.model_dump(mode="json")
            await store.remember_accepted(
                command.order_id, accepted_record(command, accepted_at), 60
            )
            return await store.await_confirmation(
                command.order_id, body, accepted_at, redrive_at=accepted_at + 0.5
            )
        finally:
            await store.close()

    return asyncio.run(go())


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
    return asyncio.run(read_table(system.bootstrap, "orders", "sagas"))


def test_a_lost_place_order_is_sent_again_and_runs_once(
    system: System, client: httpx.Client
) -> None:
    sku = new_sku(client, 10, 300)
    command = place_order(sku, 2)
    assert accept_without_sending(system, command, time.time())

    order = final(client, command.order_id)

    assert order["status"] == "COMPLETED"
    assert history(client, command.order_id).count("OrderPlaced") == 1
    levels = stock(client, sku)
    assert (levels["available"], levels["reserved"], levels["committed"]) == (8, 0, 2)
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
