"""What /ready means for the web view and for a saga group (ordersaga.shell.health)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any, cast

from ordersaga.shell.health import Health


def worker(*, recovered: bool, recovering: bool = False, rebalancing: bool = False) -> Any:
    completed = asyncio.Event()
    if recovered:
        completed.set()
    recovery = SimpleNamespace(completed=completed, in_recovery=recovering)
    return SimpleNamespace(tables=SimpleNamespace(recovery=recovery), rebalancing=rebalancing)


def health(app: Any, redis_up: bool = True, serves_api: bool = False) -> Health:
    async def redis() -> None:
        if not redis_up:
            raise ConnectionError("refused")

    async def broker() -> None:
        return None

    probe = Health(cast(Any, app), "127.0.0.1:1")
    probe.checks = {"broker": broker, "redis": redis}
    if serves_api:
        probe.serves_from = ("redis",)
    return probe


async def test_a_saga_group_is_not_ready_while_its_group_rebalances() -> None:
    app = worker(recovered=True)
    probe = health(app)
    assert await probe.readiness() == []
    app.rebalancing = True
    app.tables.recovery.completed.clear()
    assert await probe.readiness() == ["tables not recovered yet", "consumer group rebalancing"]


async def test_the_web_view_is_ready_through_later_rebalances_while_redis_answers() -> None:
    app = worker(recovered=False, rebalancing=True)
    probe = health(app, serves_api=True)
    assert await probe.readiness() == ["not started yet: its first assignment is not done"]
    app.tables.recovery.completed.set()
    app.rebalancing = False
    assert await probe.readiness() == []
    # Another replica joins or leaves: the group rebalances, the API still answers.
    app.tables.recovery.completed.clear()
    app.rebalancing = True
    assert await probe.readiness() == []


async def test_the_web_view_is_not_ready_while_its_redis_is_down() -> None:
    probe = health(worker(recovered=True), redis_up=False, serves_api=True)
    assert await probe.readiness() == ["redis down"]
