"""Shipping rules: one shipment per order and the simulated carrier."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from ordersaga.schemas.messages import (
    Address,
    CancelShipment,
    PrepareShipment,
    ShipmentCancelled,
    ShipmentPrepared,
    ShipmentRefused,
)

REFUSED_COUNTRIES = frozenset({"XX"})
CARRIER = "simulated-post"


class ShipmentRecord(BaseModel):
    """One order's shipment (the ``shipments`` table value)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    order_id: str
    status: Literal["prepared", "refused", "cancelled"]
    shipment_id: str | None = None
    country: str | None = None
    reason: str | None = None

    @property
    def live(self) -> bool:
        """True while a parcel is booked for this order."""
        return self.status == "prepared"


def carrier_refusal(country: str) -> str | None:
    """Deterministic stand-in for a carrier: the reason it refuses a country, if it does."""
    return f"carrier does not ship to {country}" if country in REFUSED_COUNTRIES else None


def prepare(
    record: ShipmentRecord | None, command: PrepareShipment, address: Address | None = None
) -> tuple[ShipmentRecord, ShipmentPrepared | ShipmentRefused]:
    """Book one shipment per order; a repeat answers as before.

    ``address`` is the command's own once the shell has opened a sealed one.
    """
    if record is None:
        to = address or command.address
        if not isinstance(to, Address):
            raise ValueError("the shipping address is sealed: open it before preparing")
        refusal = carrier_refusal(to.country)
        if refusal:
            record = ShipmentRecord(
                order_id=command.order_id,
                status="refused",
                country=to.country,
                reason=refusal,
            )
        else:
            record = ShipmentRecord(
                order_id=command.order_id,
                status="prepared",
                shipment_id=f"shp_{command.order_id}",
                country=to.country,
            )
    if record.status == "prepared":
        return record, ShipmentPrepared(
            order_id=record.order_id, shipment_id=record.shipment_id or "", carrier=CARRIER
        )
    return record, ShipmentRefused(order_id=record.order_id, reason=record.reason or record.status)


def cancel(
    record: ShipmentRecord | None, command: CancelShipment
) -> tuple[ShipmentRecord, ShipmentCancelled]:
    """Cancel the order's shipment; with none booked, refuse any later booking."""
    if record is None or record.status == "prepared":
        base = record or ShipmentRecord(order_id=command.order_id, status="cancelled")
        record = base.model_copy(update={"status": "cancelled", "reason": "cancelled by the saga"})
    return record, ShipmentCancelled(order_id=command.order_id)
