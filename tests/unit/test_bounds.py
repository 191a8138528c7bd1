"""Every bound of the HTTP bodies and the messages: inside is accepted, outside refused."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from ordersaga.edge.http import HttpError
from ordersaga.saga.sku_holds import (
    SKU_BUSY,
    InvalidCommand,
    SkuTotals,
    apply_sku_command,
    restock,
)
from ordersaga.schemas.bounds import (
    MAX_LINE_QUANTITY,
    MAX_LINES,
    MAX_ORDER_TOTAL,
    MAX_STOCK_LEVEL,
    MAX_UNIT_PRICE,
)
from ordersaga.schemas.http import PlaceOrderBody, RestockBody
from ordersaga.schemas.messages import (
    Address,
    ChargePayment,
    Envelope,
    RestockSku,
    SkuCommand,
    StockReserved,
)
from ordersaga.web.errors import parse_body
from tests.unit.test_inventory_rules import SKU, cmd, stocked

ADDRESS = {
    "name": "Ada",
    "line1": "1 Loop Rd",
    "city": "London",
    "postal_code": "N1",
    "country": "GB",
}


def order(**changes: object) -> dict[str, object]:
    body: dict[str, object] = {
        "customer_id": "c-42",
        "items": [{"sku": "book", "quantity": 1}],
        "payment_token": "tok_visa",
        "shipping_address": ADDRESS,
    }
    body.update(changes)
    return body


def problem_fields(body: dict[str, object]) -> list[str]:
    with pytest.raises(HttpError) as caught:
        parse_body(PlaceOrderBody, json.dumps(body).encode(), 1 << 20)
    assert caught.value.status == 422
    return [p["field"] for p in caught.value.body["problems"]]


def test_a_plain_order_is_accepted():
    assert parse_body(PlaceOrderBody, json.dumps(order()).encode(), 1 << 20).customer_id == "c-42"


def test_the_largest_possible_total_fits_64_bits_and_json_integers():
    assert MAX_ORDER_TOTAL == MAX_LINES * MAX_LINE_QUANTITY * MAX_UNIT_PRICE
    assert MAX_ORDER_TOTAL < 2**53 < 2**63


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"customer_id": ""}, "customer_id"),
        ({"customer_id": "c" * 65}, "customer_id"),
        ({"customer_id": "c\x00d"}, "customer_id"),
        ({"customer_id": "c 1"}, "customer_id"),
        ({"payment_token": "t" * 65}, "payment_token"),
        ({"items": []}, "items"),
        ({"items": [{"sku": f"s{i}", "quantity": 1} for i in range(MAX_LINES + 1)]}, "items"),
        ({"items": [{"sku": ".", "quantity": 1}]}, "items[0].sku"),
        ({"items": [{"sku": "..", "quantity": 1}]}, "items[0].sku"),
        ({"items": [{"sku": "book", "quantity": 0}]}, "items[0].quantity"),
        ({"items": [{"sku": "book", "quantity": MAX_LINE_QUANTITY + 1}]}, "items[0].quantity"),
        ({"items": [{"sku": "book", "quantity": 10**23}]}, "items[0].quantity"),
        ({"items": [{"sku": "book", "quantity": 1.0}]}, "items[0].quantity"),
        ({"items": [{"sku": "book", "quantity": True}]}, "items[0].quantity"),
        (
            {"items": [{"sku": "book", "quantity": 6000}, {"sku": "book", "quantity": 6000}]},
            "items",
        ),
        ({"shipping_address": {**ADDRESS, "name": "   "}}, "shipping_address.name"),
        ({"shipping_address": {**ADDRESS, "city": "Lon\ndon"}}, "shipping_address.city"),
        ({"shipping_address": {**ADDRESS, "line1": "x\u202e"}}, "shipping_address.line1"),
        ({"shipping_address": {**ADDRESS, "country": "gb"}}, "shipping_address.country"),
        ({"unit_price": 5}, "unit_price"),
    ],
)
def test_out_of_bounds_fields_are_422_naming_the_field(changes, field):
    assert field in problem_fields(order(**changes))


@pytest.mark.parametrize(
    "raw",
    [
        b'{"quantity": -5, "quantity": 1}',
        b'{"quantity": NaN}',
        b'{"quantity": Infinity}',
        b"[" * 100_000,
        b"\xff\xfe",
    ],
)
def test_json_that_is_not_strict_is_400(raw):
    with pytest.raises(HttpError) as caught:
        parse_body(RestockBody, raw, 1 << 20)
    assert caught.value.status == 400


@pytest.mark.parametrize("price", [0, -1, MAX_UNIT_PRICE + 1, 2**64 - 1, 10**23])
def test_restock_prices_outside_the_bounds_are_refused(price):
    with pytest.raises(HttpError):
        parse_body(RestockBody, json.dumps({"quantity": 1, "unit_price": price}).encode(), 4096)
    with pytest.raises(ValidationError):
        RestockSku(restock_id="r1", sku="book", quantity=1, unit_price=price)


def test_messages_from_another_producer_meet_the_same_bounds():
    with pytest.raises(ValidationError):
        ChargePayment(order_id="o1", customer_id="c1", payment_token="t", amount=2**64 - 1)
    with pytest.raises(ValidationError):
        SkuCommand(op="reserve", order_id="o" * 65, sku="book", quantity=1)
    with pytest.raises(ValidationError):
        StockReserved(order_id="o1", lines=(), total=0)
    with pytest.raises(ValidationError):
        Envelope(event_id="e" * 300, type="X", correlation_id="c", payload={})
    with pytest.raises(ValidationError):
        Address(**{**ADDRESS, "postal_code": "\x00"})


@given(st.text(max_size=80))
def test_free_text_is_accepted_only_without_control_characters_and_not_blank(text):
    try:
        Address(**{**ADDRESS, "name": text})
    except ValidationError:
        ok = False
    else:
        ok = True
    has_control = any(ord(c) < 32 or 0x7F <= ord(c) <= 0x9F for c in text)
    if has_control or not text.strip():
        assert not ok


def test_a_reservation_past_the_hold_bound_is_refused_and_remembered_by_no_one():
    totals = SkuTotals()
    record = restock(
        None, totals, RestockSku(restock_id="r", sku="book", quantity=100, unit_price=5)
    )
    for i in range(3):
        hold, result = apply_sku_command(
            record,
            totals,
            None,
            SkuCommand(op="reserve", order_id=f"o{i}", sku="book", quantity=1),
            max_holds=3,
        )
        assert hold is not None and result.ok
        totals.count(None, hold)
    hold, result = apply_sku_command(
        record,
        totals,
        None,
        SkuCommand(op="reserve", order_id="o9", sku="book", quantity=1),
        max_holds=3,
    )
    assert (result.ok, result.reason) == (False, SKU_BUSY)
    assert hold is None


def test_a_restock_past_the_stock_level_bound_is_an_invalid_command():
    totals = SkuTotals()
    record = restock(None, totals, RestockSku(restock_id="r", sku="book", quantity=1, unit_price=5))
    record = record.model_copy(update={"put_in": MAX_STOCK_LEVEL})
    with pytest.raises(InvalidCommand):
        restock(record, totals, RestockSku(restock_id="r2", sku="book", quantity=1))


def test_refused_reservations_never_make_a_sku_busy_for_another_order() -> None:
    # Given a SKU with 5 on the shelf and a bound of 3 orders holding it at once
    sku = stocked(5)
    # When one customer's orders are refused out of stock again and again
    for i in range(50):
        refused = sku.apply(cmd("reserve", 6, order_id=f"greedy-{i}"), max_holds=3)
        assert (refused.ok, refused.reason) == (False, "out_of_stock")
    # Then another order for 1 unit is served, not refused as busy
    assert sku.apply(cmd("reserve", 1, order_id="someone-else"), max_holds=3).ok
    assert sku.totals.holds == 1
    # And every refusal still refuses its own late duplicate after a restock
    sku.restock(RestockSku(restock_id="more", sku=SKU, quantity=100))
    assert sku.apply(cmd("reserve", 6, order_id="greedy-0"), max_holds=3).reason == "out_of_stock"


def test_released_and_committed_orders_never_make_a_sku_busy() -> None:
    # Given orders that reserved and were cancelled, and orders that completed
    sku = stocked(50)
    for i in range(10):
        assert sku.apply(cmd("reserve", 1, order_id=f"cancelled-{i}"), max_holds=3).ok
        assert sku.apply(cmd("release", 1, order_id=f"cancelled-{i}"), max_holds=3).ok
        assert sku.apply(cmd("reserve", 1, order_id=f"sold-{i}"), max_holds=3).ok
        assert sku.apply(cmd("commit", 1, order_id=f"sold-{i}"), max_holds=3).ok
    # Then only reservations held now count: the SKU is not busy
    assert sku.totals.holds == 0
    assert sku.apply(cmd("reserve", 1, order_id="someone-else"), max_holds=3).ok


def test_early_releases_leave_tombstones_that_refuse_their_late_reserve() -> None:
    sku = stocked(5)
    for i in range(10):
        assert sku.apply(cmd("release", 1, order_id=f"ghost-{i}"), max_holds=3).ok
    assert sku.apply(cmd("reserve", 1, order_id="real"), max_holds=3).ok
    assert sku.apply(cmd("reserve", 1, order_id="ghost-9"), max_holds=3).reason == "released"


def test_as_many_live_reservations_as_the_bound_make_the_sku_busy() -> None:
    sku = stocked(5)
    for i in range(3):
        assert sku.apply(cmd("reserve", 1, order_id=f"o{i}"), max_holds=3).ok
    assert sku.apply(cmd("reserve", 1, order_id="o9"), max_holds=3).reason == SKU_BUSY
    # one of them ending makes room again
    assert sku.apply(cmd("release", 1, order_id="o0"), max_holds=3).ok
    assert sku.apply(cmd("reserve", 1, order_id="o9"), max_holds=3).ok
