"""The payments group: the payment ledger and the simulated gateway behind a breaker.

Run alone with ``faust -A ordersaga.agents.payments worker``. :func:`build` makes
the group from explicit settings; the module's attributes are those of the
default group (``ordersaga.agents.building``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import faust
from faust.types import AgentT, StreamT

from ordersaga.adapters.gateway import PaymentGateway
from ordersaga.agents.building import DefaultGroup, toplevel
from ordersaga.config.settings import Settings
from ordersaga.edge.sealing import Sealer, open_or_refuse, token_context
from ordersaga.saga.payments import GatewayOutcome, PaymentRecord, charge, needs_gateway, refund
from ordersaga.schemas.messages import ChargePayment, Envelope, RefundPayment
from ordersaga.shell.dispatch import Dispatch, Handler
from ordersaga.shell.records import RecordTable
from ordersaga.shell.topics import PAYMENTS_COMMANDS
from ordersaga.shell.worker import Worker
from ordersaga.tables import PAYMENT_LEDGER


@dataclass
class Payments:
    """One payments group: its worker, ledger, gateway and agent."""

    node: Worker
    app: faust.App
    payment_ledger: RecordTable[PaymentRecord]
    gateway: PaymentGateway
    settle_payment: Dispatch
    charge_once: Handler
    refund_once: Handler
    process_payments: AgentT[Any]


def build(settings: Settings) -> Payments:
    """The payments group, configured from ``settings`` alone."""
    node = Worker("payments", settings)
    app = node.app
    payment_ledger = node.table(PAYMENT_LEDGER)
    gateway = PaymentGateway(node.settings, node.metrics)
    node.health.checks["gateway"] = gateway.answers
    settle_payment = Dispatch(f"on {PAYMENTS_COMMANDS}", forget=payment_ledger)
    # Payments alone holds the key the web view seals tokens with.
    tokens = Sealer.from_setting(settings.payment_token_keys)

    @settle_payment.on(ChargePayment)
    async def charge_once(envelope: Envelope, message: ChargePayment) -> None:
        """Charge an order once, answering repeats as the first time."""
        before = payment_ledger.load(message.order_id)
        outcome = None
        if needs_gateway(before):
            # A token it cannot open is refused (dead-lettered, the saga told at once).
            token = open_or_refuse(tokens, message.payment_token, token_context(message.order_id))
            outcome = await gateway.charge(message.model_copy(update={"payment_token": token}))
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
    @toplevel
    async def process_payments(stream: StreamT) -> None:
        """Charge and refund orders through the simulated gateway."""
        await node.consume(stream, settle_payment, "process_payments")

    return Payments(
        node=node,
        app=app,
        payment_ledger=payment_ledger,
        gateway=gateway,
        settle_payment=settle_payment,
        charge_once=charge_once,
        refund_once=refund_once,
        process_payments=process_payments,
    )


default = DefaultGroup(__name__, build, Payments)


def __getattr__(name: str) -> Any:
    # PEP 562: the default group's parts, built on first access.
    return default.attribute(name)


def __dir__() -> list[str]:
    return sorted({*globals(), *default.names()})
