"""Payment rules: the per-order ledger, given what the gateway answered.

The ledger remembers per order what was charged and refunded, so a repeated
ChargePayment answers as before and never charges twice, and a refund that
arrives before its charge leaves a tombstone that refuses the late charge.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict

from ordersaga.schemas.messages import (
    ChargePayment,
    PaymentCharged,
    PaymentDeclined,
    PaymentRefunded,
    RefundPayment,
)


class GatewayOutcome(StrEnum):
    """What the payment gateway did with a charge: what the ledger rules decide from.

    The gateway itself (a simulation) is ``ordersaga.adapters.gateway``.
    """

    APPROVED = "approved"
    DECLINED = "declined"
    NO_REPLY = "no_reply"
    ERROR = "error"
    CIRCUIT_OPEN = "circuit_open"


class PaymentRecord(BaseModel):
    """One order's ledger entry (the ``payment_ledger`` table value)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    order_id: str
    status: Literal["charged", "declined", "refunded"]
    charged: int = 0
    refunded: int = 0
    charge_id: str | None = None
    reason: str | None = None


_DECLINE_REASON = {
    GatewayOutcome.DECLINED: "card_declined",
    # The gateway kept failing after the shell's retries: nothing was charged.
    GatewayOutcome.ERROR: "gateway_unavailable",
    GatewayOutcome.CIRCUIT_OPEN: "circuit_open",
}

PaymentReply = PaymentCharged | PaymentDeclined | PaymentRefunded


def needs_gateway(record: PaymentRecord | None) -> bool:
    """Only an order never charged, declined or refunded goes to the gateway."""
    return record is None


def charge(
    record: PaymentRecord | None, command: ChargePayment, outcome: GatewayOutcome
) -> tuple[PaymentRecord | None, PaymentReply | None]:
    """Charge once per order; a repeat answers the first outcome without charging."""
    if record is not None:
        if record.status == "charged":
            return record, PaymentCharged(
                order_id=record.order_id, amount=record.charged, charge_id=record.charge_id or ""
            )
        return record, PaymentDeclined(
            order_id=record.order_id,
            reason=record.reason or ("refunded" if record.status == "refunded" else "declined"),
        )
    match outcome:
        case GatewayOutcome.NO_REPLY:
            return None, None
        case GatewayOutcome.DECLINED | GatewayOutcome.ERROR | GatewayOutcome.CIRCUIT_OPEN:
            reason = _DECLINE_REASON[outcome]
            return PaymentRecord(order_id=command.order_id, status="declined", reason=reason), (
                PaymentDeclined(order_id=command.order_id, reason=reason)
            )
    charge_id = f"ch_{command.order_id}"
    return PaymentRecord(
        order_id=command.order_id, status="charged", charged=command.amount, charge_id=charge_id
    ), PaymentCharged(order_id=command.order_id, amount=command.amount, charge_id=charge_id)


def refund(
    record: PaymentRecord | None, command: RefundPayment
) -> tuple[PaymentRecord, PaymentRefunded]:
    """Refund exactly what was charged, once; with no charge, refuse any later one."""
    if record is None:
        record = PaymentRecord(
            order_id=command.order_id, status="refunded", reason="compensated_before_charge"
        )
    elif record.status == "charged":
        record = record.model_copy(update={"status": "refunded", "refunded": record.charged})
    return record, PaymentRefunded(order_id=command.order_id, amount=record.refunded)
