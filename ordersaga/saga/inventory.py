"""Stock rules: per-SKU reservations and the per-order gather of SKU answers.

Two pure state machines:
- ``apply_sku_command`` runs on the SKU's partition. What each order did to a
  SKU is a ``Hold`` of its own (table ``sku_holds``, key ``sku/order``), so a
  repeated command gets the same answer and changes nothing, and one write of
  one small record applies it: a hot SKU costs each order what a cold one does.
  The SKU's reserved and committed levels are not stored at all but summed
  from its holds (``SkuTotals``, kept in memory and rebuilt from the table
  after each rebalance), so no crash and no stale write can set the levels
  apart from the holds: there is no second record to disagree.
- ``begin_stock_command`` / ``collect_sku_result`` run on the order's
  partition and fan an order's stock command out to its SKUs, then gather the
  answers into one reply to the orchestrator. A reservation with any SKU short
  first releases the SKUs it did reserve, then answers StockRejected.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict

from ordersaga.schemas.bounds import MAX_STOCK_LEVEL
from ordersaga.schemas.messages import (
    CommitStock,
    LowStock,
    Message,
    OrderLine,
    PricedLine,
    ReleaseStock,
    ReserveStock,
    RestockSku,
    SkuCommand,
    SkuOp,
    SkuResult,
    StockChanged,
    StockCommitted,
    StockRejected,
    StockReleased,
    StockReserved,
)

HoldState = Literal["reserved", "committed", "released", "rejected"]
# Restock ids remembered per SKU to absorb redelivered restocks. The web view mints
# them (fixed size) and keeps clients' Idempotency-Keys in Redis, so this memory is
# bounded in size as well as in count.
RESTOCK_MEMORY = 64
SKU_BUSY = "sku_busy"
# Orders one SKU remembers at once by default (Settings.max_holds_per_sku).
DEFAULT_MAX_HOLDS = 5_000
# Available stock at or below which a SKU is low, unless its restock set another.
DEFAULT_LOW_STOCK_AT = 5


class InvalidCommand(ValueError):
    """A well-formed message that cannot be applied (it goes to the dead-letter topic)."""


def hold_key(sku: str, order_id: str) -> str:
    """The ``sku_holds`` key of one order's hold on one SKU ("/" is in neither alphabet)."""
    return f"{sku}/{order_id}"


class Hold(BaseModel):
    """What one order did to one SKU: the ``sku_holds`` table's value."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    sku: str
    order_id: str
    quantity: int
    state: HoldState
    # The SKU's version this hold's last change made.
    version: int


class SkuLevels(BaseModel):
    """One SKU's catalogue entry: the ``stock`` table's value.

    Written by restocks and forgetting only, never per order; ``levels_of`` adds
    the sums of the SKU's holds to give its levels.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    sku: str
    unit_price: int
    put_in: int = 0
    version: int = 0
    restocks: tuple[str, ...] = ()
    # Committed stock of orders whose holds were forgotten, so that
    # committed == forgotten_committed + the committed holds still kept.
    forgotten_committed: int = 0
    # The orders the last ForgetHolds folded in, so that its replay folds none twice.
    last_forgotten: tuple[str, ...] = ()
    # Available stock at or below which the SKU is low (None: DEFAULT_LOW_STOCK_AT).
    low_stock_at: int | None = None


@dataclass
class SkuTotals:
    """Running sums of one SKU's holds, kept in memory beside the tables."""

    reserved: int = 0
    committed: int = 0
    # Orders holding a reservation now: what ORDERSAGA_MAX_HOLDS_PER_SKU bounds. Holds
    # of ended orders and tombstones are not counted: they last the retention period,
    # and no stream of refused, cancelled or declined orders may make a SKU busy.
    holds: int = 0
    # The highest version among the holds ever counted (a forgotten hold's version
    # is folded into SkuLevels.version, so versions never go back).
    version: int = 0

    def count(self, before: Hold | None, after: Hold | None) -> None:
        """Account for one hold changing from ``before`` to ``after`` (None: absent)."""
        for hold, sign in ((before, -1), (after, 1)):
            if hold is None:
                continue
            if hold.state == "reserved":
                self.holds += sign
                self.reserved += sign * hold.quantity
            elif hold.state == "committed":
                self.committed += sign * hold.quantity
        if after is not None:
            self.version = max(self.version, after.version)


def totals_of(holds: Iterable[Hold]) -> dict[str, SkuTotals]:
    """SKU -> the sums of its holds (after a rebalance, from the restored table)."""
    totals: dict[str, SkuTotals] = {}
    for hold in holds:
        totals.setdefault(hold.sku, SkuTotals()).count(None, hold)
    return totals


def levels_of(record: SkuLevels, totals: SkuTotals) -> StockChanged:
    """A SKU's levels: put in, less what its holds reserve and commit.

    ``put_in == available + reserved + committed`` holds by construction. Not
    validated (it runs for every SKU command): the rules never hold more than was
    put in, and the audit checks that no level is below 0.
    """
    committed = totals.committed + record.forgotten_committed
    available = record.put_in - totals.reserved - committed
    threshold = DEFAULT_LOW_STOCK_AT if record.low_stock_at is None else record.low_stock_at
    return StockChanged.model_construct(
        sku=record.sku,
        version=max(record.version, totals.version),
        unit_price=record.unit_price,
        put_in=record.put_in,
        available=available,
        reserved=totals.reserved,
        committed=committed,
        low_stock_at=threshold,
        low_stock=available <= threshold,
    )


def low_stock_crossing(before: StockChanged | None, after: StockChanged) -> LowStock | None:
    """The LowStock event when a change takes a SKU from above its threshold to at or below it.

    Once per crossing: a SKU that stays low says nothing more until a restock or
    a release lifts it above the threshold again. Its version names the crossing,
    so a replayed decision repeats the same event and consumers know it.
    """
    if not after.low_stock or (before is not None and before.low_stock):
        return None
    return LowStock(
        sku=after.sku,
        version=after.version,
        available=after.available,
        low_stock_at=after.low_stock_at,
    )


def restock(record: SkuLevels | None, totals: SkuTotals, command: RestockSku) -> SkuLevels:
    """Create a SKU or add stock to it; a restock id seen before changes nothing."""
    if record is None:
        if command.unit_price is None:
            raise InvalidCommand(f"unit_price is required to create SKU {command.sku!r}")
        record = SkuLevels(sku=command.sku, unit_price=command.unit_price)
    elif command.restock_id in record.restocks:
        return record
    levels = levels_of(record, totals)
    if levels.available + command.quantity > MAX_STOCK_LEVEL:
        raise InvalidCommand(
            f"restock of {command.quantity} would bring {command.sku!r} over "
            f"{MAX_STOCK_LEVEL} available"
        )
    return record.model_copy(
        update={
            "put_in": record.put_in + command.quantity,
            "unit_price": command.unit_price
            if command.unit_price is not None
            else record.unit_price,
            "version": levels.version + 1,
            "restocks": (*record.restocks, command.restock_id)[-RESTOCK_MEMORY:],
            "low_stock_at": command.low_stock_at
            if command.low_stock_at is not None
            else record.low_stock_at,
        }
    )


def apply_sku_command(
    record: SkuLevels | None,
    totals: SkuTotals,
    hold: Hold | None,
    command: SkuCommand,
    max_holds: int = DEFAULT_MAX_HOLDS,
) -> tuple[Hold | None, SkuResult]:
    """Reserve, release or commit one order's quantity of one SKU, idempotently.

    Returns the order's new hold (None when nothing changes) and the answer. A
    reservation that would make more than ``max_holds`` orders hold the SKU at
    once is refused (``sku_busy``) and remembered by no one. Holds of ended orders
    and tombstones (a refused reservation, a release that came first) do not
    count: they are dropped after the retention period, and counting them would
    let a stream of refused or cancelled orders make the SKU busy for everyone.
    """

    def result(ok: bool, reason: str | None = None) -> SkuResult:
        return SkuResult(
            op=command.op,
            order_id=command.order_id,
            sku=command.sku,
            ok=ok,
            unit_price=record.unit_price if record else 0,
            reason=reason,
        )

    if record is None:
        # Nothing was ever reserved on an unknown SKU, so there is nothing to release.
        return None, result(
            command.op == "release", None if command.op == "release" else "unknown_sku"
        )
    levels = levels_of(record, totals)

    def new(state: HoldState, quantity: int = 0) -> Hold:
        return Hold(
            sku=command.sku,
            order_id=command.order_id,
            quantity=quantity,
            state=state,
            version=levels.version + 1,
        )

    q = hold.quantity if hold else 0
    match command.op, hold.state if hold else None:
        case "reserve", None:
            if totals.holds >= max_holds:
                return None, result(False, SKU_BUSY)
            if levels.available < command.quantity:
                return new("rejected"), result(False, "out_of_stock")
            return new("reserved", command.quantity), result(True)
        case "reserve", "reserved" | "committed":
            return None, result(True)
        case "reserve", "rejected":
            return None, result(False, "out_of_stock")
        case "reserve", "released":
            return None, result(False, "released")
        case "release", "reserved" | "committed":
            # The quantity it held stays on the hold: a released hold is no tombstone.
            return new("released", q), result(True)
        case "release", None:
            # A tombstone, so that a reservation arriving late is refused.
            return new("released"), result(True)
        case "release", _:
            return None, result(True)
        case "commit", "reserved":
            return new("committed", q), result(True)
        case "commit", "committed":
            return None, result(True)
    return None, result(False, "not_reserved")


def forget_holds(
    record: SkuLevels, totals: SkuTotals, holds: Iterable[Hold]
) -> tuple[SkuLevels, tuple[Hold, ...]]:
    """Which of forgotten orders' ``holds`` to drop, and the SKU record that folds them in.

    A hold still ``reserved`` is kept: a finished order should hold none, and
    dropping it would hide that from the audit. The record is written before the
    holds are deleted; a replay after a crash between the two finds the orders in
    ``last_forgotten`` and folds none of them twice.
    """
    dropped = tuple(h for h in holds if h.state != "reserved")
    if not dropped:
        return record, ()
    folded = sum(
        h.quantity
        for h in dropped
        if h.state == "committed" and h.order_id not in record.last_forgotten
    )
    return record.model_copy(
        update={
            "forgotten_committed": record.forgotten_committed + folded,
            "version": max(record.version, totals.version),
            "last_forgotten": tuple(h.order_id for h in dropped),
        }
    ), dropped


def skus_to_forget(records: Iterable[OrderStockRecord]) -> dict[str, list[str]]:
    """SKU -> the forgotten orders that touched it, from their gather records."""
    by_sku: dict[str, list[str]] = {}
    for record in records:
        for line in record.items:
            by_sku.setdefault(line.sku, []).append(record.order_id)
    return by_sku


# ------------------------------------------------------------- per-order gather

OrderOp = Literal["reserve", "rollback", "release", "commit"]


class GatherOp(BaseModel):
    """One fan-out in progress or done: which SKUs still owe an answer, and what they said."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    sku_op: SkuOp
    pending: tuple[str, ...]
    results: dict[str, SkuResult] = {}
    done: bool = False


class OrderStockRecord(BaseModel):
    """The inventory group's per-order memory (the ``order_stock`` table value)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    order_id: str
    items: tuple[OrderLine, ...]
    ops: dict[str, GatherOp] = {}
    reply: dict[str, dict[str, object]] = {}


@dataclass(frozen=True)
class GatherStep:
    """What a stock command or SKU answer did: the new record, SKU commands, a reply."""

    record: OrderStockRecord | None
    sku_commands: tuple[SkuCommand, ...] = ()
    reply: Message | None = None
    changed: bool = False


def merge_lines(items: Iterable[OrderLine]) -> tuple[OrderLine, ...]:
    """One line per SKU, quantities summed, in first-seen order."""
    totals: dict[str, int] = {}
    for line in items:
        totals[line.sku] = totals.get(line.sku, 0) + line.quantity
    return tuple(OrderLine(sku=sku, quantity=q) for sku, q in totals.items())


_OP_OF_COMMAND: dict[type[Message], tuple[OrderOp, SkuOp]] = {
    ReserveStock: ("reserve", "reserve"),
    ReleaseStock: ("release", "release"),
    CommitStock: ("commit", "commit"),
}


def _fan_out(
    record: OrderStockRecord, op: GatherOp, *, gathered: bool = False
) -> tuple[SkuCommand, ...]:
    quantities = {line.sku: line.quantity for line in record.items}
    # One SKU needs no gathering: its partition answers the orchestrator itself.
    reply_to = "gather" if gathered or len(record.items) > 1 else "orchestrator"
    return tuple(
        SkuCommand(
            op=op.sku_op,
            order_id=record.order_id,
            sku=sku,
            quantity=quantities[sku],
            reply_to=reply_to,
        )
        for sku in op.pending
    )


def direct_reply(command: SkuCommand, result: SkuResult) -> Message | None:
    """The order-level answer a single-SKU order's SKU gives the orchestrator itself.

    The same answer the gather would give for one SKU. None for ``sku_busy``: a
    busy SKU kept no hold, so the answer goes to the gather, whose rollback
    releases it and leaves the tombstone that refuses a late duplicate.
    """
    match command.op, result.ok:
        case "reserve", True:
            line = PricedLine(
                sku=command.sku, quantity=command.quantity, unit_price=result.unit_price
            )
            return StockReserved(
                order_id=command.order_id, lines=(line,), total=line.quantity * line.unit_price
            )
        case "reserve", False:
            if result.reason == SKU_BUSY:
                return None
            return StockRejected(order_id=command.order_id, skus=(command.sku,))
        case "release", _:
            return StockReleased(order_id=command.order_id)
    return StockCommitted(order_id=command.order_id)


def begin_stock_command(
    record: OrderStockRecord | None, command: ReserveStock | ReleaseStock | CommitStock
) -> GatherStep:
    """Start (or, on a repeat, resume or re-answer) an order-level stock command."""
    name, sku_op = _OP_OF_COMMAND[type(command)]
    if record is None:
        record = OrderStockRecord(order_id=command.order_id, items=merge_lines(command.items))
    existing = record.ops.get(name)
    if existing is not None:
        rollback = record.ops.get("rollback")
        if existing.done and rollback is not None and not rollback.done and name == "reserve":
            # The answer waits for the rollback: a repeat re-sends its unanswered
            # releases, which may have been lost like any message.
            return GatherStep(record, sku_commands=_fan_out(record, rollback, gathered=True))
        if existing.done:
            return GatherStep(record, reply=_stored_reply(record, name))
        return GatherStep(record, sku_commands=_fan_out(record, existing))
    op = GatherOp(sku_op=sku_op, pending=tuple(line.sku for line in record.items))
    record = record.model_copy(update={"ops": {**record.ops, name: op}})
    return GatherStep(record, sku_commands=_fan_out(record, op), changed=True)


def collect_sku_result(record: OrderStockRecord | None, result: SkuResult) -> GatherStep:
    """Fold one SKU's answer into every fan-out waiting for it; reply when one completes."""
    if record is None:
        return GatherStep(record)
    ops = dict(record.ops)
    completed: list[str] = []
    for name, op in ops.items():
        if op.done or op.sku_op != result.op or result.sku not in op.pending:
            continue
        pending = tuple(s for s in op.pending if s != result.sku)
        ops[name] = op.model_copy(
            update={"pending": pending, "results": {**op.results, result.sku: result}}
        )
        if not pending:
            completed.append(name)
    if not completed and ops == record.ops:
        return GatherStep(record)
    record = record.model_copy(update={"ops": ops})
    sku_commands: tuple[SkuCommand, ...] = ()
    reply: Message | None = None
    for name in completed:
        record, more, answer = _complete(record, name)
        sku_commands += more
        reply = answer or reply
    return GatherStep(record, sku_commands=sku_commands, reply=reply, changed=True)


def _complete(
    record: OrderStockRecord, name: str
) -> tuple[OrderStockRecord, tuple[SkuCommand, ...], Message | None]:
    op = record.ops[name]
    ops = {**record.ops, name: op.model_copy(update={"done": True})}
    record = record.model_copy(update={"ops": ops})
    reply: Message
    if name == "reserve":
        short = tuple(sku for sku, r in op.results.items() if not r.ok)
        if short:
            # A SKU refused as busy kept no hold: releasing it too leaves a tombstone
            # that refuses a late duplicate of the reserve.
            held = tuple(sku for sku, r in op.results.items() if r.ok or r.reason == SKU_BUSY)
            rollback = GatherOp(sku_op="release", pending=held)
            record = record.model_copy(update={"ops": {**record.ops, "rollback": rollback}})
            if held:
                return record, _fan_out(record, rollback, gathered=True), None
            return _complete(record, "rollback")
        lines = tuple(
            PricedLine(
                sku=line.sku, quantity=line.quantity, unit_price=op.results[line.sku].unit_price
            )
            for line in record.items
        )
        reply = StockReserved(
            order_id=record.order_id,
            lines=lines,
            total=sum(line.quantity * line.unit_price for line in lines),
        )
    elif name == "rollback":
        reserve = record.ops["reserve"]
        refused = {sku: r.reason for sku, r in reserve.results.items() if not r.ok}
        # Busy only when no SKU was short: then more stock would not have helped.
        busy = all(reason == SKU_BUSY for reason in refused.values())
        reply = StockRejected(
            order_id=record.order_id,
            reason=SKU_BUSY if busy else "out_of_stock",
            skus=tuple(refused),
        )
    elif name == "release":
        reply = StockReleased(order_id=record.order_id)
    else:
        reply = StockCommitted(order_id=record.order_id)
    key = "reserve" if name == "rollback" else name
    record = record.model_copy(
        update={
            "reply": {**record.reply, key: {"type": reply.TYPE, **reply.model_dump(mode="json")}}
        }
    )
    return record, (), reply


def _stored_reply(record: OrderStockRecord, name: str) -> Message | None:
    stored = record.reply.get(name)
    if stored is None:
        # A reserve whose rollback is still under way has no answer yet.
        return None
    fields = {k: v for k, v in stored.items() if k != "type"}
    reply_type = {
        cls.TYPE: cls for cls in (StockReserved, StockRejected, StockReleased, StockCommitted)
    }[str(stored["type"])]
    return reply_type.model_validate(fields)
