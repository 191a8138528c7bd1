"""Records no layer can read are dead-lettered by ``Node.consume`` and the agent goes on.

The payments agent stands for every group: all of them consume through
``Node.consume``. The records with header keys that are not UTF-8 are read
from real record-batch bytes by aiokafka's own fetcher code (with
``ordersaga.shell.unreadable`` in place), then fed to the agent as Faust hands
them over.
"""

from __future__ import annotations

import orjson
import pytest
from aiokafka.consumer.fetcher import PartitionRecords
from aiokafka.record.default_records import _DefaultRecordBatchBuilderPy
from aiokafka.structs import TopicPartition

from ordersaga.agents import payments
from ordersaga.schemas.messages import ChargePayment, CommandRejected
from ordersaga.shell.codec import encode
from ordersaga.shell.topics import ORDERS_REPLIES, PAYMENTS_COMMANDS
from ordersaga.shell.unreadable import SafeMemoryRecords
from tests.harness import CUSTOMER_ID, ORDER_ID, TOTAL
from tests.unit.test_unreadable_records import RawKey

DLQ = f"{PAYMENTS_COMMANDS}.dlq"


@pytest.fixture
def outbox(capture):
    return capture(payments.node)


def charge(order_id: str = ORDER_ID) -> ChargePayment:
    return ChargePayment(
        order_id=order_id, customer_id=CUSTOMER_ID, payment_token="tok_ok", amount=TOTAL
    )


def fetched(headers: list[tuple[str, bytes]], value: bytes) -> tuple[bytes, list]:
    """One record as the worker's consumer reads it from a fetched batch."""
    builder = _DefaultRecordBatchBuilderPy(
        magic=2,
        compression_type=0,
        is_transactional=0,
        producer_id=-1,
        producer_epoch=-1,
        base_sequence=-1,
        batch_size=1 << 20,
    )
    builder.append(0, None, ORDER_ID.encode(), value, headers)
    parsed = PartitionRecords(
        TopicPartition(PAYMENTS_COMMANDS, 0),
        SafeMemoryRecords(bytes(builder.build())),
        [],
        0,
        None,
        None,
        True,
        0,
    )
    [record] = list(parsed)
    return record.value, list(record.headers)


async def test_a_header_key_that_is_not_utf8_is_dead_lettered_and_the_next_charge_runs(
    drive, outbox
):
    before = _count(payments.node, "record")
    good = encode(charge(), key=ORDER_ID, correlation_id=ORDER_ID)
    value, headers = fetched([*good.headers, (RawKey(b"\xff\x1b[2Jx"), b"v")], good.value)
    async with drive(payments.process_payments, payments.node) as d:
        await d.put_raw(value, key=ORDER_ID, topic=PAYMENTS_COMMANDS, headers=headers)
        await d.put(charge("ord-other"), key="ord-other", topic=PAYMENTS_COMMANDS)

    [dead] = outbox.on(DLQ)
    assert dead.value == good.value and dead.key == ORDER_ID.encode()
    assert dead.header("dlq.error") == "header key is not UTF-8: \\xff\\x1b[2Jx"
    # Written back as text a producer can send, the bytes escaped; no marker leaks.
    assert ("\\xff\\x1b[2Jx", b"v") in dead.headers
    assert all(k.isprintable() for k, _ in dead.headers)
    assert dead.header("type") == "ChargePayment"
    assert [m.order_id for m in outbox.messages(ORDERS_REPLIES)] == ["ord-other"]
    assert _count(payments.node, "record") == before + 1


async def test_a_key_that_is_not_utf8_is_dead_lettered_not_a_crash(drive, outbox):
    before = _count(payments.node, "key")
    good = encode(charge(), key=ORDER_ID, correlation_id=ORDER_ID)
    async with drive(payments.process_payments, payments.node) as d:
        await d.put_raw(good.value, key=b"\xfe\xff", topic=PAYMENTS_COMMANDS, headers=good.headers)  # type: ignore[arg-type]
        await d.put(charge("ord-other"), key="ord-other", topic=PAYMENTS_COMMANDS)

    [dead] = outbox.on(DLQ)
    assert dead.key == b"\xfe\xff" and dead.value == good.value
    assert dead.header("dlq.error") == "key is not UTF-8: \\xfe\\xff"
    assert _count(payments.node, "key") == before + 1
    assert [m.order_id for m in outbox.messages(ORDERS_REPLIES)] == ["ord-other"]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (
            # A version 2 that renamed a required field: a breaking change an old worker
            # cannot read (an additive one it handles, tests/agents/test_rolling_upgrade.py).
            lambda env, hdrs: (
                {**env, "version": 2, "payload": {**env["payload"], "amount": None}},
                [(k, b"2" if k == "version" else v) for k, v in hdrs],
            ),
            "unknown version 2 of ChargePayment (this worker reads version 1)",
        ),
        (
            lambda env, hdrs: (env, [("type", b"RefundPayment"), *hdrs[1:]]),
            "type header 'RefundPayment' disagrees with the body's type 'ChargePayment'",
        ),
        (
            lambda env, hdrs: ({**env, "payload": {**env["payload"], "amount": str(TOTAL)}}, hdrs),
            "bad ChargePayment payload: amount: Input should be a valid integer",
        ),
    ],
    ids=["version", "type-header", "string-for-int"],
)
async def test_an_envelope_read_strictly_is_refused_with_its_reason(drive, outbox, change, reason):
    before = _count(payments.node, "envelope")
    good = encode(charge(), key=ORDER_ID, correlation_id=ORDER_ID)
    envelope, headers = change(orjson.loads(good.value), good.headers)
    value = orjson.dumps(envelope)
    async with drive(payments.process_payments, payments.node) as d:
        await d.put_raw(value, key=ORDER_ID, topic=PAYMENTS_COMMANDS, headers=headers)

    [dead] = outbox.on(DLQ)
    assert dead.value == value
    assert dead.header("dlq.error").startswith(reason), dead.header("dlq.error")
    # The saga is told at once that its command can never be applied.
    [rejected] = outbox.messages(ORDERS_REPLIES)
    assert isinstance(rejected, CommandRejected) and rejected.order_id == ORDER_ID
    assert payments.payment_ledger.get(ORDER_ID) is None
    assert _count(payments.node, "envelope") == before + 1


async def test_a_dead_letter_too_large_for_the_producer_is_cut_to_a_stub(drive, outbox):
    limit = payments.node.dead_letter_max_bytes
    value = b"x" * (limit - 200)  # fits alone, not with the dlq.* headers added
    async with drive(payments.process_payments, payments.node) as d:
        await d.put_raw(value, key=ORDER_ID, topic=PAYMENTS_COMMANDS, headers=[("h", b"1" * 300)])
        await d.put(charge("ord-other"), key="ord-other", topic=PAYMENTS_COMMANDS)

    [dead] = outbox.on(DLQ)
    stub = orjson.loads(dead.value)
    assert stub["topic"] == PAYMENTS_COMMANDS
    assert (str(stub["partition"]), str(stub["offset"])) == (
        dead.header("dlq.partition"),
        dead.header("dlq.offset"),
    )
    assert stub["size"] > limit - 200 and stub["reason"].startswith("not JSON")
    assert int(dead.header("dlq.cut")) == stub["size"]
    assert dead.header("h") is None and dead.key == ORDER_ID.encode()
    assert len(dead.value) < 2_000
    assert [m.order_id for m in outbox.messages(ORDERS_REPLIES)] == ["ord-other"]


def _count(node, layer: str) -> float:
    return sum(
        s.value
        for family in node.metrics.undecodable_records.collect()
        for s in family.samples
        if s.name.endswith("_total") and s.labels["layer"] == layer
    )
