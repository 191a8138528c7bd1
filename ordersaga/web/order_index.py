"""Orders newest first, filtered by status, customer and time: the operators' queries.

Every order is filed by the time it was placed (``ORDERS_BY_TIME``, and per
customer in ``CUSTOMER_ORDERS``) by the order projection; each view's hash keeps
its status. One Lua script walks an index newest first and keeps what matches,
so a page costs one round trip; it looks at no more than ``max_scan`` orders
per request, and says where to go on (the cursor) when it stopped early.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from ordersaga.web.redis_keys import CUSTOMER_ORDERS, ORDER, ORDERS_BY_TIME, text_of

# KEYS: the index. ARGV: upper bound ('+inf' or '(score'), lower bound (score or
# '-inf'), limit, status ('' for any), most looked at, order key prefix.
# Returns the matching ids, the score of the last order looked at ('' if none) and
# 1 when the index has nothing older to look at. An id whose view has expired is
# dropped from the index on the way. ``max_scan`` bounds how long the script holds
# Redis (every client waits meanwhile): 5,000 steps a call let one admin's sparse
# ?status= listing stall the store; ORDERSAGA_MAX_LISTING_SCAN (500) is the budget.
_PAGE = """
local limit, max_scan = tonumber(ARGV[3]), tonumber(ARGV[5])
local out, scanned, last, high, done = {}, 0, '', ARGV[1], 0
while #out < limit and scanned < max_scan do
  local batch = redis.call(
    'ZREVRANGEBYSCORE', KEYS[1], high, ARGV[2], 'WITHSCORES', 'LIMIT', 0, 200)
  if #batch == 0 then
    done = 1
    break
  end
  for i = 1, #batch, 2 do
    local id = batch[i]
    last = batch[i + 1]
    scanned = scanned + 1
    local status = redis.call('HGET', ARGV[6] .. id, 'status')
    if not status then
      redis.call('ZREM', KEYS[1], id)
    elseif ARGV[4] == '' or status == ARGV[4] then
      table.insert(out, id)
    end
    if #out >= limit or scanned >= max_scan then break end
  end
  high = '(' .. last
end
return {out, last, done}
"""


class OrderIndex:
    """Pages of order ids, newest first."""

    def __init__(self, client: aioredis.Redis, max_scan: int = 500) -> None:
        self.redis = client
        self.max_scan = max_scan
        self._page = client.register_script(_PAGE)

    async def page(
        self,
        *,
        limit: int,
        status: str | None = None,
        customer_id: str | None = None,
        since: float | None = None,
        before: float | None = None,
    ) -> tuple[list[str], float | None]:
        """Up to ``limit`` ids of orders placed after ``since`` and before ``before``.

        The second value is the cursor of the next page (None when this one is the
        last): the placing time of the last order looked at.
        """
        index = CUSTOMER_ORDERS + customer_id if customer_id else ORDERS_BY_TIME
        found: Any = await self._page(
            keys=[index],
            args=[
                f"({before}" if before is not None else "+inf",
                since if since is not None else "-inf",
                limit,
                status or "",
                self.max_scan,
                ORDER,
            ],
        )
        ids = [text_of(i) for i in found[0]]
        last = text_of(found[1])
        # Stopped by the limit or the scan bound, not by the end: there may be more.
        return ids, float(last) if last and not int(found[2]) else None
