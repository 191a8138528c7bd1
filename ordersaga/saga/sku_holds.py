"""Stock rules per SKU: levels, holds, and reserve/release/commit of one order's share.

Runs on the SKU's partition (``apply_sku_command``). What each order did to a
SKU is a ``Hold`` of its own (table ``sku_holds``, key ``sku/order``), so a
repeated command gets the same answer and changes nothing, and one write of one
small record applies it: a hot SKU costs each order what a cold one does. The
SKU's reserved and committed levels are not stored at all but summed from its
holds (``SkuTotals``, kept in memory and rebuilt from the table after each
rebalance), so no crash and no stale write can set the levels apart from the
holds: there is no second record to disagree. Holds of forgotten orders are
folded into the SKU's record (``forget_holds``).

The per-order fan-out over SKUs is ``ordersaga.saga.order_stock``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict

from ordersaga.schemas.bounds import MAX_STOCK_LEVEL
from ordersaga.schemas.messages import (
    LowStock,
    RestockSku,
    SkuCommand,
    SkuResult,
    StockChanged,
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
    remember_busy: bool = False,
) -> tuple[Hold | None, SkuResult]:
    """Reserve, release or commit one order's quantity of one SKU, idempotently.

    Returns the order's new hold (None when nothing changes) and the answer. A
    reservation that would make more than ``max_holds`` orders hold the SKU at
    once is refused (``sku_busy``) and remembered by no one. Holds of ended orders
    and tombstones (a refused reservation, a release that came first) do not
    count: they are dropped after the retention period, and counting them would
    let a stream of refused or cancelled orders make the SKU busy for everyone.
    With ``remember_busy`` (a command no gather will roll back) the refusal leaves a
    rejected hold, so a late duplicate of it is refused too.
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
                return (new("rejected") if remember_busy else None), result(False, SKU_BUSY)
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
