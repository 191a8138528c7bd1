"""Messages that evolve: what a reader does with a newer or older writer's message.

A newer producer is stood for by a subclass of a message with a field added, encoded
through the real ``encode``: what a newer release's worker would write. Upgraders
are tried on a test-only message type, registered for the test only.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from ordersaga.saga.shipping import ShipmentRecord
from ordersaga.schemas.bounds import Id
from ordersaga.schemas.messages import Address, ChargePayment, Message, OrderLine, PrepareShipment
from ordersaga.shell import codec
from ordersaga.shell.codec import DecodeError, decode, encode
from ordersaga.tables import SHIPMENTS

ADDRESS = Address(name="Ada", line1="1 Main St", city="Paris", postal_code="75001", country="FR")
CHARGE = ChargePayment(order_id="ord-1", customer_id="cust-1", payment_token="tok_ok", amount=990)


class NewerChargePayment(ChargePayment):
    """ChargePayment as a later release writes it: one optional field more, same VERSION."""

    note: str | None = None


class ChargePaymentV2(ChargePayment):
    """A later release that bumped VERSION for an additive change (it need not have)."""

    VERSION = 2
    note: str | None = None


def tampered(value: bytes, change: Any) -> bytes:
    raw = orjson.loads(value)
    change(raw)
    return orjson.dumps(raw)


# -------------------------------------------------------- additive: fields added


def test_an_older_reader_reads_a_newer_writers_message_without_the_field_it_added() -> None:
    newer = encode(
        NewerChargePayment(**CHARGE.model_dump(), note="gift"), key="o", correlation_id="c"
    )
    assert orjson.loads(newer.value)["payload"]["note"] == "gift"  # it is on the wire

    envelope, message = decode(newer.value, newer.headers)
    assert type(message) is ChargePayment and message == CHARGE
    assert envelope.version == 1


def test_a_field_added_to_the_envelope_or_to_a_nested_part_is_ignored_too() -> None:
    prepare = PrepareShipment(
        order_id="ord-1", address=ADDRESS, items=(OrderLine(sku="s-1", quantity=2),)
    )
    encoded = encode(prepare, key="ord-1", correlation_id="c")

    def added(raw: dict[str, Any]) -> None:
        raw["tenant"] = "eu-1"
        raw["payload"]["priority"] = "express"
        raw["payload"]["address"]["floor"] = 3
        raw["payload"]["items"][0]["gift_wrap"] = True

    envelope, message = decode(tampered(encoded.value, added), encoded.headers)
    assert message == prepare and envelope.order_id == "ord-1"


def test_a_newer_version_that_validates_is_read_as_this_one() -> None:
    v2 = encode(ChargePaymentV2(**CHARGE.model_dump(), note="n"), key="o", correlation_id="c")
    assert (v2.headers[1], orjson.loads(v2.value)["version"]) == (("version", b"2"), 2)

    envelope, message = decode(v2.value, v2.headers)
    assert envelope.version == 2 and message == CHARGE


def test_a_newer_version_that_does_not_validate_is_refused_naming_its_version() -> None:
    def renamed(raw: dict[str, Any]) -> None:
        raw["version"] = 3
        raw["payload"]["amount_cents"] = raw["payload"].pop("amount")

    encoded = encode(CHARGE, key="o", correlation_id="c")
    with pytest.raises(DecodeError) as refused:
        decode(tampered(encoded.value, renamed))
    assert str(refused.value) == (
        "unknown version 3 of ChargePayment (this worker reads version 1) "
        "does not read as version 1: amount: Field required"
    )
    assert refused.value.envelope is not None and refused.value.envelope.order_id == "ord-1"


def test_what_is_declared_is_still_read_strictly_beside_an_ignored_field() -> None:
    def coerced(raw: dict[str, Any]) -> None:
        raw["payload"]["note"] = "ignored"
        raw["payload"]["amount"] = "990"

    encoded = encode(CHARGE, key="o", correlation_id="c")
    with pytest.raises(DecodeError, match=r"^bad ChargePayment payload: amount: Input should be"):
        decode(tampered(encoded.value, coerced))


def test_an_ignored_field_is_dropped_not_kept_nor_forwarded() -> None:
    # The record's size is the broker's to bound; what is read keeps none of the junk.
    junk = "x" * 500_000
    encoded = encode(CHARGE, key="o", correlation_id="c")
    value = tampered(encoded.value, lambda raw: raw["payload"].update(junk=junk))

    _, message = decode(value)
    assert "junk" not in message.model_dump() and message.model_extra is None
    again = encode(message, key="o", correlation_id="c")
    assert len(again.value) < 1_000


def test_an_ignored_field_nested_too_deep_is_refused_as_json() -> None:
    encoded = encode(CHARGE, key="o", correlation_id="c")
    deep = b'{"deep":' + b"[" * 5_000 + b"]" * 5_000 + b","
    with pytest.raises(DecodeError, match=r"^not JSON: .*recursion limit"):
        decode(deep + encoded.value[1:])


def test_building_a_message_in_code_still_refuses_an_undeclared_field() -> None:
    # Ignoring is the topic reader's choice: a typo where a message is built is a bug.
    with pytest.raises(ValidationError, match="ammount"):
        ChargePayment(**CHARGE.model_dump(), ammount=5)  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="extra_forbidden"):
        Address.model_validate({**ADDRESS.model_dump(), "floor": 3})


# --------------------------------------------------------- breaking: upgraders


class Parcel(Message):
    """Test only. Version 1 had ``weight_kg`` (a float); version 2 has ``weight_g``."""

    TYPE = "TestParcel"
    VERSION = 2
    order_id: Id
    weight_g: int

    @classmethod
    def upgrade(cls, version: int, payload: dict[str, Any]) -> dict[str, Any] | None:
        if version == 1:
            kg = payload.pop("weight_kg")
            if not isinstance(kg, int | float):
                raise TypeError(f"weight_kg is {type(kg).__name__}")
            return {**payload, "weight_g": round(kg * 1000)}
        return None


class ParcelV3(Parcel):
    """Test only. Version 3 renamed ``order_id`` to ``order``; it reads 2 still, 1 no more."""

    VERSION = 3
    order_id: Id | None = None  # type: ignore[assignment]
    order: Id

    @classmethod
    def upgrade(cls, version: int, payload: dict[str, Any]) -> dict[str, Any] | None:
        if version == 2:
            return {"order": payload.pop("order_id"), **payload}
        return None


class ParcelV1(Message):
    """Test only: what a writer of version 1 wrote."""

    TYPE = "TestParcel"
    order_id: Id
    weight_kg: float


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Makes the codec read ``TestParcel`` as the class given, for this test only."""

    def register(cls: type[Message]) -> None:
        monkeypatch.setitem(codec.MESSAGE_TYPES, cls.TYPE, cls)

    yield register


def test_writers_write_their_classs_version() -> None:
    encoded = encode(Parcel(order_id="ord-1", weight_g=1200), key="ord-1", correlation_id="c")
    assert orjson.loads(encoded.value)["version"] == 2
    assert ("version", b"2") in encoded.headers


def test_an_older_version_is_upgraded_then_validated(registered: Any) -> None:
    registered(Parcel)
    old = encode(ParcelV1(order_id="ord-1", weight_kg=1.25), key="ord-1", correlation_id="c")
    envelope, message = decode(old.value, old.headers)
    assert envelope.version == 1 and message == Parcel(order_id="ord-1", weight_g=1250)

    current = encode(Parcel(order_id="ord-1", weight_g=7), key="ord-1", correlation_id="c")
    assert decode(current.value, current.headers)[1] == Parcel(order_id="ord-1", weight_g=7)


def test_an_older_version_the_upgrade_cannot_read_is_refused_naming_it(registered: Any) -> None:
    registered(Parcel)
    old = encode(ParcelV1(order_id="ord-1", weight_kg=1.0), key="ord-1", correlation_id="c")

    missing = tampered(old.value, lambda raw: raw["payload"].pop("weight_kg"))
    with pytest.raises(DecodeError) as refused:
        decode(missing)
    assert str(refused.value) == (
        "version 1 of TestParcel does not upgrade to version 2: KeyError('weight_kg')"
    )
    assert refused.value.envelope is not None

    as_text = tampered(old.value, lambda raw: raw["payload"].update(weight_kg="1"))
    with pytest.raises(DecodeError, match=r"^version 1 of TestParcel does not upgrade"):
        decode(as_text)

    empty_id = tampered(old.value, lambda raw: raw["payload"].update(order_id=""))
    with pytest.raises(DecodeError, match=r"^bad TestParcel payload upgraded from version 1: "):
        decode(empty_id)


def test_a_version_no_longer_read_is_refused_naming_it(registered: Any) -> None:
    registered(ParcelV3)
    v2 = encode(Parcel(order_id="ord-1", weight_g=5), key="ord-1", correlation_id="c")
    assert decode(v2.value, v2.headers)[1] == ParcelV3(order="ord-1", weight_g=5)

    v1 = encode(ParcelV1(order_id="ord-1", weight_kg=1.0), key="ord-1", correlation_id="c")
    with pytest.raises(DecodeError) as refused:
        decode(v1.value, v1.headers)
    assert str(refused.value) == (
        "version 1 of TestParcel is no longer read (this worker reads version 3)"
    )


class ParcelWithoutUpgrade(Message):
    """Test only: a version bump that forgot its upgrade."""

    TYPE = "TestParcel"
    VERSION = 2
    order_id: Id
    weight_g: int


def test_without_an_upgrade_no_older_version_is_read(registered: Any) -> None:
    registered(ParcelWithoutUpgrade)
    v1 = encode(ParcelV1(order_id="ord-1", weight_kg=1.0), key="ord-1", correlation_id="c")
    with pytest.raises(DecodeError, match=r"^version 1 of TestParcel is no longer read"):
        decode(v1.value, v1.headers)


# ------------------------------------------------------------------ table records


def test_a_table_record_with_a_field_it_does_not_declare_loads_without_it() -> None:
    record = ShipmentRecord(order_id="ord-1", status="prepared", shipment_id="shp-1")
    stored = {**SHIPMENTS.dump(record), "tracking_url": "https://example.test/t/1"}
    assert SHIPMENTS.load(stored) == record
    # What is declared is still checked.
    with pytest.raises(ValidationError):
        SHIPMENTS.load({**stored, "status": "lost"})
