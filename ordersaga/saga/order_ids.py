"""Order ids that carry their own birth time, so an order id runs once, ever.

The web view mints ``ord_`` + 12 hex digits of the minting time in milliseconds
+ 12 random hex digits. Within the retention period the orchestrator's saga
table remembers every order it started (a saga is forgotten at the earliest
``retention_s`` after it ended, so after it was accepted); past it, the id
itself says the order is too old to be new. Together they are an exact record
of every order id ever started that costs no memory: a PlaceOrder seen again
after its saga was forgotten (a dead letter replayed, an offset reset, a record
copied) is answered with nothing, whatever its envelope says.

An id of another form (a client producing to Kafka itself) has no birth time;
the time its PlaceOrder was first sent (the envelope's) stands in for it.
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


def may_start(order_id: str, sent_at: float, now: float, retention_s: float) -> bool:
    """Whether a PlaceOrder whose saga the table does not hold may start one.

    Only if the order is younger than the retention: an older one may have run
    and been forgotten. ``sent_at`` is when the PlaceOrder was sent (a re-send
    by the web view is younger than its order, never older than the id).
    """
    born = born_at(order_id)
    return now - (born if born is not None else sent_at) < retention_s
