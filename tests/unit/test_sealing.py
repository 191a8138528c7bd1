"""Sealed payment tokens and addresses: only the key's holder opens them, for that order."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from ordersaga.edge.sealing import (
    OrderSealing,
    Sealer,
    Unsealable,
    address_context,
    new_key,
    open_or_refuse,
    token_context,
)
from ordersaga.schemas.messages import ChargePayment, PlaceOrder, PrepareShipment
from tests.harness import ADDRESS


def sealer(*keys: str) -> Sealer:
    found = Sealer.from_setting(SecretStr(",".join(keys)))
    assert found is not None
    return found


def test_a_sealed_token_opens_for_its_order_and_field_only() -> None:
    key = new_key()
    sealed = sealer(key).seal("tok_visa", token_context("ord_1"))
    assert "tok_visa" not in sealed
    assert sealer(key).open(sealed, token_context("ord_1")) == "tok_visa"
    with pytest.raises(Unsealable, match="another order"):
        sealer(key).open(sealed, token_context("ord_2"))
    with pytest.raises(Unsealable):
        sealer(key).open(sealed, address_context("ord_1"))


def test_another_key_or_an_altered_value_is_refused() -> None:
    sealed = sealer(new_key()).seal("tok_visa", "c")
    with pytest.raises(Unsealable, match="does not hold"):
        sealer(new_key()).open(sealed, "c")
    key = new_key()
    good = sealer(key).seal("tok_visa", "c")
    altered = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")
    with pytest.raises(Unsealable):
        sealer(key).open(altered, "c")


def test_rotation_the_first_key_seals_every_key_opens() -> None:
    old, new = new_key(), new_key()
    sealed_before = sealer(old).seal("tok_a", "c")
    rotated = sealer(new, old)
    assert rotated.open(sealed_before, "c") == "tok_a"
    assert sealer(new).open(rotated.seal("tok_b", "c"), "c") == "tok_b"


def test_clear_values_pass_and_a_sealed_one_without_a_key_is_refused() -> None:
    assert open_or_refuse(None, "tok_visa", "c") == "tok_visa"
    sealed = sealer(new_key()).seal("tok_visa", "c")
    with pytest.raises(Unsealable, match="holds no key"):
        open_or_refuse(None, sealed, "c")


def test_the_sealed_values_are_valid_in_the_messages_that_carry_them() -> None:
    sealing = OrderSealing.from_keys(SecretStr(new_key()), SecretStr(new_key()))
    token = sealing.token("ord_1", "tok_visa")
    address = sealing.address("ord_1", ADDRESS.model_dump_json())
    assert address is not None and "Paris" not in address
    order = PlaceOrder(
        order_id="ord_1",
        customer_id="c",
        items=({"sku": "A", "quantity": 1},),  # type: ignore[arg-type]
        payment_token=token,
        shipping_address=address,
    )
    assert PlaceOrder.model_validate_json(order.model_dump_json()) == order
    ChargePayment(order_id="ord_1", customer_id="c", payment_token=token, amount=1)
    PrepareShipment(order_id="ord_1", address=address, items=order.items)
    unkeyed = OrderSealing.from_keys(None, None)
    assert unkeyed.token("ord_1", "tok_visa") == "tok_visa"
    assert unkeyed.address("ord_1", "{}") is None


def test_a_key_is_32_bytes() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        Sealer.from_setting(SecretStr("c2hvcnQ"))
