"""The shell's log context: every line a handled message causes carries its ids."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from ordersaga.agents import shipping
from ordersaga.observability.log_format import ContextFilter, current
from ordersaga.schemas.messages import PrepareShipment
from ordersaga.shell.codec import encode
from ordersaga.shell.topics import SHIPPING_COMMANDS
from tests.harness import ADDRESS, ITEMS, ORDER_ID


@pytest.fixture
def stamped(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """caplog with the worker's context filter on its handler, as the worker's handler has."""
    context = ContextFilter("shipping", "shipping@6070:1")
    caplog.handler.addFilter(context)
    caplog.set_level(logging.INFO)
    try:
        yield caplog
    finally:
        caplog.handler.removeFilter(context)


async def test_the_line_a_handled_command_logs_carries_the_orders_ids_and_where_it_was_read(
    drive, capture, stamped: pytest.LogCaptureFixture
) -> None:
    capture(shipping.node)
    command = PrepareShipment(order_id=ORDER_ID, address=ADDRESS, items=ITEMS)
    async with drive(shipping.ship_orders, shipping.node) as d:
        fed = await d.put(command, key=ORDER_ID, topic=SHIPPING_COMMANDS, correlation_id="cor_t")

    [line] = [r for r in stamped.records if r.getMessage() == "PrepareShipment -> ShipmentPrepared"]
    ids = {k: line.__dict__.get(k) for k in ("order_id", "correlation_id", "event_id", "topic")}
    assert ids == {
        "order_id": ORDER_ID,
        "correlation_id": "cor_t",
        "event_id": dict(fed.headers)["event_id"].decode(),
        "topic": SHIPPING_COMMANDS,
    }
    assert isinstance(line.__dict__["offset"], int)
    # Bound only while the message is handled.
    assert current() == {}


async def test_a_message_that_cannot_be_read_is_dead_lettered_under_its_envelopes_ids(
    drive, capture, stamped: pytest.LogCaptureFixture
) -> None:
    capture(shipping.node)
    good = encode(
        PrepareShipment(order_id=ORDER_ID, address=ADDRESS, items=ITEMS),
        key=ORDER_ID,
        correlation_id="cor_bad",
    )
    broken = good.value.replace(b'"country":"FR"', b'"country":7')
    assert broken != good.value
    async with drive(shipping.ship_orders, shipping.node) as d:
        await d.put_raw(broken, key=ORDER_ID, topic=SHIPPING_COMMANDS, headers=good.headers)

    [line] = [r for r in stamped.records if r.getMessage().startswith("dead-lettered")]
    assert (line.__dict__["order_id"], line.__dict__["correlation_id"]) == (ORDER_ID, "cor_bad")
    assert line.__dict__["topic"] == SHIPPING_COMMANDS
