"""Low stock on the running system: the flag, one LowStock event per crossing, the notice."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import orjson
import pytest

from ordersaga.ops.tail import read_topic
from tests.integration.conftest import System
from tests.integration.support import final, order_body, place, stock, wait_for

pytestmark = pytest.mark.integration


def test_a_sku_bought_down_to_its_threshold_shows_low_stock_and_one_event(
    system: System, client: httpx.Client
) -> None:
    sku = f"sku-{uuid.uuid4().hex[:10]}"
    r = client.post(
        f"/inventory/{sku}/restock", json={"quantity": 6, "unit_price": 100, "low_stock_at": 2}
    )
    assert r.status_code == 202, r.text
    wait_for(lambda: client.get(f"/inventory/{sku}").status_code == 200)
    assert stock(client, sku)["low_stock"] is False
    # Two orders take it to 3 (above), then 2 (the crossing), a third to 1 (still low)
    for quantity in (3, 1, 1):
        assert final(client, place(client, order_body([(sku, quantity)])))["status"] == "COMPLETED"
    levels = wait_for(lambda: (s := stock(client, sku))["available"] == 1 and s)
    assert (levels["low_stock"], levels["low_stock_at"]) == (True, 2)
    low = client.get("/inventory", params={"low_stock": "true"}).json()["items"]
    assert sku in [item["sku"] for item in low]
    assert sku not in [i["sku"] for i in client.get("/inventory?low_stock=false").json()["items"]]

    def events_of(topic: str, type_name: str) -> list[dict]:  # type: ignore[type-arg]
        records = asyncio.run(read_topic(system.bootstrap, topic))
        out = []
        for record in records:
            if (
                record.key == sku.encode()
                and dict(record.headers).get("type") == type_name.encode()
            ):
                out.append(orjson.loads(record.value))
        return out

    lows = wait_for(lambda: events_of("inventory.alerts", "LowStock"), timeout=20)
    assert len({e["event_id"] for e in lows}) == 1
    assert lows[0]["payload"]["available"] == 2
    notices = wait_for(lambda: events_of("notifications", "OperatorNotified"), timeout=20)
    assert len(notices) == 1 and sku in notices[0]["payload"]["text"]
    # Restocking above the threshold clears the flag
    client.post(f"/inventory/{sku}/restock", json={"quantity": 10})
    assert wait_for(lambda: stock(client, sku)["low_stock"] is False)
    r = client.get("/inventory", params={"low_stock": "maybe"})
    assert r.status_code == 422 and r.json()["problems"][0]["field"] == "low_stock"
