"""The payments group: the payment ledger and the simulated gateway.

Run alone with ``faust -A ordersaga.agents.payments worker``.
"""

from __future__ import annotations

from faust.types import StreamT

from ordersaga.app.node import Node
from ordersaga.app.topics import PAYMENTS_COMMANDS
from ordersaga.saga.payments import PaymentRecord, charge, refund, simulate_gateway
from ordersaga.schemas.messages import ChargePayment, Envelope, Message, RefundPayment

node = Node("payments")
app = node.app

#: order id -> PaymentRecord
payment_ledger = node.table("payment_ledger")
payment_commands = node.topic(PAYMENTS_COMMANDS)


async def settle_payment(envelope: Envelope, message: Message) -> None:
    """Charge or refund an order once, answering repeats as the first time."""
    if not isinstance(message, ChargePayment | RefundPayment):
        raise ValueError(f"{envelope.type} does not belong on {PAYMENTS_COMMANDS}")
    raw = payment_ledger.get(message.order_id)
    before = PaymentRecord.model_validate(raw) if raw else None
    if isinstance(message, ChargePayment):
        after, reply = charge(before, message, simulate_gateway(message.payment_token))
    else:
        after, reply = refund(before, message)
    if reply is not None:
        await node.send(
            reply, key=message.order_id, cause=envelope, event_id=f"{envelope.event_id}:reply"
        )
    if after is not None and after != before:
        payment_ledger[message.order_id] = after.model_dump(mode="json")


@app.agent(payment_commands)
async def process_payments(stream: StreamT) -> None:
    """Charge and refund orders through the simulated gateway."""
    await node.consume(stream, settle_payment, "process_payments")
