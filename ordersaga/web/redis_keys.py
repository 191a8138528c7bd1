"""Where the web view keeps what in Redis: the key names of its read model and intake.

Both live in one Redis and touch each other's keys atomically (projecting an
order's first event confirms its PlaceOrder), so their names are in one place.
"""

from __future__ import annotations

PREFIX = "ordersaga:"
ORDER = PREFIX + "order:"  # hash: seq, order (snapshot JSON)
EVENTS = ":events"  # list of history entries, after ORDER + id
STOCK = PREFIX + "stock:"  # StockChanged JSON
SKUS = PREFIX + "skus"  # set of SKUs
SKUS_BY_NAME = PREFIX + "skus-by-name"  # sorted set, every score 0: SKUs in byte order
ACCEPTED = PREFIX + "accepted:"  # accepted-over-HTTP record
IDEMPOTENCY = PREFIX + "idempotency:"  # kind:sha256(Idempotency-Key) -> first request
UNCONFIRMED = PREFIX + "unconfirmed"  # sorted set: order id -> when to re-send next
UNCONFIRMED_ORDERS = PREFIX + "unconfirmed:orders"  # hash: order id -> accepted_at, command
OPEN = PREFIX + "open"  # sorted set: order id of an open view -> when to refresh it
ENDED = PREFIX + "ended"  # counter: orders whose terminal event was projected
CUSTOMER_ORDERS = PREFIX + "customer-orders:"  # sorted set: order id -> placed at
ORDERS_BY_TIME = PREFIX + "orders-by-time"  # sorted set: order id -> placed at, every order
STATS = PREFIX + "stats:"  # hash per minute: outcome and step-latency counters


def text_of(value: bytes | str) -> str:
    """A Redis reply as text (the client answers bytes)."""
    return value.decode() if isinstance(value, bytes) else value
