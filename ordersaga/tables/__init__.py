"""Every changelog-backed table, declared once: its name, owning group, key and record.

Agents take their tables from here (``Node.table(SAGAS)``), each group's
declaration in ``ordersaga.topology`` lists its own (their changelog topics are
created from there before any worker starts), and the audit reads the
changelogs through the same declarations and validates with the same models.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Generic, TypeVar

from pydantic import TypeAdapter

from ordersaga.saga.customers import CustomerRecord
from ordersaga.saga.order_stock import OrderStockRecord
from ordersaga.saga.payments import PaymentRecord
from ordersaga.saga.shipping import ShipmentRecord
from ordersaga.saga.sku_holds import Hold, SkuLevels
from ordersaga.saga.state import SagaState

R = TypeVar("R")


@dataclass(frozen=True)
class TableSpec(Generic[R]):
    """One table: Faust's name for it, the group whose app owns it, its key and value."""

    name: str
    group: str
    key: str
    record: type[R]
    summary: str = field(default="", compare=False)

    @property
    def changelog_topic(self) -> str:
        """The changelog topic Faust gives this table (``<app id>-<table>-changelog``)."""
        return f"ordersaga-{self.group}-{self.name}-changelog"

    @cached_property
    def _adapter(self) -> TypeAdapter[R]:
        return TypeAdapter(self.record)

    def load(self, stored: Any) -> R:
        """The record a stored (JSON) value holds; raises ValidationError when it is not one.

        Fields the record does not declare are ignored, as on the topics: during a
        rolling upgrade a partition may move from a newer worker to an older one,
        which reads the newer record without the field it added. Dropped on the next
        write, that field is then its default, as in any record an older worker wrote.
        """
        return self._adapter.validate_python(stored, extra="ignore")

    def dump(self, record: R) -> Any:
        """The JSON value stored for ``record``."""
        return self._adapter.dump_python(record, mode="json")


SAGAS = TableSpec("sagas", "orders", "order id", SagaState, "each order's saga")
CUSTOMERS = TableSpec("customers", "customers", "customer id", CustomerRecord, "accounts")
STOCK = TableSpec("stock", "inventory", "sku", SkuLevels, "price and stock put in")
SKU_HOLDS = TableSpec("sku_holds", "inventory", "sku/order id", Hold, "what an order did to a SKU")
ORDER_STOCK = TableSpec(
    "order_stock", "inventory", "order id", OrderStockRecord, "an order's SKU fan-out"
)
PAYMENT_LEDGER = TableSpec(
    "payment_ledger", "payments", "order id", PaymentRecord, "charges and refunds"
)
SHIPMENTS = TableSpec("shipments", "shipping", "order id", ShipmentRecord, "booked parcels")
# Orders the orchestrator forgot, with when they ended: a PlaceOrder of one of them
# is answered with nothing (ids older than ORDERSAGA_ORDER_MEMORY_S need no entry).
FORGOTTEN_ORDERS = TableSpec(
    "forgotten_orders", "orders", "order id", float, "when a forgotten order ended"
)
# The status the customer was last told, so a replayed event notifies nobody twice.
NOTIFIED = TableSpec("notified", "notifications", "order id", str, "status told")

TABLES: tuple[TableSpec[Any], ...] = (
    SAGAS,
    FORGOTTEN_ORDERS,
    CUSTOMERS,
    STOCK,
    SKU_HOLDS,
    ORDER_STOCK,
    PAYMENT_LEDGER,
    SHIPMENTS,
    NOTIFIED,
)

__all__ = [
    "CUSTOMERS",
    "FORGOTTEN_ORDERS",
    "NOTIFIED",
    "ORDER_STOCK",
    "PAYMENT_LEDGER",
    "SAGAS",
    "SHIPMENTS",
    "SKU_HOLDS",
    "STOCK",
    "TABLES",
    "TableSpec",
]
