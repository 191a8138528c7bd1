"""The customers group: customer accounts, and the saga's ``validate_customer`` step.

Run alone with ``faust -A ordersaga.agents.customers worker``. Every command is
keyed by customer id, so an account's registration, blocking and the orders'
validations are applied in the order they were sent. :func:`build` makes the
group from explicit settings; the module's attributes are those of the default
group (``ordersaga.agents.building``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import faust
from faust.types import AgentT, StreamT

from ordersaga.agents.building import DefaultGroup, toplevel
from ordersaga.config.settings import Settings
from ordersaga.saga.customers import CustomerRecord, block, register, validate
from ordersaga.schemas.messages import BlockCustomer, Envelope, RegisterCustomer, ValidateCustomer
from ordersaga.shell.dispatch import Dispatch, Handler
from ordersaga.shell.records import RecordTable
from ordersaga.shell.topics import CUSTOMERS_COMMANDS, CUSTOMERS_EVENTS
from ordersaga.shell.worker import Worker
from ordersaga.tables import CUSTOMERS


@dataclass
class Customers:
    """One customers group: its worker, accounts table and agent."""

    node: Worker
    app: faust.App
    customers: RecordTable[CustomerRecord]
    keep_accounts: Dispatch
    publish: Callable[[CustomerRecord, Envelope | None], Awaitable[None]]
    change_account: Handler
    validate_customer: Handler
    keep_customers: AgentT[Any]


def build(settings: Settings) -> Customers:
    """The customers group, configured from ``settings`` alone."""
    node = Worker("customers", settings)
    app = node.app
    customers = node.table(CUSTOMERS)
    # Customers keep nothing per order, so a ForgetOrders has nothing to delete here.
    keep_accounts = Dispatch(f"on {CUSTOMERS_COMMANDS}", forget=None)

    async def publish(record: CustomerRecord, cause: Envelope | None = None) -> None:
        """Send an account's state (same version, same event id: a view that has it ignores it)."""
        await node.send(
            record.changed_event(),
            key=record.customer_id,
            cause=cause,
            topic=CUSTOMERS_EVENTS,
            event_id=f"customer:{record.customer_id}:{record.version}",
        )

    @keep_accounts.on(RegisterCustomer, BlockCustomer)
    async def change_account(envelope: Envelope, message: RegisterCustomer | BlockCustomer) -> str:
        """Register, block or unblock an account and publish it.

        Published even when unchanged: a client repeats a request whose answer it did
        not see, and the view that may have missed the first event gets it again.
        """
        before = customers.load(message.customer_id)
        after: CustomerRecord | None
        if isinstance(message, RegisterCustomer):
            after = register(before, message, datetime.now(UTC))
        else:
            after = block(before, message)
        if after is None:
            return "unknown"
        stored = customers.fit(after) if after != before else None
        await publish(after, envelope)
        if stored is None:
            return "unchanged"
        customers[after.customer_id] = stored
        return "ok"

    @keep_accounts.on(ValidateCustomer)
    async def validate_customer(envelope: Envelope, message: ValidateCustomer) -> None:
        """Answer whether the customer may order: known and not blocked."""
        await node.reply(
            validate(customers.load(message.customer_id), message),
            to=envelope,
            key=message.order_id,
        )

    @app.agent(node.topic(CUSTOMERS_COMMANDS))
    @toplevel
    async def keep_customers(stream: StreamT) -> None:
        """Keep the accounts and validate each order's customer."""
        await node.consume(stream, keep_accounts, "keep_customers")

    return Customers(
        node=node,
        app=app,
        customers=customers,
        keep_accounts=keep_accounts,
        publish=publish,
        change_account=change_account,
        validate_customer=validate_customer,
        keep_customers=keep_customers,
    )


default = DefaultGroup(__name__, build, Customers)


def __getattr__(name: str) -> Any:
    # PEP 562: the default group's parts, built on first access.
    return default.attribute(name)


def __dir__() -> list[str]:
    return sorted({*globals(), *default.names()})
