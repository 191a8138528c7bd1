"""The web view's read model in Redis: order and stock views, projected and read.

Every webview worker answers every query, whichever partitions it owns: the
projections write here (idempotently, by sequence number or version, in one
Lua script each) and the routes read here. Faust's partitioned tables would
need table_route forwarding, which gives wrong answers with several workers
(faust-streaming issues 514 and 187), and GlobalTable stops updating on all but
one instance (faust-streaming issue 283).

What the HTTP edge remembers of the orders it accepted (before their views
exist) is ``ordersaga.web.intake``; the key names of both are in
``ordersaga.web.redis_keys``.
"""

from __future__ import annotations

import time
from typing import Any, NamedTuple, cast

import orjson
import redis.asyncio as aioredis
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

from ordersaga.web.redis_keys import (
    CUSTOMER_ORDERS,
    ENDED,
    EVENTS,
    OPEN,
    ORDER,
    ORDERS_BY_TIME,
    SKUS,
    SKUS_BY_NAME,
    STATS,
    STOCK,
    UNCONFIRMED,
    UNCONFIRMED_ORDERS,
    text_of,
)

STATS_TTL_S = 2 * 3600
# Every command of the web view is small; one slower than this means Redis is unwell.
REDIS_SOCKET_TIMEOUT_S = 2.0
# The longest wait between two refreshes of a view that stays open.
MAX_REFRESH_WAIT_S = 300

# One call folds a batch of order events (issue 21: a call per event, 26 arguments
# each, was a third of the web view's CPU in redis-py's packing and the pipeline).
# KEYS: the unconfirmed set and hash, the open set, the ended counter, every order by
# time; then four per event: its order's hash and events list, its customer's orders,
# the minute's stats hash.
# ARGV[1]: JSON {"c": [now, refresh after, most orders kept per customer, finished
# views' ttl, most orders listed, the stats' ttl], "e": [[seq, snapshot, entry, ttl
# (0 keeps), order id, terminal (1/0), placed at, status, the event's time (epoch),
# its name, the outcome ("" unless terminal), earlier entries [[seq, entry, name],
# ...]], ...]}; times as strings, so they keep every digit.
# Returns per event 1 if applied, 0 if its sequence number was seen.
# Any event of the order confirms that the orchestrator has it: nothing to re-send.
# An open (not terminal) view is due for a refresh if no newer event follows in time.
# The order is filed under its customer (and by time) by whichever of its events is
# projected first; the customer's list keeps its newest orders and lives as long as
# their views. The order's hash keeps its newest event's time (``at``), so the time
# since the previous event needs no read of the history. The minute's stats count
# outcomes and, per entry name, the time since the order's previous entry: what the
# operators' page shows.
_PROJECT_ORDERS = """
local a = cjson.decode(ARGV[1])
local now, refresh, per_customer, finished_ttl, listed, stats_ttl = unpack(a.c)
local applied = {}
for i, e in ipairs(a.e) do
  local k = 5 + 4 * (i - 1)
  local view, history, customer, stats = KEYS[k + 1], KEYS[k + 2], KEYS[k + 3], KEYS[k + 4]
  local order_id, at = e[5], e[9]
  redis.call('ZREM', KEYS[1], order_id)
  redis.call('HDEL', KEYS[2], order_id)
  local seen = redis.call('HMGET', view, 'seq', 'at')
  if seen[1] and tonumber(seen[1]) >= tonumber(e[1]) then
    applied[i] = 0
  else
    redis.call('HSET', view, 'seq', e[1], 'order', e[2], 'projected_at', now,
      'status', e[8], 'at', at)
    local before = seen[2]
    local function count_step(step)
      if before then
        local took = tonumber(at) - tonumber(before)
        if took >= 0 then
          redis.call('HINCRBYFLOAT', stats, 'step:' .. step .. ':sum', took)
          redis.call('HINCRBY', stats, 'step:' .. step .. ':count', 1)
        end
      end
      before = at
    end
    -- The entries the same decision made before this one, oldest first, each once.
    local from = tonumber(seen[1] or -1)
    for _, earlier in ipairs(e[12]) do
      if tonumber(earlier[1]) > from then
        redis.call('RPUSH', history, earlier[2])
        count_step(earlier[3])
      end
    end
    redis.call('RPUSH', history, e[3])
    count_step(e[10])
    if not seen[1] then
      if redis.call('ZADD', customer, 'NX', e[7], order_id) == 1 then
        redis.call('ZREMRANGEBYRANK', customer, 0, -(tonumber(per_customer) + 1))
        if tonumber(finished_ttl) > 0 then
          redis.call('EXPIRE', customer, tonumber(finished_ttl))
        end
      end
      if redis.call('ZADD', KEYS[5], 'NX', e[7], order_id) == 1 then
        redis.call('ZREMRANGEBYRANK', KEYS[5], 0, -(tonumber(listed) + 1))
      end
    end
    if e[11] ~= '' then redis.call('HINCRBY', stats, 'outcome:' .. e[11], 1) end
    redis.call('EXPIRE', stats, tonumber(stats_ttl))
    local ttl = tonumber(e[4])
    if ttl > 0 then
      redis.call('EXPIRE', view, ttl)
      redis.call('EXPIRE', history, ttl)
    end
    if tonumber(e[6]) == 1 then
      redis.call('ZREM', KEYS[3], order_id)
      redis.call('INCR', KEYS[4])
    else
      redis.call('ZADD', KEYS[3], tonumber(now) + tonumber(refresh), order_id)
    end
    applied[i] = 1
  end
end
return applied
"""
# The most events one call folds: Redis runs nothing else while a script runs.
EVENTS_PER_CALL = 64

# KEYS: the view's key, the set of ids. ARGV: version, JSON, id. A view kept only if
# newer than the one stored (stock levels, customer accounts).
KEEP_NEWER_VERSION = """
local current = redis.call('GET', KEYS[1])
if current and tonumber(cjson.decode(current)['version']) >= tonumber(ARGV[1]) then
  return 0
end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('SADD', KEYS[2], ARGV[3])
return 1
"""

# KEEP_NEWER_VERSION for a SKU, which is also filed by name (KEYS[3]), so that a page
# of the catalogue is one ZRANGEBYLEX, not the whole set read and sorted per call.
_PROJECT_STOCK = KEEP_NEWER_VERSION.replace(
    "return 1", "redis.call('ZADD', KEYS[3], 0, ARGV[3])\nreturn 1"
)

# KEYS: the set of SKUs, the SKUs by name. ARGV: from (ZRANGEBYLEX bound), how many.
# SKUs projected before the names were filed (a Redis kept from an older version) are
# filed once, on the first read that finds the two differ; after that a page is
# two O(1) counts and one ZRANGEBYLEX.
_STOCK_PAGE = """
if redis.call('ZCARD', KEYS[2]) < redis.call('SCARD', KEYS[1]) then
  for _, sku in ipairs(redis.call('SMEMBERS', KEYS[1])) do
    redis.call('ZADD', KEYS[2], 0, sku)
  end
end
return redis.call('ZRANGEBYLEX', KEYS[2], ARGV[1], '+', 'LIMIT', 0, tonumber(ARGV[2]))
"""

# KEYS: open set. ARGV: now, after, max wait, limit, order key prefix.
# Claims the views due for a refresh; the next one waits as long as the view has
# been unchanged (at least ``after``, at most the max wait).
_CLAIM_STALE_VIEWS = """
local now = tonumber(ARGV[1])
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[4]))
local out = {}
for _, order_id in ipairs(due) do
  local at = redis.call('HGET', ARGV[5] .. order_id, 'projected_at')
  if at then
    local age = now - tonumber(at)
    local wait = math.min(tonumber(ARGV[3]), math.max(tonumber(ARGV[2]), age))
    redis.call('ZADD', KEYS[1], now + wait, order_id)
    table.insert(out, order_id)
  else
    redis.call('ZREM', KEYS[1], order_id)
  end
end
return out
"""


def stats_minute(epoch: float) -> str:
    """The minute a time falls in, as the stats hashes are named (UTC, 2026-12-01T16:52)."""
    return time.strftime("%Y-%m-%dT%H:%M", time.gmtime(epoch))


async def _in_one_trip(
    client: aioredis.Redis, script: AsyncScript, calls: list[tuple[list[str], list[Any]]]
) -> list[Any]:
    """Call ``script`` once per (keys, args), pipelined: per call, its result or its error.

    By the script's sha alone: redis-py's pipeline asks SCRIPT EXISTS before every
    execute that runs a registered script, a second round trip per batch. A server
    that lost its scripts (restarted, flushed) answers NOSCRIPT; then the script is
    loaded and the calls are made again, which the projections absorb (each applies
    a version or a sequence number once).
    """
    for _ in range(2):
        async with client.pipeline(transaction=False) as pipe:
            for keys, args in calls:
                pipe.evalsha(script.sha, len(keys), *keys, *args)
            results: list[Any] = await pipe.execute(raise_on_error=False)
        if not any(isinstance(result, NoScriptError) for result in results):
            break
        await client.script_load(script.script)
    return results


class OrderProjection(NamedTuple):
    """One order event as the view folds it (``ViewStore.project_order``'s arguments)."""

    order_id: str
    seq: int
    snapshot: dict[str, Any]
    entry: dict[str, Any]
    terminal: bool
    placed_at: float = 0.0
    # History entries the same decision made before ``entry``, oldest first.
    earlier: tuple[dict[str, Any], ...] = ()


class ViewStore:
    """Order and stock views: their projections and the queries the routes make.

    Its Redis pool is the one the web view's other stores (the intake, customers,
    the registry ...) use too.
    """

    def __init__(
        self,
        client: aioredis.Redis,
        finished_ttl_s: int,
        refresh_after_s: float = 10.0,
        max_orders_per_customer: int = 1_000,
        max_listed_orders: int = 100_000,
    ) -> None:
        self.redis = client
        self.max_listed_orders = max_listed_orders
        self.finished_ttl_s = finished_ttl_s
        self.refresh_after_s = refresh_after_s
        self.max_orders_per_customer = max_orders_per_customer
        self._project_orders = client.register_script(_PROJECT_ORDERS)
        self._project_stock = client.register_script(_PROJECT_STOCK)
        self._stock_page = client.register_script(_STOCK_PAGE)
        self._claim_stale_views = client.register_script(_CLAIM_STALE_VIEWS)

    @classmethod
    def from_url(
        cls,
        url: str,
        finished_ttl_s: int,
        refresh_after_s: float = 10.0,
        max_connections: int = 50,
        pool_timeout_s: float = 5.0,
        max_orders_per_customer: int = 1_000,
        max_listed_orders: int = 100_000,
    ) -> ViewStore:
        """A store on the Redis at ``url`` (connects on first use).

        The pool is bounded and a request finding it busy waits for a connection
        (up to ``pool_timeout_s``) instead of failing at once, as redis-py's default
        pool does past 100 connections.
        """
        pool = aioredis.BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=pool_timeout_s,
            # A stalled Redis makes a request answer 503 in seconds, not hang.
            socket_connect_timeout=REDIS_SOCKET_TIMEOUT_S,
            socket_timeout=REDIS_SOCKET_TIMEOUT_S,
        )
        return cls(
            aioredis.Redis(connection_pool=pool),
            finished_ttl_s,
            refresh_after_s,
            max_orders_per_customer,
            max_listed_orders,
        )

    async def close(self) -> None:
        """Close the connection pool."""
        await self.redis.aclose()

    # ------------------------------------------------------------ projections

    async def project_order(
        self,
        order_id: str,
        seq: int,
        snapshot: dict[str, Any],
        entry: dict[str, Any],
        terminal: bool,
        placed_at: float = 0.0,
        earlier: tuple[dict[str, Any], ...] = (),
    ) -> bool:
        """Apply one order event unless its sequence number was seen; True if applied.

        ``entry`` has the event's ``at_epoch`` and ``type``; a terminal one counts its
        outcome (status and failure reason) in the minute's stats. ``earlier``: the
        entries its decision made before it, each appended once too.
        """
        [applied] = await self.project_orders(
            [OrderProjection(order_id, seq, snapshot, entry, terminal, placed_at, earlier)]
        )
        if isinstance(applied, Exception):
            raise applied
        return applied

    async def project_orders(self, projections: list[OrderProjection]) -> list[bool | Exception]:
        """Apply several order events in one round trip; per event, applied or its error.

        The web view folds the order events of one fetch at once, up to
        ``EVENTS_PER_CALL`` in one script call. A call that fails leaves its events
        to be folded again one by one; each applies once, by its sequence number.
        """
        chunks = [
            projections[i : i + EVENTS_PER_CALL]
            for i in range(0, len(projections), EVENTS_PER_CALL)
        ]
        calls = [self._orders_call(chunk) for chunk in chunks]
        results = await _in_one_trip(self.redis, self._project_orders, calls)
        applied: list[bool | Exception] = []
        for chunk, result in zip(chunks, results, strict=True):
            if isinstance(result, Exception):
                applied += [result] * len(chunk)
            else:
                applied += [bool(r) for r in result]
        return applied

    def _orders_call(self, projections: list[OrderProjection]) -> tuple[list[str], list[Any]]:
        keys = [UNCONFIRMED, UNCONFIRMED_ORDERS, OPEN, ENDED, ORDERS_BY_TIME]
        events: list[list[Any]] = []
        for p in projections:
            at_epoch = float(p.entry["at_epoch"])
            keys += (
                ORDER + p.order_id,
                ORDER + p.order_id + EVENTS,
                CUSTOMER_ORDERS + str(p.snapshot["customer_id"]),
                STATS + stats_minute(at_epoch),
            )
            outcome = ""
            if p.terminal:
                outcome = f"{p.snapshot['status']}:{p.snapshot.get('failure_reason') or ''}"
            events.append(
                [
                    str(p.seq),
                    orjson.dumps(p.snapshot).decode(),
                    orjson.dumps(p.entry).decode(),
                    self.finished_ttl_s if p.terminal else 0,
                    p.order_id,
                    1 if p.terminal else 0,
                    repr(float(p.placed_at)),
                    str(p.snapshot["status"]),
                    repr(at_epoch),
                    p.entry["type"],
                    outcome,
                    [[str(e["seq"]), orjson.dumps(e).decode(), e["type"]] for e in p.earlier],
                ]
            )
        settings = [
            repr(time.time()),
            repr(float(self.refresh_after_s)),
            self.max_orders_per_customer,
            self.finished_ttl_s,
            self.max_listed_orders,
            STATS_TTL_S,
        ]
        return keys, [orjson.dumps({"c": settings, "e": events})]

    async def project_stock(self, sku: str, version: int, levels: dict[str, Any]) -> bool:
        """Keep a SKU's levels unless a newer version is stored; True if applied."""
        applied = await self._project_stock(
            keys=[STOCK + sku, SKUS, SKUS_BY_NAME], args=[version, orjson.dumps(levels), sku]
        )
        return bool(applied)

    async def project_stocks(
        self, levels: list[tuple[str, int, dict[str, Any]]]
    ) -> list[bool | Exception]:
        """``project_stock`` for several (sku, version, levels) in one round trip."""
        calls = [
            ([STOCK + sku, SKUS, SKUS_BY_NAME], [version, orjson.dumps(level), sku])
            for sku, version, level in levels
        ]
        results = await _in_one_trip(self.redis, self._project_stock, calls)
        return [r if isinstance(r, Exception) else bool(r) for r in results]

    # ---------------------------------------------------------------- queries

    async def stats(
        self, minutes: int, now: float | None = None
    ) -> list[tuple[str, dict[str, str]]]:
        """The stats hashes of the last ``minutes`` minutes, newest first."""
        now = time.time() if now is None else now
        names = [stats_minute(now - 60 * i) for i in range(minutes)]
        async with self.redis.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.hgetall(STATS + name)
            found = await pipe.execute()
        return [
            (name, {text_of(k): text_of(v) for k, v in values.items()})
            for name, values in zip(names, found, strict=True)
        ]

    async def open_statuses(self, limit: int = 5_000) -> dict[str, int]:
        """Open (not terminal) views by status: the sagas in flight as the views see them."""
        ids = cast(list[bytes | str], await self.redis.zrange(OPEN, 0, limit - 1))
        if not ids:
            return {}
        async with self.redis.pipeline(transaction=False) as pipe:
            for order_id in ids:
                pipe.hget(ORDER + text_of(order_id), "status")
            statuses = await pipe.execute()
        counts: dict[str, int] = {}
        for status in statuses:
            if status is not None:
                counts[text_of(status)] = counts.get(text_of(status), 0) + 1
        return counts

    async def in_flight(self) -> int:
        """Orders accepted and not ended: awaiting their first event, or with an open view."""
        return (await self.flow())[0]

    async def flow(self) -> tuple[int, int]:
        """Orders in flight now, and orders ended so far (a counter that only grows)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zcard(UNCONFIRMED)
            pipe.zcard(OPEN)
            pipe.get(ENDED)
            unconfirmed, open_views, ended = await pipe.execute()
        return int(unconfirmed) + int(open_views), int(ended or 0)

    async def order(self, order_id: str) -> dict[str, Any] | None:
        """``{"seq", "order"}`` of a projected order, if any."""
        if order_id.endswith(EVENTS):
            # ORDER + "x:events" is order x's history list, not an order: no minted id
            # ends so, and reading the list as a hash was a WRONGTYPE (503).
            return None
        seq, order = await self.redis.hmget(ORDER + order_id, ["seq", "order"])
        if order is None or seq is None:
            return None
        return {"seq": int(seq), "order": orjson.loads(order)}

    async def events(self, order_id: str) -> list[dict[str, Any]]:
        """The order's history entries, oldest first."""
        return [orjson.loads(e) for e in await self.redis.lrange(ORDER + order_id + EVENTS, 0, -1)]

    async def stock(self, *skus: str) -> dict[str, dict[str, Any]]:
        """Levels of the given SKUs that exist."""
        if not skus:
            return {}
        values = await self.redis.mget([STOCK + s for s in skus])
        return {s: orjson.loads(v) for s, v in zip(skus, values, strict=True) if v is not None}

    async def all_stock(self) -> list[dict[str, Any]]:
        """Levels of every SKU, sorted by SKU."""
        skus = sorted(text_of(s) for s in await self.redis.smembers(SKUS))
        levels = await self.stock(*skus)
        return [levels[s] for s in skus if s in levels]

    async def stock_page(
        self, after: str | None, limit: int
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Levels of up to ``limit`` SKUs after ``after``, by name, and the next page's cursor."""
        low = f"({after}" if after is not None else "-"
        found = await self._stock_page(keys=[SKUS, SKUS_BY_NAME], args=[low, limit + 1])
        skus = [text_of(s) for s in found]
        more = len(skus) > limit
        skus = skus[:limit]
        levels = await self.stock(*skus)
        return [levels[s] for s in skus if s in levels], skus[-1] if more else None

    async def order_statuses(self, order_ids: list[str]) -> dict[str, str | None]:
        """The projected status of each order (None where there is no view)."""
        out: dict[str, str | None] = {}
        for i in range(0, len(order_ids), 500):
            batch = order_ids[i : i + 500]
            async with self.redis.pipeline(transaction=False) as pipe:
                for order_id in batch:
                    pipe.hget(ORDER + order_id, "order")
                values = await pipe.execute()
            for order_id, raw in zip(batch, values, strict=True):
                out[order_id] = orjson.loads(raw)["status"] if raw else None
        return out

    async def sku_count(self) -> int:
        """How many SKUs the catalogue holds."""
        return int(await self.redis.scard(SKUS))

    # ------------------------------------------------------------- open views

    async def claim_stale_views(self, now: float, limit: int = 500) -> list[str]:
        """Open order views unchanged for long enough to ask for their latest event."""
        ids = await self._claim_stale_views(
            keys=[OPEN], args=[now, self.refresh_after_s, MAX_REFRESH_WAIT_S, limit, ORDER]
        )
        return [text_of(i) for i in ids]

    async def open_ids(self) -> set[str]:
        """Orders whose view is not terminal yet."""
        return await self._members(OPEN)

    async def _members(self, key: str) -> set[str]:
        members = await self.redis.zrange(key, 0, -1)
        return {text_of(cast(bytes, m)) for m in members}
