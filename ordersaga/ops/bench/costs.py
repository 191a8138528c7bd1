"""What a saga costs besides CPU: handled and produced messages, Kafka requests, Redis calls.

``snapshot`` reads every counter the figures come from at one moment: each
worker's ``/metrics`` (``ordersaga_messages_handled_total`` and
``ordersaga_kafka_requests_total``), the end offset of every topic, and the
calls Redis has served (``INFO commandstats``). ``per_saga`` divides the
difference of two snapshots by the sagas that ended between them. The pure
parts (parsing, differences, division) are apart from the reading, for tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from ordersaga.adapters.kafka_clients import new_consumer
from ordersaga.ops.relay import RELAY_PREFIX
from ordersaga.runtime.system import Runtime

HANDLED = "ordersaga_messages_handled"
KAFKA_REQUESTS = "ordersaga_kafka_requests"


# ------------------------------------------------------------------- parsing


def parse_worker_metrics(text: str) -> tuple[float, dict[str, float]]:
    """Handled messages (all labels summed) and Kafka requests by ``api`` from /metrics text."""
    handled, requests = 0.0, dict[str, float]()
    for family in text_string_to_metric_families(text):
        if family.name not in (HANDLED, KAFKA_REQUESTS):
            continue
        for sample in family.samples:
            if not sample.name.endswith("_total"):
                continue  # the _created timestamps
            if family.name == HANDLED:
                handled += sample.value
            else:
                api = sample.labels.get("api", "?")
                requests[api] = requests.get(api, 0.0) + sample.value
    return handled, requests


def parse_commandstats_calls(info: Mapping[str, Any]) -> int:
    """Calls of every command summed, from redis-py's parsed ``INFO commandstats``."""
    return sum(
        int(v.get("calls", 0))
        for k, v in info.items()
        if k.startswith("cmdstat_") and isinstance(v, Mapping)
    )


# ----------------------------------------------------------------- snapshots


@dataclass
class Snapshot:
    """Every counter at one moment; a figure that could not be read is left out."""

    at: float
    # Worker name -> its group, handled messages, Kafka requests by api.
    groups: dict[str, str] = field(default_factory=dict)
    handled: dict[str, float] = field(default_factory=dict)
    requests: dict[str, dict[str, float]] = field(default_factory=dict)
    end_offsets: dict[str, int] | None = None  # per topic, partitions summed
    redis_calls: int | None = None
    errors: list[str] = field(default_factory=list)


def _delta(before: Mapping[str, float], after: Mapping[str, float]) -> dict[str, float]:
    # A key missing before started at 0 (a counter's first increment creates it).
    return {k: v - before.get(k, 0) for k, v in after.items()}


def per_saga(before: Snapshot, after: Snapshot, sagas: int) -> dict[str, Any]:
    """The counters' growth from ``before`` to ``after`` divided by ``sagas``.

    A worker missing from either snapshot (unreadable, or restarted: its
    counters went down) is left out and named in ``incomplete``.
    """
    per = max(sagas, 1)
    handled_by_group: dict[str, float] = {}
    requests_by_api: dict[str, float] = {}
    incomplete = sorted(set(before.handled) ^ set(after.handled))
    for name, end in after.handled.items():
        if name not in before.handled:
            continue
        if end < before.handled[name]:
            incomplete.append(name)
            continue
        group = after.groups.get(name, name)
        handled_by_group[group] = handled_by_group.get(group, 0.0) + end - before.handled[name]
        for api, n in _delta(before.requests.get(name, {}), after.requests.get(name, {})).items():
            requests_by_api[api] = requests_by_api.get(api, 0.0) + n
    produced = (
        {t: n for t, n in _delta(before.end_offsets, after.end_offsets).items() if n}
        if before.end_offsets is not None and after.end_offsets is not None
        else None
    )
    redis = (
        # Less one: the first snapshot's own INFO, which only the second one counts.
        max(0, after.redis_calls - before.redis_calls - 1)
        if before.redis_calls is not None and after.redis_calls is not None
        else None
    )

    def share(n: float) -> float:
        return round(n / per, 2)

    return {
        "sagas": sagas,
        "seconds": round(after.at - before.at, 2),
        "handled_per_saga": (
            {g: share(n) for g, n in sorted(handled_by_group.items())} if handled_by_group else None
        ),
        "handled_per_saga_total": share(sum(handled_by_group.values()))
        if handled_by_group
        else None,
        "kafka_requests_per_saga": (
            {a: share(n) for a, n in sorted(requests_by_api.items(), key=lambda x: -x[1]) if n}
            if handled_by_group
            else None
        ),
        "kafka_requests_per_saga_total": share(sum(requests_by_api.values()))
        if handled_by_group
        else None,
        "produced_per_saga": (
            {t: share(n) for t, n in sorted(produced.items(), key=lambda x: -x[1])}
            if produced is not None
            else None
        ),
        "produced_per_saga_total": share(sum(produced.values())) if produced is not None else None,
        "redis_calls_per_saga": share(redis) if redis is not None else None,
        "incomplete": sorted(set(incomplete)),
        "errors": before.errors + after.errors,
    }


# ------------------------------------------------------------------- reading


async def _scrape(client: httpx.AsyncClient, url: str) -> tuple[float, dict[str, float]]:
    r = await client.get(f"{url}/metrics")
    r.raise_for_status()
    return parse_worker_metrics(r.text)


async def _end_offsets(consumer: AIOKafkaConsumer) -> dict[str, int]:
    await consumer._client.force_metadata_update()
    tps = [
        TopicPartition(t, p)
        for t in sorted(await consumer.topics())
        if not t.startswith(RELAY_PREFIX)
        for p in sorted(consumer.partitions_for_topic(t) or ())
    ]
    by_topic: dict[str, int] = {}
    for tp, offset in (await consumer.end_offsets(tps)).items():
        by_topic[tp.topic] = by_topic.get(tp.topic, 0) + offset
    return by_topic


@dataclass
class CostProbe:
    """The clients ``snapshot`` reads with, opened once for the run's two snapshots."""

    bootstrap: str
    redis_url: str
    runtime: Runtime | None
    _consumer: AIOKafkaConsumer | None = None
    _http: httpx.AsyncClient | None = None
    _redis: Any = None

    async def start(self) -> None:
        import redis.asyncio as aioredis

        self._http = httpx.AsyncClient(timeout=5.0)
        self._redis = aioredis.from_url(self.redis_url)
        self._consumer = new_consumer(bootstrap=self.bootstrap, enable_auto_commit=False)
        await self._consumer.start()

    async def stop(self) -> None:
        with contextlib.suppress(Exception):
            if self._http is not None:
                await self._http.aclose()
        with contextlib.suppress(Exception):
            if self._redis is not None:
                await self._redis.aclose()
        with contextlib.suppress(Exception):
            if self._consumer is not None:
                await self._consumer.stop()

    async def snapshot(self) -> Snapshot:
        """Every counter now; what cannot be read is named in ``errors``."""
        assert self._http is not None and self._consumer is not None
        snap = Snapshot(at=time.time())
        workers = list(self.runtime.workers) if self.runtime is not None else []

        async def worker(w: Any) -> None:
            assert self._http is not None and self.runtime is not None
            try:
                handled, requests = await _scrape(self._http, self.runtime.probes_url(w))
            except (httpx.HTTPError, ValueError) as exc:
                snap.errors.append(f"{w.name} /metrics: {type(exc).__name__}: {exc}")
                return
            snap.groups[w.name] = w.group.name
            snap.handled[w.name] = handled
            snap.requests[w.name] = requests

        async def offsets() -> None:
            assert self._consumer is not None
            try:
                snap.end_offsets = await _end_offsets(self._consumer)
            except Exception as exc:  # a figure left out, the run goes on
                snap.errors.append(f"end offsets: {type(exc).__name__}: {exc}")

        async def redis_calls() -> None:
            try:
                info = await self._redis.info("commandstats")
                snap.redis_calls = parse_commandstats_calls(info)
            except Exception as exc:
                snap.errors.append(f"redis INFO: {type(exc).__name__}: {exc}")

        await asyncio.gather(*(worker(w) for w in workers), offsets(), redis_calls())
        return snap
