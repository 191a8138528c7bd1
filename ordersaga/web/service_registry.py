"""The service registry the web view keeps from ``ordersaga.services``, in Redis.

Each worker's last heartbeat, by instance; its state is read off its age when
asked: up within two heartbeat periods, stale within three, gone after that.
Gone instances are dropped after ``ORDERSAGA_FORGET_GONE_SERVICES_AFTER_S``, and
the registry holds at most ``ORDERSAGA_MAX_SERVICES`` instances, so heartbeats
from any number of processes cannot grow it without bound.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any, Literal

import orjson
import redis.asyncio as aioredis

from ordersaga.web.redis_keys import PREFIX, text_of

SERVICES = PREFIX + "services"  # hash: instance -> last heartbeat JSON

ServiceState = Literal["up", "stale", "gone"]
UP_WITHIN_PERIODS = 2
GONE_AFTER_PERIODS = 3

# KEYS: the registry hash. ARGV: instance, heartbeat JSON, sent at, most instances.
# A heartbeat older than the one kept changes nothing; a new instance past the
# bound is refused (-1).
_KEEP_HEARTBEAT = """
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current then
  if tonumber(cjson.decode(current)['sent_epoch']) >= tonumber(ARGV[3]) then return 0 end
elseif redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[4]) then
  return -1
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
"""


class RegistryFull(ValueError):
    """One more instance than the registry may hold (the heartbeat is dead-lettered)."""


def state_of(beat: dict[str, Any], now: float) -> ServiceState:
    """A worker's state from the age of its last heartbeat."""
    age = now - float(beat["sent_epoch"])
    period = float(beat["interval_s"])
    if age <= UP_WITHIN_PERIODS * period:
        return "up"
    if age <= GONE_AFTER_PERIODS * period:
        return "stale"
    return "gone"


def health_of(states: list[ServiceState]) -> str:
    """A group's health from its instances' states."""
    if "up" not in states:
        return "down"
    return "degraded" if "stale" in states else "ok"


class ServiceRegistry:
    """Heartbeats in, the list of workers and their states out."""

    def __init__(self, client: aioredis.Redis, max_services: int, forget_after_s: float) -> None:
        self.redis = client
        self.max_services = max_services
        self.forget_after_s = forget_after_s
        self._keep = client.register_script(_KEEP_HEARTBEAT)

    async def keep(self, beat: dict[str, Any], sent_at: datetime) -> bool:
        """Keep an instance's heartbeat unless a newer one is kept; True if kept."""
        record = {**beat, "sent_epoch": sent_at.timestamp()}
        kept = await self._keep(
            keys=[SERVICES],
            args=[beat["instance"], orjson.dumps(record), sent_at.timestamp(), self.max_services],
        )
        if int(kept) < 0:
            raise RegistryFull(f"the registry holds {self.max_services} instances, its limit")
        return bool(kept)

    async def services(self, now: float | None = None) -> list[dict[str, Any]]:
        """Every instance with its state and age, by group then instance; long-gone ones dropped."""
        now = time.time() if now is None else now
        out: list[dict[str, Any]] = []
        forget: list[str] = []
        for instance, raw in (await self.redis.hgetall(SERVICES)).items():
            beat = orjson.loads(raw)
            age = now - float(beat["sent_epoch"])
            if age > self.forget_after_s:
                forget.append(text_of(instance))
                continue
            out.append(
                {
                    **{k: v for k, v in beat.items() if k != "sent_epoch"},
                    "state": state_of(beat, now),
                    "age_s": round(age, 3),
                }
            )
        if forget:
            await self.redis.hdel(SERVICES, *forget)
        return sorted(out, key=lambda s: (s["group"], s["instance"]))
