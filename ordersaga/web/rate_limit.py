"""A token bucket per client, kept in Redis so every web view worker draws on the same one.

One Lua script reads, refills and takes from the bucket atomically, on Redis's
own clock (``TIME``), so workers whose clocks differ still agree. A bucket
expires once it would be full again: an idle client costs nothing, and a flood
of new clients (addresses, subjects) holds at most a few seconds' worth of keys.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis

PREFIX = "ordersaga:ratelimit:"
# The GETs' buckets: a budget apart, so reading never spends what a client may write.
READ_PREFIX = PREFIX + "read:"

# KEYS[1] the client's bucket; ARGV rate (tokens a second), burst (its size).
# Answers allowed (0/1), tokens left, seconds until a token, seconds until full.
_TAKE = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) + tonumber(now_parts[2]) / 1000000
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local held = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(held[1])
local at = tonumber(held[2])
if tokens == nil or at == nil then
  tokens = burst
  at = now
end
if now > at then
  tokens = math.min(burst, tokens + (now - at) * rate)
  at = now
end
local allowed = 0
local retry = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
else
  retry = (1 - tokens) / rate
end
local full_in = (burst - tokens) / rate
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(at))
redis.call('PEXPIRE', KEYS[1], math.ceil(full_in * 1000) + 1000)
return {allowed, tostring(tokens), tostring(retry), tostring(full_in)}
"""


@dataclass(frozen=True)
class Verdict:
    """One request's draw on its client's bucket."""

    allowed: bool
    tokens: float
    retry_after_s: float
    full_in_s: float
    rate: float
    burst: int

    @property
    def window_s(self) -> float:
        """How long an empty bucket takes to fill: the policy's window."""
        return self.burst / self.rate


class RateLimiter:
    """Buckets of ``burst`` requests refilled at ``rate`` a second, one per client."""

    def __init__(
        self, redis: aioredis.Redis, rate: float, burst: int, prefix: str = PREFIX
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a rate limit needs a rate over 0 and a burst of at least 1")
        self.redis = redis
        self.rate = rate
        self.burst = burst
        self.prefix = prefix
        self._take = redis.register_script(_TAKE)

    async def take(self, client: str) -> Verdict:
        """Take one request from ``client``'s bucket (refused when it is empty)."""
        allowed, tokens, retry, full_in = await self._take(
            keys=[self.prefix + client[:200]], args=[self.rate, self.burst]
        )
        return Verdict(
            allowed=bool(int(allowed)),
            tokens=float(tokens),
            retry_after_s=float(retry),
            full_in_s=float(full_in),
            rate=self.rate,
            burst=self.burst,
        )
