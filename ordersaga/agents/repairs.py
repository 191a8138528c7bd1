"""The repair loops: what makes up for the messages a Faust consumer skips.

Faust can skip offsets around a rebalance (README, "Lost updates";
ARCHITECTURE.md, "Re-drives from the edge"): a message the broker has may never
reach its agent. No invariant may rest on one send, so three loops send again
what a skip would otherwise lose for good. Each is idempotent at its receiver,
so a copy of something that did arrive changes nothing:

- ``redrive_unconfirmed_orders`` (webview): an accepted PlaceOrder whose saga
  shows no event yet is sent again, so an order the HTTP edge answered 202 for
  cannot stay unstarted. The orchestrator ignores a PlaceOrder for a saga it
  has or forgot; sends stop at ``Settings.redrive_window_s`` for that reason.
- ``refresh_stale_order_views`` (webview): an open order view unchanged for a
  while sends RepublishOrder, and the orchestrator answers with the saga's
  latest event again, so a view that missed its order's last event does not
  show it in flight forever.
- ``republish_changed_stock`` (inventory): the levels of every SKU that changed
  since the last tick are published once more (same version, same event id),
  so a stock view that missed a SKU's last StockChanged converges without
  waiting for a next change that may never come.

The agents register them as timers (:func:`as_timer`), under their own names:
what the ``ordersaga_timer_failures_total`` metric labels them with.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, ParamSpec

from ordersaga.schemas.messages import PlaceOrder, RepublishOrder

if TYPE_CHECKING:
    from ordersaga.shell.node import Node
    from ordersaga.web.desk import Desk

log = logging.getLogger(__name__)

P = ParamSpec("P")


def as_timer(
    repair: Callable[P, Awaitable[None]], *args: P.args, **kwargs: P.kwargs
) -> Callable[[], Awaitable[None]]:
    """``repair`` bound to its arguments, as a timer's body named after the repair.

    Not ``functools.wraps``: Faust reads the body's signature through
    ``__wrapped__`` and would pass the app to a repair that takes arguments.
    """

    async def tick() -> None:
        await repair(*args, **kwargs)

    tick.__name__ = tick.__qualname__ = getattr(repair, "__name__", "repair")
    tick.__doc__ = repair.__doc__
    tick.__module__ = repair.__module__
    return tick


async def redrive_unconfirmed_orders(node: Node, desk: Desk) -> None:
    """Send PlaceOrder again for accepted orders of which no event is projected yet.

    The HTTP edge answers 202 once the broker has the command, but a consumer can
    still skip it (seen under SIGKILL: an accepted order never started). Each
    webview worker claims due orders from Redis, so one re-sends each; duplicates
    are harmless since the orchestrator ignores a PlaceOrder for a saga it has.
    """
    settings = node.settings
    now = time.time()
    for record in await desk.intake.claim_unconfirmed(now, settings.redrive_after_s):
        # Kept by whichever webview accepted the order, maybe a newer one: its added
        # fields are ignored, as when reading a topic.
        command = PlaceOrder.model_validate(record["command"], extra="ignore")
        if now - record["accepted_at"] >= settings.redrive_window_s:
            # The orchestrator may have run and forgotten it: sending could run it twice.
            await desk.intake.drop_unconfirmed(command.order_id)
            node.metrics.orders_unstarted.inc()
            log.error(
                "order %s: no event projected %.0f s after acceptance; not re-sent",
                command.order_id,
                now - record["accepted_at"],
            )
            continue
        await node.send(
            command,
            key=command.order_id,
            correlation_id=record.get("correlation_id") or command.order_id,
            event_id=f"{command.order_id}:place:{now:.3f}",
            acked=True,
        )
        node.metrics.orders_redriven.inc()


async def refresh_stale_order_views(node: Node, desk: Desk) -> None:
    """Ask for the latest event of open order views that stayed unchanged too long.

    A consumer can skip messages around a rebalance, and a view that missed its
    order's last event would show it in flight forever. The orchestrator answers
    RepublishOrder with that event again; a view that has it ignores the copy.
    """
    for order_id in await desk.store.claim_stale_views(time.time()):
        await node.send(RepublishOrder(order_id=order_id), key=order_id, correlation_id=order_id)
        node.metrics.views_refreshed.inc()


async def republish_changed_stock(
    changed: set[str], publish: Callable[[str], Awaitable[None]]
) -> None:
    """Publish the levels of every SKU that changed since the last tick once more.

    A consumer can skip messages around a rebalance; a web view that missed a SKU's
    last StockChanged would show old levels until the next change, which may never
    come. The copy has the same version and event id, so a view that has it ignores
    it. The cost is one message per changed SKU per tick, and no tick looks at a
    SKU that did not change. ``changed`` is emptied as it goes: the inventory
    worker adds each SKU it changes, and every SKU of its partitions after a
    rebalance (a view may have missed the last change of a SKU that moved).
    """
    while changed:
        await publish(changed.pop())
