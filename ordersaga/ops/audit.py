"""``ordersaga audit``: check the invariants (README, "Guarantees") against the tables.

The tables are read from their changelog topics (the last value per key), so
the audit needs the broker only, not the workers, and sees exactly what a
worker restoring its tables would see.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

import orjson
from pydantic import ValidationError

from ordersaga.ops.tail import records
from ordersaga.saga.shipping import ShipmentRecord
from ordersaga.saga.sku_holds import SkuTotals, levels_of, totals_of
from ordersaga.schemas.status import TERMINAL, SagaStatus
from ordersaga.tables import PAYMENT_LEDGER, SAGAS, SHIPMENTS, SKU_HOLDS, STOCK, TableSpec
from ordersaga.web.intake import OrderIntake
from ordersaga.web.read_model import ViewStore

COMPLETED = SagaStatus.COMPLETED

Table = dict[str, Any]


async def read_table(
    bootstrap: str,
    spec: TableSpec[Any],
    deleted: set[str] | None = None,
    malformed: list[str] | None = None,
) -> Table:
    """A table's current content: the last value per key of its changelog.

    Every value is validated with the table's own record model; one that is not a
    record is left out and named in ``malformed``. Keys whose last record is a
    tombstone are added to ``deleted`` when given.
    """
    out: Table = {}
    async for r in records(bootstrap, spec.changelog_topic):
        key = orjson.loads(r.key) if r.key else None
        if not isinstance(key, str):
            continue
        if r.value is None:
            out.pop(key, None)
            if deleted is not None:
                deleted.add(key)
            continue
        value = orjson.loads(r.value)
        try:
            spec.load(value)
        except ValidationError as exc:
            out.pop(key, None)
            if malformed is not None:
                malformed.append(f"{spec.name}[{key}]: {exc.errors()[0]['msg']}")
            continue
        out[key] = value
        if deleted is not None:
            deleted.discard(key)
    return out


def stock_with_holds(levels: Table, holds: Table) -> Table:
    """SKU -> its levels, derived from its holds as the workers derive them, and the holds.

    The shape the invariants read: ``{put_in, available, reserved, committed,
    forgotten_committed, ..., holds: {order id: {quantity, state}}}``.
    """
    by_sku: dict[str, dict[str, Any]] = {}
    for hold in holds.values():
        by_sku.setdefault(hold["sku"], {})[hold["order_id"]] = hold
    totals = totals_of(SKU_HOLDS.load(h) for h in holds.values())
    out: Table = {}
    for sku, stored in levels.items():
        record = STOCK.load(stored)
        derived = levels_of(record, totals.get(sku, SkuTotals()))
        out[sku] = {
            **stored,
            **derived.model_dump(mode="json"),
            "holds": by_sku.get(sku, {}),
        }
    return out


@dataclass
class Check:
    """One invariant: its name, whether it holds, its figures and the first violations."""

    name: str
    figures: dict[str, int] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations

    def fail(self, text: str) -> None:
        self.violations.append(text)


@dataclass(frozen=True)
class State:
    """Every table the invariants speak about."""

    sagas: Table
    stock: Table
    payments: Table
    shipments: Table
    view_statuses: dict[str, str | None]
    stock_views: Table
    # Orders whose saga was deleted after the retention period (ForgetOrders).
    forgotten: set[str] = field(default_factory=set)
    # Changelog values that do not validate as their table's record.
    malformed: list[str] = field(default_factory=list)


def check_invariants(state: State, accepted: Collection[str] | None = None) -> list[Check]:
    """Check each invariant (README, "Guarantees"); pure, so it is tested without a broker."""
    sagas = state.sagas
    checks: list[Check] = []

    terminal = Check("1. every accepted order reached exactly one terminal state")
    by_status: dict[str, int] = {}
    for order_id, saga in sagas.items():
        by_status[saga["status"]] = by_status.get(saga["status"], 0) + 1
        if saga["status"] not in TERMINAL:
            terminal.fail(f"{order_id} is {saga['status']}")
    for order_id in accepted or {}:
        if order_id not in sagas and order_id not in state.forgotten:
            terminal.fail(f"{order_id} was accepted over HTTP but never reached the orchestrator")
    terminal.figures = {"orders": len(sagas), **by_status, "forgotten": len(state.forgotten)}
    checks.append(terminal)

    stock = Check("2. per SKU: put in = available + reserved + committed, none below 0")
    held = {"reserved": 0, "committed": 0}
    for sku, rec in state.stock.items():
        if min(rec["available"], rec["reserved"], rec["committed"]) < 0:
            stock.fail(
                f"{sku}: available {rec['available']}, reserved {rec['reserved']}, "
                f"committed {rec['committed']}"
            )
        if rec["put_in"] != rec["available"] + rec["reserved"] + rec["committed"]:
            stock.fail(
                f"{sku}: {rec['put_in']} != {rec['available']} + {rec['reserved']} "
                f"+ {rec['committed']}"
            )
        sums = {"reserved": 0, "committed": 0}
        for order_id, hold in rec["holds"].items():
            if hold["state"] in sums:
                sums[hold["state"]] += hold["quantity"]
            status = sagas.get(order_id, {}).get("status")
            if hold["state"] == "reserved" and status in TERMINAL:
                stock.fail(f"{sku}: {order_id} is {status} but still holds a reservation")
            if hold["state"] == "committed" and status in TERMINAL - {COMPLETED}:
                stock.fail(f"{sku}: {order_id} is {status} but its stock stayed committed")
        # Forgotten orders' committed stock stays committed without a hold.
        sums["committed"] += rec.get("forgotten_committed", 0)
        for level, total in sums.items():
            held[level] += total
            if rec[level] != total:
                stock.fail(f"{sku}: {level} {rec[level]} != holds {total}")
    for order_id, saga in sagas.items():
        if saga["status"] != COMPLETED:
            continue
        for line in saga["items"]:
            hold = state.stock.get(line["sku"], {}).get("holds", {}).get(order_id)
            if not hold or hold["state"] != "committed" or hold["quantity"] != line["quantity"]:
                stock.fail(
                    f"{line['sku']}: COMPLETED {order_id} has no committed hold of "
                    f"{line['quantity']} (found {hold})"
                )
    stock.figures = {
        "skus": len(state.stock),
        "put_in": sum(r["put_in"] for r in state.stock.values()),
        "available": sum(r["available"] for r in state.stock.values()),
        **held,
    }
    checks.append(stock)

    money = Check("3. per order: charged - refunded = total if COMPLETED else 0")
    charged = refunded = 0
    for order_id, saga in sagas.items():
        entry = state.payments.get(order_id, {})
        net = entry.get("charged", 0) - entry.get("refunded", 0)
        charged += entry.get("charged", 0)
        refunded += entry.get("refunded", 0)
        if entry.get("refunded", 0) > entry.get("charged", 0):
            money.fail(f"{order_id}: refunded more than charged")
        if saga["status"] == COMPLETED and net != saga.get("total"):
            money.fail(f"{order_id}: COMPLETED, net {net} != total {saga.get('total')}")
        if saga["status"] in TERMINAL - {COMPLETED} and net != 0:
            money.fail(f"{order_id}: {saga['status']} but {net} still charged")
    for order_id in state.payments.keys() - sagas.keys() - state.forgotten:
        money.fail(f"{order_id}: a ledger entry with no saga")
    money.figures = {"charged": charged, "refunded": refunded, "net": charged - refunded}
    checks.append(money)

    ship = Check("4. a COMPLETED order has exactly one live shipment; no other order has one")
    live = 0
    for order_id, saga in sagas.items():
        shipment = state.shipments.get(order_id)
        # Validated when read (read_table); the rule is the record's own.
        is_live = bool(shipment and ShipmentRecord.model_construct(**shipment).live)
        live += is_live
        if saga["status"] == COMPLETED and not is_live:
            ship.fail(f"{order_id}: COMPLETED without a live shipment")
        if saga["status"] in TERMINAL - {COMPLETED} and is_live:
            ship.fail(f"{order_id}: {saga['status']} with a live shipment")
    ship.figures = {"live_shipments": live}
    checks.append(ship)

    views = Check("5. the web view agrees with the tables")
    for order_id, saga in sagas.items():
        seen = state.view_statuses.get(order_id)
        if seen != saga["status"]:
            views.fail(f"{order_id}: view says {seen}, saga says {saga['status']}")
    for sku, rec in state.stock.items():
        view = state.stock_views.get(sku)
        if not view or any(view[k] != rec[k] for k in ("available", "reserved", "committed")):
            views.fail(
                f"{sku}: view {view and {k: view[k] for k in ('available', 'reserved')}} "
                f"!= stock available {rec['available']} reserved {rec['reserved']}"
            )
    views.figures = {
        "order_views": sum(1 for s in state.view_statuses.values() if s),
        "stock_views": len(state.stock_views),
    }
    checks.append(views)

    records_ok = Check("6. every table record is a valid record of its table")
    for text in state.malformed:
        records_ok.fail(text)
    records_ok.figures = {"malformed": len(state.malformed)}
    checks.append(records_ok)
    return checks


async def load_state(bootstrap: str, redis_url: str) -> tuple[State, set[str]]:
    """Read the tables from their changelogs, the views and accepted orders from Redis."""
    # Sagas are read last: a saga is deleted before its participants are told to
    # forget the order, so one found now was not yet forgotten anywhere when the
    # participants' tables were read, even while the system keeps forgetting.
    malformed: list[str] = []
    stock = stock_with_holds(
        await read_table(bootstrap, STOCK, malformed=malformed),
        await read_table(bootstrap, SKU_HOLDS, malformed=malformed),
    )
    payments = await read_table(bootstrap, PAYMENT_LEDGER, malformed=malformed)
    shipments = await read_table(bootstrap, SHIPMENTS, malformed=malformed)
    forgotten: set[str] = set()
    sagas = await read_table(bootstrap, SAGAS, deleted=forgotten, malformed=malformed)
    store = ViewStore.from_url(redis_url, finished_ttl_s=0)
    try:
        state = State(
            sagas=sagas,
            stock=stock,
            payments=payments,
            shipments=shipments,
            view_statuses=await store.order_statuses(sorted(sagas)),
            stock_views={v["sku"]: v for v in await store.all_stock()},
            forgotten=forgotten,
            malformed=malformed,
        )
        return state, await OrderIntake(store.redis).accepted_ids()
    finally:
        await store.close()


def report(checks: list[Check], max_violations: int = 10) -> str:
    """The audit as text: one line per invariant with its figures, then violations."""
    lines = []
    for c in checks:
        figures = ", ".join(f"{k} {v}" for k, v in c.figures.items())
        lines.append(f"{'PASS' if c.ok else 'FAIL'}  {c.name}\n      {figures}")
        for v in c.violations[:max_violations]:
            lines.append(f"      - {v}")
        if len(c.violations) > max_violations:
            lines.append(f"      ... and {len(c.violations) - max_violations} more")
    return "\n".join(lines)
