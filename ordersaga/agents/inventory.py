"""The inventory group: stock per SKU, and the per-order gather of SKU answers.

Run alone with ``faust -A ordersaga.agents.inventory worker``. :func:`build`
makes the group from explicit settings; the module's attributes are those of
the default group (``ordersaga.agents.building``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

import faust
from faust.types import AgentT, StreamT

from ordersaga.agents import repairs
from ordersaga.agents.building import DefaultGroup, toplevel
from ordersaga.config.settings import Settings
from ordersaga.saga.order_stock import (
    GatherStep,
    OrderStockRecord,
    begin_stock_command,
    collect_sku_result,
    direct_reply,
    skus_to_forget,
)
from ordersaga.saga.sku_holds import (
    Hold,
    SkuLevels,
    SkuTotals,
    apply_sku_command,
    forget_holds,
    hold_key,
    levels_of,
    low_stock_crossing,
    restock,
    totals_of,
)
from ordersaga.schemas.messages import (
    CommitStock,
    Envelope,
    ForgetHolds,
    ForgetOrders,
    ReleaseStock,
    ReserveStock,
    RestockSku,
    SkuCommand,
    SkuResult,
    StockChanged,
)
from ordersaga.shell.dispatch import Dispatch, Handler
from ordersaga.shell.records import RecordTable
from ordersaga.shell.topics import (
    INVENTORY_COMMANDS,
    INVENTORY_EVENTS,
    INVENTORY_SKU_COMMANDS,
    INVENTORY_SKU_REPLIES,
)
from ordersaga.shell.worker import Worker
from ordersaga.tables import ORDER_STOCK, SKU_HOLDS, STOCK

log = logging.getLogger(__name__)


@dataclass
class Inventory:
    """One inventory group: its worker, tables, the totals beside them, agents and repair loop."""

    node: Worker
    app: faust.App
    stock: RecordTable[SkuLevels]
    holds: RecordTable[Hold]
    order_stock: RecordTable[OrderStockRecord]
    totals: dict[str, SkuTotals]
    changed: set[str]
    low: set[str]
    note_low: Callable[[StockChanged], None]
    count_holds: Callable[[], Awaitable[None]]
    totals_for: Callable[[str], SkuTotals]
    publish_levels: Callable[..., Awaitable[None]]
    send_levels: Callable[..., Awaitable[None]]
    change_sku: Dispatch
    drop_holds: Handler
    add_stock: Handler
    change_hold: Handler
    forget_order_stock: Callable[[Envelope, ForgetOrders], Awaitable[str | None]]
    gather_order_stock: Dispatch
    fan_out_or_collect: Handler
    change_stock: AgentT[Any]
    gather_reservations: AgentT[Any]
    stock_repair: Callable[[], Awaitable[None]]


def build(settings: Settings) -> Inventory:
    """The inventory group, configured from ``settings`` alone."""
    node = Worker("inventory", settings)
    app = node.app
    stock = node.table(STOCK)
    holds = node.table(SKU_HOLDS)
    order_stock = node.table(ORDER_STOCK)

    # ------------------------------------------------------------------ per SKU

    #: SKU -> the sums of its holds in this worker's partitions (levels are derived from them)
    totals: dict[str, SkuTotals] = {}
    #: SKUs whose levels changed since ``repairs.republish_changed_stock`` last ran
    changed: set[str] = set()
    #: SKUs of this worker at or below their low-stock threshold (the gauge counts them)
    low: set[str] = set()

    def note_low(levels: StockChanged) -> None:
        (low.add if levels.low_stock else low.discard)(levels.sku)
        node.metrics.low_stock_skus.set(len(low))

    @holds.faust_table.on_recover
    async def count_holds() -> None:
        """Sum the restored holds: the partitions, hence the SKUs, may have changed."""
        totals.clear()
        totals.update(totals_of(SKU_HOLDS.load(stored) for _, stored in holds.items()))
        low.clear()
        for sku, stored in stock.items():
            note_low(levels_of(STOCK.load(stored), totals_for(sku)))
            # A view may have missed the last change of a SKU that moved here.
            changed.add(sku)
        node.metrics.low_stock_skus.set(len(low))

    def totals_for(sku: str) -> SkuTotals:
        return totals.setdefault(sku, SkuTotals())

    async def publish_levels(sku: str, envelope: Envelope | None = None) -> None:
        """Send a SKU's levels (same version, same event id: a view that has them ignores them)."""
        record = stock.load(sku)
        if record is not None:
            await send_levels(levels_of(record, totals_for(sku)), envelope)

    async def send_levels(
        levels: StockChanged, envelope: Envelope | None, before: StockChanged | None = None
    ) -> None:
        """Send a SKU's levels, and LowStock if this change took it down to its threshold."""
        await node.send(
            levels,
            key=levels.sku,
            cause=envelope,
            topic=INVENTORY_EVENTS,
            event_id=f"{levels.sku}:{levels.version}",
        )
        if envelope is None:
            return
        crossing = low_stock_crossing(before, levels)
        if crossing is not None:
            await node.send(
                crossing,
                key=levels.sku,
                cause=envelope,
                event_id=f"{levels.sku}:low:{crossing.version}",
            )

    change_sku = Dispatch(f"on {INVENTORY_SKU_COMMANDS}", forget=None)

    @change_sku.on(ForgetHolds)
    async def drop_holds(envelope: Envelope, message: ForgetHolds) -> str | None:
        """Drop the finished holds of forgotten orders; levels stay as they are."""
        record = stock.load(message.sku)
        if record is None:
            return "unchanged"
        sku_totals = totals_for(message.sku)
        keys = (hold_key(message.sku, order_id) for order_id in message.order_ids)
        present = [hold for hold in map(holds.load, keys) if hold is not None]
        folded, dropped = forget_holds(record, sku_totals, present)
        if not dropped:
            return "unchanged"
        # The fold first: a crash before the deletes replays this, which folds nothing twice.
        if folded != record:
            stock[message.sku] = stock.fit(folded)
        for hold in dropped:
            del holds[hold_key(hold.sku, hold.order_id)]
            sku_totals.count(hold, None)
        node.metrics.entries_forgotten.labels("stock.holds").inc(len(dropped))
        return None

    @change_sku.on(RestockSku)
    async def add_stock(envelope: Envelope, message: RestockSku) -> str | None:
        """Create a SKU or add stock to it, and publish its levels."""
        sku_totals = totals_for(message.sku)
        before = stock.load(message.sku)
        after = restock(before, sku_totals, message)
        if after == before:
            return "unchanged"
        stored = stock.fit(after)
        levels = levels_of(after, sku_totals)
        # Sent before the write: a crash in between replays this, which sends the same.
        await send_levels(levels, envelope, levels_of(before, sku_totals) if before else None)
        stock[message.sku] = stored
        changed.add(message.sku)
        note_low(levels)
        return None

    @change_sku.on(SkuCommand)
    async def change_hold(envelope: Envelope, message: SkuCommand) -> str | None:
        """Reserve, release or commit one order's share of one SKU and answer it.

        One small write (the order's hold) whatever the SKU's traffic; the totals
        follow it in memory. A single-SKU order's command comes from the
        orchestrator itself and is answered to it, as the gather would have; a
        commit the saga does not wait for (``reply_to="nobody"``) is not answered.
        """
        key = hold_key(message.sku, message.order_id)
        sku_totals = totals_for(message.sku)
        record = stock.load(message.sku)
        before: Hold | None = holds.load(key)
        direct = message.reply_to == "orchestrator"
        after, result = apply_sku_command(
            record,
            sku_totals,
            before,
            message,
            max_holds=node.settings.max_holds_per_sku,
            remember_busy=direct,
        )
        stored = holds.fit(after) if after is not None else None
        if direct:
            await node.reply(direct_reply(message, result), to=envelope, key=message.order_id)
        elif message.reply_to == "nobody":
            # The line an answer would have logged (one per step); the saga completed
            # on this command, so only a broken invariant refuses it (audit 2).
            if result.ok:
                log.info("%s %s -> done, unanswered", envelope.type, message.op)
            else:
                log.warning("unanswered %s of %s refused: %s", message.op, key, result.reason)
        else:
            await node.send(
                result, key=result.order_id, cause=envelope, event_id=f"{envelope.event_id}:result"
            )
        if after is None or record is None:
            return "unchanged"
        # The levels after the change, sent before the hold is written: a crash in
        # between replays this command, which decides and sends the same again.
        projected = replace(sku_totals)
        projected.count(before, after)
        levels = levels_of(record, projected)
        await send_levels(levels, envelope, levels_of(record, sku_totals))
        holds[key] = stored
        sku_totals.count(before, after)
        changed.add(message.sku)
        note_low(levels)
        return None

    # ---------------------------------------------------------------- per order

    async def forget_order_stock(envelope: Envelope, message: ForgetOrders) -> str | None:
        """Drop forgotten orders' gather records and ask their SKUs to drop the holds."""
        records = [r for r in map(order_stock.load, message.order_ids) if r is not None]
        for sku, order_ids in skus_to_forget(records).items():
            await node.send(
                ForgetHolds(sku=sku, order_ids=tuple(order_ids)),
                key=sku,
                cause=envelope,
                event_id=f"{envelope.event_id}:{sku}",
            )
        return order_stock.forget(message.order_ids)

    gather_order_stock = Dispatch("to the inventory gather", forget=forget_order_stock)

    @gather_order_stock.on(ReserveStock, ReleaseStock, CommitStock, SkuResult)
    async def fan_out_or_collect(
        envelope: Envelope, message: ReserveStock | ReleaseStock | CommitStock | SkuResult
    ) -> None:
        """Fan an order's stock command out per SKU, and fold the SKU answers back in."""
        record = order_stock.load(message.order_id)
        step: GatherStep
        if isinstance(message, SkuResult):
            step = collect_sku_result(record, message)
        else:
            step = begin_stock_command(record, message)
        stored = order_stock.fit(step.record) if step.changed and step.record is not None else None
        for command in step.sku_commands:
            await node.send(
                command,
                key=command.sku,
                cause=envelope,
                event_id=f"{envelope.event_id}:{command.op}:{command.sku}",
            )
        if step.reply is not None:
            await node.reply(step.reply, to=envelope, key=message.order_id)
        if stored is not None:
            order_stock[message.order_id] = stored

    # ------------------------------------------------------------------- agents

    @app.agent(node.topic(INVENTORY_SKU_COMMANDS))
    @toplevel
    async def change_stock(stream: StreamT) -> None:
        """Keep every SKU's levels: reserve, release, commit and restock."""
        await node.consume(stream, change_sku, "change_stock")

    @app.agent(node.topic(INVENTORY_COMMANDS, INVENTORY_SKU_REPLIES))
    @toplevel
    async def gather_reservations(stream: StreamT) -> None:
        """Reserve, release or commit an order's stock across its SKUs, all or nothing."""
        await node.consume(stream, gather_order_stock, "gather_reservations")

    # The repair loop of stock views (see ordersaga.agents.repairs).
    stock_repair = node.timer(interval=settings.view_refresh_after_s)(
        repairs.as_timer(repairs.republish_changed_stock, changed, publish_levels)
    )

    return Inventory(
        node=node,
        app=app,
        stock=stock,
        holds=holds,
        order_stock=order_stock,
        totals=totals,
        changed=changed,
        low=low,
        note_low=note_low,
        count_holds=count_holds,
        totals_for=totals_for,
        publish_levels=publish_levels,
        send_levels=send_levels,
        change_sku=change_sku,
        drop_holds=drop_holds,
        add_stock=add_stock,
        change_hold=change_hold,
        forget_order_stock=forget_order_stock,
        gather_order_stock=gather_order_stock,
        fan_out_or_collect=fan_out_or_collect,
        change_stock=change_stock,
        gather_reservations=gather_reservations,
        stock_repair=stock_repair,
    )


default = DefaultGroup(__name__, build, Inventory)


def __getattr__(name: str) -> Any:
    # PEP 562: the default group's parts, built on first access.
    return default.attribute(name)


def __dir__() -> list[str]:
    return sorted({*globals(), *default.names()})
