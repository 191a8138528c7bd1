"""The payments group shell: ``process_payments`` over the ledger and the simulated gateway."""

from __future__ import annotations

import pytest

from ordersaga.adapters.gateway import GATEWAY_JOURNAL
from ordersaga.agents import payments
from ordersaga.schemas.messages import (
    ChargePayment,
    ForgetOrders,
    PaymentCharged,
    PaymentDeclined,
    PaymentRefunded,
    RefundPayment,
    ReserveStock,
)
from ordersaga.shell.topics import ORDERS_REPLIES, PAYMENTS_COMMANDS
from tests.harness import CUSTOMER_ID, ITEMS, ORDER_ID, TOTAL, event_id_of


@pytest.fixture
def outbox(capture):
    return capture(payments.node)


def charge(token: str = "tok_ok", amount: int = TOTAL) -> ChargePayment:
    return ChargePayment(
        order_id=ORDER_ID, customer_id=CUSTOMER_ID, payment_token=token, amount=amount
    )


async def test_charge_answers_payment_charged_keyed_by_order(drive, outbox):
    async with drive(payments.process_payments, payments.node) as d:
        fed = await d.put(charge(), key=ORDER_ID, topic=PAYMENTS_COMMANDS)

    [reply] = outbox.on(ORDERS_REPLIES)
    assert outbox.topics() == [ORDERS_REPLIES]
    assert reply.key == ORDER_ID.encode()
    assert reply.message == PaymentCharged(
        order_id=ORDER_ID, amount=TOTAL, charge_id=f"ch_{ORDER_ID}"
    )
    assert reply.envelope.event_id == f"{event_id_of(fed)}:reply"
    assert reply.envelope.causation_id == event_id_of(fed)
    assert reply.envelope.order_id == ORDER_ID
    ledger = payments.payment_ledger.get(ORDER_ID)
    assert (ledger["status"], ledger["charged"]) == ("charged", TOTAL)


async def test_replayed_charge_answers_the_same_and_charges_once(drive, outbox):
    async with drive(payments.process_payments, payments.node) as d:
        await d.put(charge(), key=ORDER_ID, topic=PAYMENTS_COMMANDS)
        ledger = payments.payment_ledger.get(ORDER_ID)
        # A retry of the step (new envelope) and even one with another amount.
        await d.put(charge(), key=ORDER_ID, topic=PAYMENTS_COMMANDS)
        await d.put(charge(amount=TOTAL * 10), key=ORDER_ID, topic=PAYMENTS_COMMANDS)

    replies = outbox.messages(ORDERS_REPLIES)
    assert len(replies) == 3
    assert replies[1] == replies[0] == replies[2]
    assert payments.payment_ledger.get(ORDER_ID) == ledger


async def test_declined_token_answers_payment_declined(drive, outbox):
    async with drive(payments.process_payments, payments.node) as d:
        await d.put(charge("tok_decline"), key=ORDER_ID, topic=PAYMENTS_COMMANDS)

    assert outbox.messages(ORDERS_REPLIES) == [
        PaymentDeclined(order_id=ORDER_ID, reason="card_declined")
    ]
    assert payments.payment_ledger.get(ORDER_ID)["status"] == "declined"


async def test_gateway_timeout_sends_no_reply_and_records_nothing(drive, outbox):
    async with drive(payments.process_payments, payments.node) as d:
        await d.put(charge("tok_timeout"), key=ORDER_ID, topic=PAYMENTS_COMMANDS)

    assert outbox.sent == []
    assert payments.payment_ledger.get(ORDER_ID) is None


async def test_refund_returns_what_was_charged(drive, outbox):
    async with drive(payments.process_payments, payments.node) as d:
        await d.put(charge(), key=ORDER_ID, topic=PAYMENTS_COMMANDS)
        outbox.clear()
        await d.put(RefundPayment(order_id=ORDER_ID), key=ORDER_ID, topic=PAYMENTS_COMMANDS)
        await d.put(RefundPayment(order_id=ORDER_ID), key=ORDER_ID, topic=PAYMENTS_COMMANDS)

    assert outbox.messages(ORDERS_REPLIES) == [
        PaymentRefunded(order_id=ORDER_ID, amount=TOTAL),
        PaymentRefunded(order_id=ORDER_ID, amount=TOTAL),
    ]
    ledger = payments.payment_ledger.get(ORDER_ID)
    assert (ledger["status"], ledger["charged"], ledger["refunded"]) == ("refunded", TOTAL, TOTAL)


async def test_refund_before_charge_refuses_the_late_charge(drive, outbox):
    async with drive(payments.process_payments, payments.node) as d:
        await d.put(RefundPayment(order_id=ORDER_ID), key=ORDER_ID, topic=PAYMENTS_COMMANDS)
        await d.put(charge(), key=ORDER_ID, topic=PAYMENTS_COMMANDS)

    refunded, late = outbox.messages(ORDERS_REPLIES)
    assert refunded == PaymentRefunded(order_id=ORDER_ID, amount=0)
    assert isinstance(late, PaymentDeclined)
    assert payments.payment_ledger.get(ORDER_ID)["charged"] == 0


async def test_foreign_command_is_dead_lettered(drive, outbox):
    async with drive(payments.process_payments, payments.node) as d:
        await d.put(
            ReserveStock(order_id=ORDER_ID, items=ITEMS), key=ORDER_ID, topic=PAYMENTS_COMMANDS
        )
        await d.put(charge(), key=ORDER_ID, topic=PAYMENTS_COMMANDS)

    [dead] = outbox.on(f"{PAYMENTS_COMMANDS}.dlq")
    assert dead.header("dlq.error") == (
        "ValueError: ReserveStock does not belong on payments.commands"
    )
    assert dead.header("dlq.group") == "payments"
    assert len(outbox.on(ORDERS_REPLIES)) == 1


async def test_forget_orders_drops_the_ledger_entry_once(drive, outbox):
    forget = ForgetOrders(order_ids=(ORDER_ID,))
    async with drive(payments.process_payments, payments.node) as d:
        await d.put(charge(), key=ORDER_ID, topic=PAYMENTS_COMMANDS)
        outbox.clear()
        await d.put(forget, key=ORDER_ID, topic=PAYMENTS_COMMANDS)
        await d.put(forget, key=ORDER_ID, topic=PAYMENTS_COMMANDS)

    assert payments.payment_ledger.get(ORDER_ID) is None
    assert outbox.sent == []  # no reply, no dead letter


async def test_the_gateway_journal_remembers_a_charge_for_its_ttl_only(drive, outbox):
    async with drive(payments.process_payments, payments.node) as d:
        await d.put(charge(), key=ORDER_ID, topic=PAYMENTS_COMMANDS)
        await d.put(RefundPayment(order_id=ORDER_ID), key=ORDER_ID, topic=PAYMENTS_COMMANDS)
        journal = payments.gateway.redis
        entry = await journal.hgetall(GATEWAY_JOURNAL + ORDER_ID)
        ttl = await journal.ttl(GATEWAY_JOURNAL + ORDER_ID)
    assert entry == {
        b"charged": str(TOTAL).encode(),
        b"calls": b"1",
        b"refunded": str(TOTAL).encode(),
    }
    # Bounded: it expires, and not before any replay could still come
    settings = payments.node.settings
    assert 0 < ttl <= settings.gateway_journal_ttl_s
    assert settings.gateway_journal_ttl_s > settings.order_memory_s
