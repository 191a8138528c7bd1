"""``encode`` writes the envelope directly; it must write what the validated envelope would."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from ordersaga.schemas.bounds import MAX_EVENT_ID_LENGTH
from ordersaga.schemas.messages import (
    Address,
    ChargePayment,
    Message,
    OrderLine,
    PlaceOrder,
    PrepareShipment,
    ReserveStock,
)
from ordersaga.shell import codec
from ordersaga.shell.codec import decode, encode

LINE = OrderLine(sku="sku-1", quantity=2)
ADDRESS = Address(name="Ada", line1="1 Main St", city="Paris", postal_code="75001", country="FR")
MESSAGES: list[Message] = [
    ChargePayment(order_id="ord-1", customer_id="cust-1", payment_token="tok_ok", amount=990),
    PrepareShipment(order_id="ord-1", address=ADDRESS, items=(LINE,)),
    ReserveStock(order_id="ord-1", items=(LINE, OrderLine(sku="sku-2", quantity=1))),
    PlaceOrder(
        order_id="ord-1",
        customer_id="cust-1",
        items=(LINE,),
        payment_token="tok_ok",
        shipping_address=ADDRESS,
    ),
]


def without_time(value: bytes) -> dict[str, Any]:
    raw = orjson.loads(value)
    assert raw.pop("occurred_at").endswith("Z")
    return dict(raw)


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: type(m).__name__)
def test_the_direct_envelope_is_the_validated_one(message: Message) -> None:
    ids = {"key": "ord-1", "correlation_id": "corr-1", "causation_id": "evt-0", "event_id": "e1"}
    fast = encode(message, **ids)
    slow = codec._encode_validated(message, "ord-1", "corr-1", "evt-0", "e1")
    assert without_time(fast.value) == without_time(slow.value)
    # Same fields, in the same order, as the model writes them.
    assert list(orjson.loads(fast.value)) == list(orjson.loads(slow.value))
    assert fast.headers == slow.headers and fast.key == slow.key
    envelope, decoded = decode(fast.value, fast.headers)
    assert decoded == message and envelope.event_id == "e1" and envelope.causation_id == "evt-0"


@pytest.mark.parametrize(
    "ids",
    [
        {"event_id": "e" * (MAX_EVENT_ID_LENGTH + 1)},
        {"event_id": "e1\n"},
        {"correlation_id": "-starts-with-a-dash"},
        {"causation_id": "has space"},
    ],
)
def test_an_id_the_envelope_would_refuse_still_raises(ids: dict[str, str]) -> None:
    given = {"key": "ord-1", "correlation_id": "corr-1", "causation_id": None, "event_id": None}
    given.update(ids)
    with pytest.raises(ValidationError):
        encode(MESSAGES[0], **given)  # type: ignore[arg-type]


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: type(m).__name__)
def test_a_message_whose_headers_name_its_type_is_read_in_one_pass_as_the_long_way_reads_it(
    message: Message,
) -> None:
    encoded = encode(message, key="ord-1", correlation_id="corr-1")
    typed = codec._read_as_typed(encoded.value, encoded.headers, codec.MESSAGE_TYPES)
    assert typed is not None
    long_envelope, long_message = decode(encoded.value, None)  # no headers: the general path
    assert typed[1] == long_message == message
    assert typed[0].event_id == long_envelope.event_id
    assert typed[0].occurred_at == long_envelope.occurred_at


def test_headers_that_disagree_with_the_body_take_the_path_that_says_so() -> None:
    charge = encode(MESSAGES[0], key="ord-1", correlation_id="corr-1")
    shipment = encode(MESSAGES[1], key="ord-1", correlation_id="corr-1")
    lying = [(k, v) for k, v in charge.headers if k != "type"] + [("type", b"PrepareShipment")]
    assert codec._read_as_typed(charge.value, lying, codec.MESSAGE_TYPES) is None
    with pytest.raises(codec.DecodeError, match="type header"):
        decode(charge.value, lying)
    twice = [*shipment.headers, ("type", b"ChargePayment")]
    assert codec._read_as_typed(shipment.value, twice, codec.MESSAGE_TYPES) is None
    with pytest.raises(codec.DecodeError, match="type header"):
        decode(shipment.value, twice)
    newer = [(k, b"2" if k == "version" else v) for k, v in charge.headers]
    assert codec._read_as_typed(charge.value, newer, codec.MESSAGE_TYPES) is None
