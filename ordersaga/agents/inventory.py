"""The inventory group: stock per SKU, and the per-order gather of SKU answers.

Run alone with ``faust -A ordersaga.agents.inventory worker``.
"""

from __future__ import annotations

from faust.types import StreamT

from ordersaga.app.node import Node
from ordersaga.app.topics import (
    INVENTORY_COMMANDS,
    INVENTORY_EVENTS,
    INVENTORY_SKU_COMMANDS,
    INVENTORY_SKU_REPLIES,
)
from ordersaga.saga.inventory import (
    GatherStep,
    OrderStockRecord,
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
    Message,
    ReleaseStock,
    ReserveStock,
    RestockSku,
    SkuCommand,
    SkuResult,
    StockChanged,
)

node = Node("inventory")
app = node.app

#: SKU -> StockRecord (levels and per-order holds)
stock = node.table("stock")
#: order id -> OrderStockRecord (fan-outs in progress and their answers)
order_stock = node.table("order_stock")

order_inputs = node.topic(INVENTORY_COMMANDS, INVENTORY_SKU_REPLIES)
sku_inputs = node.topic(INVENTORY_SKU_COMMANDS)


def load_stock(sku: str) -> StockRecord | None:
    """A SKU's record from the table, if the SKU exists."""
    raw = stock.get(sku)
    return StockRecord.model_validate(raw) if raw else None


async def change_sku(envelope: Envelope, message: Message) -> str | None:
    """Apply a reserve, release, commit or restock to one SKU and answer it."""
    if isinstance(message, ForgetHolds):
        record = load_stock(message.sku)
        if record is None:
            return "unchanged"
        kept = forget_holds(record, message.order_ids)
        if kept == record:
            return "unchanged"
        node.metrics.entries_forgotten.labels("stock.holds").inc(
            len(record.holds) - len(kept.holds)
        )
        # Levels did not change, so there is no StockChanged to publish.
        stock[kept.sku] = node.fit(kept)
        return None
    if isinstance(message, RestockSku):
        before = load_stock(message.sku)
        after = restock(before, message)
        result: SkuResult | None = None
    elif isinstance(message, SkuCommand):
        before = load_stock(message.sku)
        after_or_none, result = apply_sku_command(
            before, message, max_holds=node.settings.max_holds_per_sku
        )
        after = after_or_none  # type: ignore[assignment]
    else:
        raise ValueError(f"{envelope.type} does not belong on {INVENTORY_SKU_COMMANDS}")
    # Checked before anything is sent: a refused record must leave no answer behind.
    value = node.fit(after) if after is not None and after != before else None
    if result is not None:
        await node.send(
            result, key=result.order_id, cause=envelope, event_id=f"{envelope.event_id}:result"
        )
    if value is not None:
        await node.send(
            after.changed_event(),
            key=after.sku,
            cause=envelope,
            topic=INVENTORY_EVENTS,
            event_id=f"{after.sku}:{after.version}",
        )
        stock[after.sku] = value
    return None


async def forget_order_stock(envelope: Envelope, message: ForgetOrders) -> str | None:
    """Drop forgotten orders' gather records and ask their SKUs to drop the holds."""
    records = [
        OrderStockRecord.model_validate(raw)
        for raw in (order_stock.get(order_id) for order_id in message.order_ids)
        if raw
    ]
    for sku, order_ids in skus_to_forget(records).items():
        await node.send(
            ForgetHolds(sku=sku, order_ids=tuple(order_ids)),
            key=sku,
            cause=envelope,
            event_id=f"{envelope.event_id}:{sku}",
        )
    return node.forget(order_stock, message.order_ids)


async def gather_order_stock(envelope: Envelope, message: Message) -> str | None:
    """Fan an order's stock command out per SKU, and fold the SKU answers back in."""
    if isinstance(message, ForgetOrders):
        return await forget_order_stock(envelope, message)
    order_id = getattr(message, "order_id", None)
    if not order_id:
        raise ValueError(f"{envelope.type} names no order")
    raw = order_stock.get(order_id)
    record = OrderStockRecord.model_validate(raw) if raw else None
    step: GatherStep
    if isinstance(message, ReserveStock | ReleaseStock | CommitStock):
        step = begin_stock_command(record, message)
    elif isinstance(message, SkuResult):
        step = collect_sku_result(record, message)
    else:
        raise ValueError(f"{envelope.type} does not belong to the inventory gather")
    value = node.fit(step.record) if step.changed and step.record is not None else None
    for command in step.sku_commands:
        await node.send(
            command,
            key=command.sku,
            cause=envelope,
            event_id=f"{envelope.event_id}:{command.op}:{command.sku}",
        )
    if step.reply is not None:
        await node.send(
            step.reply, key=order_id, cause=envelope, event_id=f"{envelope.event_id}:reply"
        )
    if value is not None:
        order_stock[order_id] = value
    return None


@app.agent(sku_inputs)
async def change_stock(stream: StreamT) -> None:
    """Keep every SKU's levels: reserve, release, commit and restock."""
    await node.consume(stream, change_sku, "change_stock")


@app.agent(order_inputs)
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
    for sku, raw in list(stock.items()):
        if not raw or _republished.get(sku) == raw["version"]:
            continue
        # Straight from the table's JSON: validating the whole record (every hold) is
        # what made SKU writes expensive.
        fields = StockChanged.model_fields
        levels = StockChanged.model_validate({name: raw[name] for name in fields})
        await node.send(levels, key=sku, topic=INVENTORY_EVENTS, event_id=f"{sku}:{levels.version}")
        _republished[sku] = levels.version
