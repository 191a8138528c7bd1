"""Order ids that carry their own birth time, so an order id runs once, ever.

The web view mints ``ord_`` + 12 hex digits of the minting time in milliseconds
+ 12 random hex digits. The orchestrator remembers every order it ran: its saga
while it is kept (the retention period after it ended), then a small entry
(``FORGOTTEN_ORDERS``, when it ended) for ``ORDERSAGA_ORDER_MEMORY_S`` more;
past that, the id itself says the order is too old to be new. A PlaceOrder seen
again at any time (a dead letter replayed, an offset reset, a record copied) is
answered with nothing, whatever its envelope says, and a first PlaceOrder that
arrives late (a lagging orchestrator) still starts, as long as it is younger
than the memory.

An id of another form (a client producing to Kafka itself) has no birth time;
the time its PlaceOrder was sent (the envelope's) stands in for it.
"""

from __future__ import annotations

import secrets

ORDER_ID_PREFIX = "ord_"
_TIME_DIGITS = 12
_RANDOM_DIGITS = 12


def mint_order_id(now: float) -> str:
    """A fresh order id born at ``now`` (epoch seconds)."""
    born = f"{int(now * 1000):0{_TIME_DIGITS}x}"
    return f"{ORDER_ID_PREFIX}{born}{secrets.token_hex(_RANDOM_DIGITS // 2)}"


def born_at(order_id: str) -> float | None:
    """When a minted order id was born (epoch seconds), or None for another form."""
    digits = order_id.removeprefix(ORDER_ID_PREFIX)
    if digits == order_id or len(digits) != _TIME_DIGITS + _RANDOM_DIGITS:
        return None
    try:
        return int(digits[:_TIME_DIGITS], 16) / 1000
    except ValueError:
        return None


def may_start(
    order_id: str, sent_at: float, now: float, memory_s: float, forgotten: bool = False
) -> bool:
    """Whether a PlaceOrder whose saga the table does not hold may start one.

    Not if the orchestrator remembers forgetting the order, nor if the order is
    older than that memory lasts (``memory_s``): it may have run and been
    forgotten. ``sent_at`` stands in for an id with no birth time.
    """
    if forgotten:
        return False
    born = born_at(order_id)
    return now - (born if born is not None else sent_at) < memory_s
