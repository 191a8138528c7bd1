"""Payments and shipping open what the web view sealed for them, and refuse what they cannot."""

from __future__ import annotations

from pathlib import Path

import redis.asyncio as aioredis
from pydantic import SecretStr

from ordersaga.agents import payments, shipping
from ordersaga.config.settings import Settings
from ordersaga.edge.sealing import OrderSealing, new_key
from ordersaga.schemas.messages import (
    ChargePayment,
    CommandRejected,
    PaymentDeclined,
    PrepareShipment,
    ShipmentRefused,
)
from ordersaga.shell.topics import ORDERS_REPLIES, PAYMENTS_COMMANDS, SHIPPING_COMMANDS
from tests.harness import ADDRESS, CUSTOMER_ID, ITEMS, ORDER_ID, TOTAL

TOKEN_KEY, ADDRESS_KEY = new_key(), new_key()
SEALING = OrderSealing.from_keys(SecretStr(TOKEN_KEY), SecretStr(ADDRESS_KEY))


def keyed(tmp_path: Path, valkey_port: int) -> Settings:
    return Settings(
        data_dir=str(tmp_path / "sealed"),
        gateway_faults=True,
        payment_token_keys=SecretStr(TOKEN_KEY),
        address_keys=SecretStr(ADDRESS_KEY),
        REDIS_URL=f"redis://127.0.0.1:{valkey_port}/2",
    )


async def test_payments_opens_the_token_sealed_for_it(tmp_path, capture, drive, valkey_port):
    built = payments.build(keyed(tmp_path, valkey_port))
    outbox = capture(built.node)
    sealed = SEALING.token(ORDER_ID, "tok_decline")
    charge = ChargePayment(
        order_id=ORDER_ID, customer_id=CUSTOMER_ID, payment_token=sealed, amount=TOTAL
    )
    try:
        async with drive(built.process_payments, built.node) as d:
            await d.put(charge, key=ORDER_ID, topic=PAYMENTS_COMMANDS)
    finally:
        await aioredis.from_url(f"redis://127.0.0.1:{valkey_port}/2").flushdb()
        await built.gateway.redis.aclose()
    # The gateway saw the real token: the decline test token declines.
    assert outbox.messages(ORDERS_REPLIES) == [
        PaymentDeclined(order_id=ORDER_ID, reason="card_declined")
    ]


async def test_a_token_sealed_with_another_key_is_refused_not_charged(capture, drive):
    # The default group holds no key at all.
    outbox = capture(payments.node)
    stranger = OrderSealing.from_keys(SecretStr(new_key()), None)
    charge = ChargePayment(
        order_id=ORDER_ID,
        customer_id=CUSTOMER_ID,
        payment_token=stranger.token(ORDER_ID, "tok_ok"),
        amount=TOTAL,
    )
    async with drive(payments.process_payments, payments.node) as d:
        await d.put(charge, key=ORDER_ID, topic=PAYMENTS_COMMANDS)
    [dead] = outbox.on(f"{PAYMENTS_COMMANDS}.dlq")
    assert "Unsealable" in (dead.header("dlq.error") or "")
    [rejected] = outbox.messages(ORDERS_REPLIES)
    assert isinstance(rejected, CommandRejected) and rejected.command == "ChargePayment"
    assert payments.payment_ledger.get(ORDER_ID) is None


async def test_shipping_opens_the_address_sealed_for_it(tmp_path, capture, drive, valkey_port):
    built = shipping.build(keyed(tmp_path, valkey_port))
    outbox = capture(built.node)
    refused_country = ADDRESS.model_copy(update={"country": "XX"})
    sealed = SEALING.address(ORDER_ID, refused_country.model_dump_json())
    assert sealed is not None
    command = PrepareShipment(order_id=ORDER_ID, address=sealed, items=ITEMS)
    async with drive(built.ship_orders, built.node) as d:
        await d.put(command, key=ORDER_ID, topic=SHIPPING_COMMANDS)
    # The carrier rule saw the real country.
    assert outbox.messages(ORDERS_REPLIES) == [
        ShipmentRefused(order_id=ORDER_ID, reason="carrier does not ship to XX")
    ]
