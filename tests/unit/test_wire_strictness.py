"""The pure parts of issue 19's record handling: the strict decoder, dead letters and
their stubs, escaping for the terminal, and the choice and age rules of a DLQ replay."""

from __future__ import annotations

from types import SimpleNamespace

import orjson
import pytest

from ordersaga.ops.dlq import Choice, _age_s, parse_since
from ordersaga.ops.tail import render
from ordersaga.schemas.messages import Address, CancelOrder, OrderLine, PlaceOrder
from ordersaga.shell.codec import DecodeError, decode, encode
from ordersaga.shell.dead_letters import dead_letter, record_size
from ordersaga.shell.printable import printable
from ordersaga.shell.unreadable import UNREADABLE_HEADER

ORDER = PlaceOrder(
    order_id="ord-1",
    customer_id="cust-1",
    items=(OrderLine(sku="sku-1", quantity=5),),
    payment_token="tok_visa",
    shipping_address=Address(
        name="Ada", line1="1 Main St", city="Paris", postal_code="75001", country="FR"
    ),
)
ENCODED = encode(ORDER, key="ord-1", correlation_id="ord-1")


def changed(
    change: dict[str, object] | None = None, payload: dict[str, object] | None = None
) -> bytes:
    raw = orjson.loads(ENCODED.value)
    raw.update(change or {})
    raw["payload"].update(payload or {})
    return orjson.dumps(raw)


def breaking_version_2() -> bytes:
    """A PlaceOrder "version 2" that renamed a required field: a breaking change."""
    raw = orjson.loads(ENCODED.value)
    raw["version"] = 2
    raw["payload"]["token"] = raw["payload"].pop("payment_token")
    return orjson.dumps(raw)


# ----------------------------------------------------------------- the decoder


def test_what_encode_writes_decodes_with_its_own_headers() -> None:
    envelope, message = decode(ENCODED.value, ENCODED.headers)
    assert message == ORDER and envelope.version == PlaceOrder.VERSION


@pytest.mark.parametrize(
    ("value", "headers", "reason"),
    [
        (
            breaking_version_2(),
            None,
            "unknown version 2 of PlaceOrder (this worker reads version 1) does not read "
            "as version 1: payment_token: Field required",
        ),
        (changed({"version": "1"}), None, "bad envelope: version: Input should be a valid integer"),
        (
            ENCODED.value,
            [("type", b"CancelOrder")],
            "type header 'CancelOrder' disagrees with the body's type 'PlaceOrder'",
        ),
        (
            ENCODED.value,
            [("version", b"7")],
            "version header '7' disagrees with the body's version '1'",
        ),
        (
            ENCODED.value,
            [("type", b"\x1b[2J")],
            "type header '\\\\x1b[2J' disagrees",
        ),
        (
            changed(payload={"items": [{"sku": "sku-1", "quantity": "5"}]}),
            None,
            "bad PlaceOrder payload: items.0.quantity: Input should be a valid integer",
        ),
        (
            changed(payload={"items": [{"sku": "sku-1", "quantity": 5.0}]}),
            None,
            "bad PlaceOrder payload: items.0.quantity: Input should be a valid integer",
        ),
        (b"\xff", None, "not JSON"),
    ],
    ids=[
        "version",
        "version-as-text",
        "type-header",
        "version-header",
        "escape",
        "text",
        "float",
        "bytes",
    ],
)
def test_the_decoder_is_strict(value: bytes, headers: list | None, reason: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(DecodeError) as refused:
        decode(value, headers)
    assert str(refused.value).startswith(reason), str(refused.value)


def test_a_refused_message_of_a_known_envelope_still_names_its_order() -> None:
    with pytest.raises(DecodeError) as refused:
        decode(breaking_version_2())
    assert refused.value.envelope is not None and refused.value.envelope.order_id == "ord-1"


def test_messages_with_tuples_datetimes_and_defaults_still_decode() -> None:
    cancel = encode(CancelOrder(order_id="ord-1"), key="ord-1", correlation_id="c")
    assert decode(cancel.value, cancel.headers)[1] == CancelOrder(order_id="ord-1")


# ---------------------------------------------------------------- dead letters


def letter(value: bytes, headers: list, max_bytes: int = 10_000):  # type: ignore[no-untyped-def,type-arg]
    return dead_letter(
        topic="orders.commands",
        partition=3,
        offset=41,
        timestamp_ms=1_700_000_000_000,
        key=b"ord-1",
        value=value,
        headers=headers,
        reason="not JSON: \x1b[31m",
        attempts=1,
        group="orders",
        max_bytes=max_bytes,
    )


def test_a_dead_letter_is_the_record_raw_with_where_it_was_and_why() -> None:
    dead = letter(
        b"\xff raw", [("type", b"PlaceOrder"), ("n\udcffx", b"1"), (UNREADABLE_HEADER, b"r")]
    )
    assert not dead.cut and dead.value == b"\xff raw" and dead.key == b"ord-1"
    headers = dict(dead.headers)
    assert headers["n\\xffx"] == b"1"  # the key's bytes written back escaped, writable
    assert UNREADABLE_HEADER not in headers
    assert headers["dlq.error"] == b"not JSON: \\x1b[31m"
    assert (headers["dlq.topic"], headers["dlq.partition"], headers["dlq.offset"]) == (
        b"orders.commands",
        b"3",
        b"41",
    )
    assert headers["dlq.timestamp"] == b"1700000000000"
    for k, _ in dead.headers:
        k.encode()


def test_a_dead_letter_too_large_is_a_stub_naming_where_the_original_is() -> None:
    value = b"x" * 9_800
    assert record_size(b"ord-1", value, []) < 10_000
    dead = letter(value, [("h", b"y" * 100)])
    assert dead.cut and dead.size <= 10_000
    stub = orjson.loads(dead.value or b"")
    assert (stub["topic"], stub["partition"], stub["offset"]) == ("orders.commands", 3, 41)
    assert stub["size"] == record_size(b"ord-1", value, [("h", b"y" * 100)])
    assert stub["reason"] == "not JSON: \\x1b[31m"
    headers = dict(dead.headers)
    assert int(headers["dlq.cut"]) == stub["size"] and "h" not in headers
    assert headers["dlq.offset"] == b"41"


# ------------------------------------------------------------------ escaping


def test_nothing_a_terminal_acts_on_is_printed_raw() -> None:
    text = printable(b"a\x1b]0;t\x07\x9b\xe2\x80\xae\xff\r\n\t" + "\u2028".encode())
    assert text == "a\\x1b]0;t\\x07\\x9b\\u202e\\xff\\x0d\\x0a\\x09\\u2028"
    assert printable("line\nnext", keep_newlines=True) == "line\nnext"
    assert printable("k\udcff") == "k\\xff"
    assert printable("plain ascii") == "plain ascii"


def test_tail_renders_records_escaped_and_says_why_one_was_unreadable() -> None:
    line = render(
        b"\x1b[2J",
        [("t\udcff\x1b", b"\x07"), (UNREADABLE_HEADER, b"header key is not UTF-8: \\xff")],
        b'{"a": "\\u001b[31m\xc2\x9b"}',
        1,
        7,
    )
    assert line.startswith("p1@7 key=\\x1b[2J [t\\xff\\x1b=\\x07]")
    assert "unreadable: header key is not UTF-8" in line
    assert not [c for c in line if (ord(c) < 0x20 and c != "\n") or 0x7F <= ord(c) < 0xA0]


# -------------------------------------------------------------------- replay


def test_a_replay_must_be_chosen() -> None:
    with pytest.raises(ValueError, match="--id"):
        Choice()
    record = SimpleNamespace(partition=2, offset=9, timestamp=1_000_000)
    assert Choice(ids=frozenset({"2:9"})).takes(record, "ev")
    assert Choice(ids=frozenset({"ev"})).takes(record, "ev")
    assert not Choice(ids=frozenset({"2:8"})).takes(record, "ev")
    assert Choice(since=999.0).takes(record, "ev") and not Choice(since=1001.0).takes(record, "ev")


def test_since_is_a_duration_ago_or_a_time_with_its_zone() -> None:
    assert parse_since("90s", now=1000.0) == 910.0
    assert parse_since("2h", now=10_000.0) == 2_800.0
    assert parse_since("2026-01-01T00:00:00+00:00") == 1767225600.0
    for wrong in ("yesterday", "2026-01-01T00:00:00", "-5m"):
        with pytest.raises(ValueError):
            parse_since(wrong)


def test_a_dead_letters_age_is_its_source_records() -> None:
    parked = SimpleNamespace(timestamp=100_000)
    assert _age_s(parked, {"dlq.timestamp": b"40000"}, now=200.0) == 160.0
    assert _age_s(parked, {}, now=200.0) == 100.0
    assert _age_s(parked, {"dlq.timestamp": b"junk"}, now=200.0) == 100.0
