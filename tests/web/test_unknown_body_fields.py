"""The HTTP edge stays strict while topics read leniently: an unknown body field is a 422.

Readers of topics ignore fields they do not know (a newer producer may have added
them); a client's request is no such producer, and a field the API does not
declare is its mistake, named back to it. ``items`` and ``shipping_address`` of
an order are message parts (OrderLine, Address) and stay as strict as the rest.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.harness import JSON, ORDER_ID, order_body


def with_field(path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    body = order_body()
    where: Any = body
    for step in path[:-1]:
        where = where[step]
    where[path[-1]] = value
    return body


@pytest.mark.parametrize(
    ("path", "field"),
    [
        (("gift_note",), "gift_note"),
        (("items", 0, "gift_wrap"), "items[0].gift_wrap"),
        (("shipping_address", "floor"), "shipping_address.floor"),
    ],
)
async def test_an_order_with_a_field_the_api_does_not_declare_is_422_naming_it(
    client, outbox, path, field
):
    resp = await client.post("/orders", json=with_field(path, "x"))
    assert resp.status == 422
    answer = await resp.json()
    assert answer["problems"][0]["field"] == field
    assert answer["problems"][0]["type"] == "extra_forbidden"
    assert outbox.sent == []


@pytest.mark.parametrize(
    ("target", "body", "field"),
    [
        (
            "/customers",
            {"customer_id": "cust-9", "name": "Ada", "email": "ada@example.com", "vip": True},
            "vip",
        ),
        ("/inventory/SKU-A/restock", {"quantity": 1, "unit_price": 100, "bin": "A7"}, "bin"),
        (f"/orders/{ORDER_ID}/cancel", {"reason": "changed my mind"}, "reason"),
    ],
)
async def test_every_body_refuses_a_field_it_does_not_declare(client, outbox, target, body, field):
    resp = await client.post(target, json=body, headers=JSON)
    assert resp.status == 422
    answer = await resp.json()
    assert [(p["field"], p["type"]) for p in answer["problems"]] == [(field, "extra_forbidden")]
    assert outbox.sent == []
