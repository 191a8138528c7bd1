"""Stock rules per order: fan an order's stock command out to its SKUs, gather the answers.

Runs on the order's partition (``begin_stock_command`` / ``collect_sku_result``)
and turns the SKUs' ``SkuResult`` answers into one reply to the orchestrator
(StockReserved, StockRejected, StockReleased, StockCommitted unless the saga
does not wait for it: ``CommitStock.answered``). A reservation
with any SKU short first releases the SKUs it did reserve, then answers
StockRejected. An order of one SKU needs no gathering: the orchestrator sends
its SkuCommand to the SKU's partition itself (``stock_command``), which answers
the orchestrator (``direct_reply``), so such an order never passes here.

What one SKU does with its share is ``ordersaga.saga.sku_holds``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict

from ordersaga.saga.sku_holds import SKU_BUSY
from ordersaga.schemas.messages import (
    CommitStock,
    Message,
    OrderLine,
    PricedLine,
    ReleaseStock,
    ReserveStock,
    SkuCommand,
    SkuOp,
    SkuResult,
    StockCommitted,
    StockRejected,
    StockReleased,
    StockReserved,
)

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


def single_sku(items: Iterable[OrderLine]) -> OrderLine | None:
    """An order's one line when all its lines name the same SKU (quantities summed)."""
    merged = merge_lines(items)
    return merged[0] if len(merged) == 1 else None


_ORDER_COMMAND: dict[SkuOp, type[ReserveStock | ReleaseStock | CommitStock]] = {
    "reserve": ReserveStock,
    "release": ReleaseStock,
    "commit": CommitStock,
}


def stock_command(
    op: SkuOp, order_id: str, items: tuple[OrderLine, ...], *, answered: bool = True
) -> Message:
    """The orchestrator's stock command for an order: straight to the SKU when there is one.

    An order of one SKU needs no all-or-nothing gather, so its command goes to the
    SKU's partition (keyed by SKU), which answers the orchestrator itself: two
    handled messages and a table write fewer per command. Any other order's goes
    to the gather (keyed by order), which fans it out. Only a commit may go
    ``answered=False`` (the saga's unanswered step): no one answers it then.
    """
    if not answered and op != "commit":
        raise ValueError(f"a {op} is always answered")
    line = single_sku(items)
    if line is None:
        if not answered:
            return CommitStock(order_id=order_id, items=items, answered=False)
        return _ORDER_COMMAND[op](order_id=order_id, items=items)
    return SkuCommand(
        op=op,
        order_id=order_id,
        sku=line.sku,
        quantity=line.quantity,
        reply_to="orchestrator" if answered else "nobody",
    )


def direct_holds(orders: Iterable[tuple[str, Iterable[OrderLine]]]) -> dict[str, list[str]]:
    """SKU -> the orders among ``orders`` (id, items) whose stock went to it directly.

    Their holds have no gather record to name them when they are forgotten, so
    the orchestrator asks their SKU to drop them itself (ForgetHolds).
    """
    by_sku: dict[str, list[str]] = {}
    for order_id, items in orders:
        line = single_sku(items)
        if line is not None:
            by_sku.setdefault(line.sku, []).append(order_id)
    return by_sku


def direct_reply(command: SkuCommand, result: SkuResult) -> Message:
    """The order-level answer a single-SKU order's SKU gives the orchestrator itself.

    The same answer the gather would give for one SKU, ``sku_busy`` included: the
    SKU then keeps a rejected hold as the tombstone that refuses a late duplicate
    (``apply_sku_command(remember_busy=True)``), which the gather's rollback
    would have left.
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
            # A busy SKU says so; any other refusal is the shelf's (the gather's words).
            reason = SKU_BUSY if result.reason == SKU_BUSY else "out_of_stock"
            return StockRejected(order_id=command.order_id, reason=reason, skus=(command.sku,))
        case "release", _:
            return StockReleased(order_id=command.order_id)
    return StockCommitted(order_id=command.order_id)


def begin_stock_command(
    record: OrderStockRecord | None, command: ReserveStock | ReleaseStock | CommitStock
) -> GatherStep:
    """Start (or, on a repeat, resume or re-answer) an order-level stock command."""
    if isinstance(command, CommitStock) and not command.answered:
        # Nothing to gather: each SKU commits its share and answers no one.
        return GatherStep(
            record,
            sku_commands=tuple(
                SkuCommand(
                    op="commit",
                    order_id=command.order_id,
                    sku=line.sku,
                    quantity=line.quantity,
                    reply_to="nobody",
                )
                for line in merge_lines(command.items)
            ),
        )
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


def skus_to_forget(records: Iterable[OrderStockRecord]) -> dict[str, list[str]]:
    """SKU -> the forgotten orders that touched it, from their gather records."""
    by_sku: dict[str, list[str]] = {}
    for record in records:
        for line in record.items:
            by_sku.setdefault(line.sku, []).append(record.order_id)
    return by_sku
