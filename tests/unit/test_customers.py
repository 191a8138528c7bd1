"""Customer rules: registering, blocking and the saga's first step."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from ordersaga.saga.customers import block, register, validate
from ordersaga.schemas.messages import (
    BlockCustomer,
    CustomerRejected,
    CustomerValidated,
    RegisterCustomer,
    ValidateCustomer,
)

NOW = datetime(2026, 12, 1, tzinfo=UTC)
ADA = RegisterCustomer(customer_id="cust-ada", name="Ada Lovelace", email="ada@example.com")
CHECK = ValidateCustomer(order_id="ord-1", customer_id="cust-ada")


def test_registering_creates_an_account_that_may_order():
    record = register(None, ADA, NOW)
    assert (record.customer_id, record.name, record.email, record.blocked) == (
        "cust-ada",
        "Ada Lovelace",
        "ada@example.com",
        False,
    )
    assert record.version == 1 and record.registered_at == NOW
    assert validate(record, CHECK) == CustomerValidated(order_id="ord-1", customer_id="cust-ada")


def test_the_first_registration_of_an_id_wins():
    first = register(None, ADA, NOW)
    other = ADA.model_copy(update={"name": "Someone Else"})
    assert register(first, other, NOW) is first
    assert register(first, ADA, NOW) is first


def test_an_unknown_customer_is_rejected():
    assert validate(None, CHECK) == CustomerRejected(
        order_id="ord-1", customer_id="cust-ada", reason="unknown_customer"
    )


def test_a_blocked_customer_is_rejected_and_unblocking_lets_it_order_again():
    record = register(None, ADA, NOW)
    blocked = block(record, BlockCustomer(customer_id="cust-ada"))
    assert blocked is not None and blocked.blocked and blocked.version == 2
    assert validate(blocked, CHECK) == CustomerRejected(
        order_id="ord-1", customer_id="cust-ada", reason="blocked"
    )
    # Blocking again changes nothing
    assert block(blocked, BlockCustomer(customer_id="cust-ada")) is blocked
    unblocked = block(blocked, BlockCustomer(customer_id="cust-ada", blocked=False))
    assert unblocked is not None and not unblocked.blocked and unblocked.version == 3
    assert isinstance(validate(unblocked, CHECK), CustomerValidated)


def test_blocking_an_unknown_customer_creates_nothing():
    assert block(None, BlockCustomer(customer_id="cust-nobody")) is None


def test_the_changed_event_carries_the_account():
    record = register(None, ADA, NOW)
    event = record.changed_event()
    assert (event.customer_id, event.blocked, event.version) == ("cust-ada", False, 1)
    assert event.routing_key() == "cust-ada"


@pytest.mark.parametrize(
    "email", ["", "ada", "ada@", "@example.com", "ada@example", "a b@example.com", "a@@b.com"]
)
def test_a_malformed_email_is_refused(email):
    with pytest.raises(ValidationError):
        RegisterCustomer(customer_id="c", name="Ada", email=email)


def test_an_email_over_254_characters_is_refused():
    with pytest.raises(ValidationError):
        RegisterCustomer(customer_id="c", name="Ada", email=f"{'a' * 60}@{'b' * 200}.com")
