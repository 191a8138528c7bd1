"""The payments group: the payment ledger and the simulated gateway behind a breaker.

Run alone with ``faust -A ordersaga.agents.payments worker``.
"""

from __future__ import annotations

from faust.types import StreamT

from ordersaga.adapters.gateway import PaymentGateway
from ordersaga.saga.payments import GatewayOutcome, charge, needs_gateway, refund
from ordersaga.schemas.messages import ChargePayment, Envelope, RefundPayment
from ordersaga.shell.dispatch import Dispatch
from ordersaga.shell.topics import PAYMENTS_COMMANDS
from ordersaga.shell.worker import Worker
from ordersaga.tables import PAYMENT_LEDGER

node = Worker("payments")
app = node.app
payment_ledger = node.table(PAYMENT_LEDGER)
gateway = PaymentGateway(node.settings, node.metrics)
node.health_checks["gateway"] = gateway.answers
settle_payment = Dispatch(f"on {PAYMENTS_COMMANDS}", forget=payment_ledger)


@settle_payment.on(ChargePayment)
async def charge_once(envelope: Envelope, message: ChargePayment) -> None:
    """Charge an order once, answering repeats as the first time."""
    before = payment_ledger.load(message.order_id)
    outcome = await gateway.charge(message) if needs_gateway(before) else None
    after, reply = charge(before, message, outcome or GatewayOutcome.APPROVED)
    await node.answer(payment_ledger, message.order_id, before, after, reply, to=envelope)


@settle_payment.on(RefundPayment)
async def refund_once(envelope: Envelope, message: RefundPayment) -> None:
    """Refund an order's charge once, answering repeats as the first time."""
    before = payment_ledger.load(message.order_id)
    after, reply = refund(before, message)
    await gateway.refund(message.order_id, reply.amount)
    await node.answer(payment_ledger, message.order_id, before, after, reply, to=envelope)


@app.agent(node.topic(PAYMENTS_COMMANDS))
async def process_payments(stream: StreamT) -> None:
    """Charge and refund orders through the simulated gateway."""
    await node.consume(stream, settle_payment, "process_payments")
