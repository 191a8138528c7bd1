"""The customers group shell: accounts and the ``validate_customer`` step."""

from __future__ import annotations

import pytest

from ordersaga.agents import customers
from ordersaga.schemas.messages import (
    BlockCustomer,
    CustomerChanged,
    CustomerRejected,
    CustomerValidated,
    RegisterCustomer,
    ValidateCustomer,
)
from ordersaga.shell.topics import CUSTOMERS_COMMANDS, CUSTOMERS_EVENTS, ORDERS_REPLIES
from tests.harness import ORDER_ID, event_id_of

ADA = RegisterCustomer(customer_id="cust-ada", name="Ada Lovelace", email="ada@example.com")


@pytest.fixture
def outbox(capture):
    return capture(customers.node)


def check(customer_id: str = "cust-ada") -> ValidateCustomer:
    return ValidateCustomer(order_id=ORDER_ID, customer_id=customer_id)


async def test_registering_stores_and_publishes_the_account(drive, outbox):
    async with drive(customers.keep_customers, customers.node) as d:
        await d.put(ADA, key="cust-ada", topic=CUSTOMERS_COMMANDS)

    [changed] = outbox.on(CUSTOMERS_EVENTS)
    assert changed.key == b"cust-ada"
    assert isinstance(changed.message, CustomerChanged)
    assert (changed.message.name, changed.message.blocked, changed.message.version) == (
        "Ada Lovelace",
        False,
        1,
    )
    assert changed.envelope.event_id == "customer:cust-ada:1"
    assert customers.customers.get("cust-ada")["email"] == "ada@example.com"


async def test_a_repeated_registration_publishes_the_same_event_and_writes_nothing(drive, outbox):
    async with drive(customers.keep_customers, customers.node) as d:
        await d.put(ADA, key="cust-ada", topic=CUSTOMERS_COMMANDS)
        stored = customers.customers.get("cust-ada")
        other = ADA.model_copy(update={"name": "Mallory"})
        await d.put(other, key="cust-ada", topic=CUSTOMERS_COMMANDS)

    first, again = outbox.on(CUSTOMERS_EVENTS)
    assert again.envelope.event_id == first.envelope.event_id
    assert again.message == first.message
    assert customers.customers.get("cust-ada") == stored


async def test_the_customer_check_answers_the_orchestrator_keyed_by_order(drive, outbox):
    async with drive(customers.keep_customers, customers.node) as d:
        await d.put(ADA, key="cust-ada", topic=CUSTOMERS_COMMANDS)
        fed = await d.put(check(), key="cust-ada", topic=CUSTOMERS_COMMANDS)
        await d.put(check("cust-nobody"), key="cust-nobody", topic=CUSTOMERS_COMMANDS)
        await d.put(BlockCustomer(customer_id="cust-ada"), key="cust-ada", topic=CUSTOMERS_COMMANDS)
        await d.put(check(), key="cust-ada", topic=CUSTOMERS_COMMANDS)

    valid, unknown, blocked = outbox.on(ORDERS_REPLIES)
    assert valid.key == ORDER_ID.encode()
    assert valid.message == CustomerValidated(order_id=ORDER_ID, customer_id="cust-ada")
    assert valid.envelope.causation_id == event_id_of(fed)
    assert valid.envelope.event_id == f"{event_id_of(fed)}:reply"
    assert unknown.message == CustomerRejected(
        order_id=ORDER_ID, customer_id="cust-nobody", reason="unknown_customer"
    )
    assert blocked.message == CustomerRejected(
        order_id=ORDER_ID, customer_id="cust-ada", reason="blocked"
    )
    # Blocking an unknown customer creates no account
    assert customers.customers.get("cust-nobody") is None


async def test_a_malformed_message_is_dead_lettered(drive, outbox):
    async with drive(customers.keep_customers, customers.node) as d:
        await d.put_raw(b'{"nope": 1}', key="cust-ada", topic=CUSTOMERS_COMMANDS)
    [dead] = outbox.on(f"{CUSTOMERS_COMMANDS}.dlq")
    assert dead.header("dlq.group") == "customers"
