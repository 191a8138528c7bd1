"""Customer rules: accounts, blocking, and the saga's first step, ``validate_customer``."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from ordersaga.schemas.messages import (
    BlockCustomer,
    CustomerChanged,
    CustomerRejected,
    CustomerValidated,
    RegisterCustomer,
    ValidateCustomer,
)


class CustomerRecord(BaseModel):
    """One customer account (the ``customers`` table value)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    customer_id: str
    name: str
    email: str
    blocked: bool = False
    version: int = 1
    registered_at: datetime

    def changed_event(self) -> CustomerChanged:
        """The CustomerChanged event that publishes this account."""
        return CustomerChanged(**self.model_dump())


def register(
    record: CustomerRecord | None, command: RegisterCustomer, now: datetime
) -> CustomerRecord:
    """Create the account; the first registration of an id wins, a repeat changes nothing.

    The web view refuses (409) a registration of a known id with other details,
    so one reaching here is a race between two clients: the first stays.
    """
    if record is not None:
        return record
    return CustomerRecord(
        customer_id=command.customer_id, name=command.name, email=command.email, registered_at=now
    )


def block(record: CustomerRecord | None, command: BlockCustomer) -> CustomerRecord | None:
    """Block or unblock a known account; an unknown one stays unknown."""
    if record is None or record.blocked == command.blocked:
        return record
    return record.model_copy(update={"blocked": command.blocked, "version": record.version + 1})


def validate(
    record: CustomerRecord | None, command: ValidateCustomer
) -> CustomerValidated | CustomerRejected:
    """May this customer order now? Asked again, it answers from the account as it is."""
    if record is None:
        return CustomerRejected(
            order_id=command.order_id, customer_id=command.customer_id, reason="unknown_customer"
        )
    if record.blocked:
        return CustomerRejected(
            order_id=command.order_id, customer_id=command.customer_id, reason="blocked"
        )
    return CustomerValidated(order_id=command.order_id, customer_id=command.customer_id)
