"""The inventory group: stock per SKU, and the per-order gather of SKU answers.

Run alone with ``faust -A ordersaga.agents.inventory worker``.
"""

from __future__ import annotations

from faust.types import StreamT

from ordersaga.app.dispatch import Dispatch
from ordersaga.app.node import Node
from ordersaga.app.topics import (
    INVENTORY_COMMANDS,
    INVENTORY_EVENTS,
    INVENTORY_SKU_COMMANDS,
    INVENTORY_SKU_REPLIES,
)
from ordersaga.saga.inventory import (
    GatherStep,
    StockRecord,
    apply_sku_command,
    begin_stock_command,
    collect_sku_result,
    forget_holds,
    restock,
    skus_to_forget,
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
from ordersaga.tables import ORDER_STOCK, STOCK

node = Node("inventory")
app = node.app
stock = node.table(STOCK)
order_stock = node.table(ORDER_STOCK)

# ------------------------------------------------------------------ per SKU

change_sku = Dispatch(f"on {INVENTORY_SKU_COMMANDS}", forget=None)


@change_sku.on(ForgetHolds)
async def drop_holds(envelope: Envelope, message: ForgetHolds) -> str | None:
    """Drop the holds of forgotten orders from a SKU record."""
    record = stock.load(message.sku)
    if record is None:
        return "unchanged"
    kept = forget_holds(record, message.order_ids)
    if kept == record:
        return "unchanged"
    node.metrics.entries_forgotten.labels("stock.holds").inc(len(record.holds) - len(kept.holds))
    # Levels did not change, so there is no StockChanged to publish.
    stock[kept.sku] = stock.fit(kept)
    return None


@change_sku.on(RestockSku, SkuCommand)
async def change_levels(envelope: Envelope, message: RestockSku | SkuCommand) -> None:
    """Apply a reserve, release, commit or restock to one SKU and answer it."""
    before = stock.load(message.sku)
    after: StockRecord | None
    result: SkuResult | None = None
    if isinstance(message, RestockSku):
        after = restock(before, message)
    else:
        after, result = apply_sku_command(
            before, message, max_holds=node.settings.max_holds_per_sku
        )
    # Checked before anything is sent: a refused record must leave no answer behind.
    stored = stock.fit(after) if after is not None and after != before else None
    if result is not None:
        await node.send(
            result, key=result.order_id, cause=envelope, event_id=f"{envelope.event_id}:result"
        )
    if stored is not None and after is not None:
        await node.send(
            after.changed_event(),
            key=after.sku,
            cause=envelope,
            topic=INVENTORY_EVENTS,
            event_id=f"{after.sku}:{after.version}",
        )
        stock[after.sku] = stored


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
async def change_stock(stream: StreamT) -> None:
    """Keep every SKU's levels: reserve, release, commit and restock."""
    await node.consume(stream, change_sku, "change_stock")


@app.agent(node.topic(INVENTORY_COMMANDS, INVENTORY_SKU_REPLIES))
async def gather_reservations(stream: StreamT) -> None:
    """Reserve, release or commit an order's stock across its SKUs, all or nothing."""
    await node.consume(stream, gather_order_stock, "gather_reservations")


#: SKU -> the version ``republish_changed_stock`` last published again
_republished: dict[str, int] = {}


@node.timer(interval=node.settings.view_refresh_after_s)
async def republish_changed_stock() -> None:
    """Publish the levels of every SKU that changed since the last tick once more.

    A consumer can skip messages around a rebalance; a web view that missed a SKU's
    last StockChanged would show old levels until the next change, which may never
    come. The copy has the same version and event id, so a view that has it ignores
    it. The cost is one message per changed SKU per tick, whatever the traffic.
    """
    for sku, stored in stock.items():
        if not stored or _republished.get(sku) == stored["version"]:
            continue
        # Straight from the stored JSON: validating the whole record (every hold) is
        # what made SKU writes expensive.
        fields = StockChanged.model_fields
        levels = StockChanged.model_validate({name: stored[name] for name in fields})
        await node.send(levels, key=sku, topic=INVENTORY_EVENTS, event_id=f"{sku}:{levels.version}")
        _republished[sku] = levels.version
