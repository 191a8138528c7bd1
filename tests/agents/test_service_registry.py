"""The service registry: every worker's heartbeat, and the web view that keeps them."""

from __future__ import annotations

import inspect
from datetime import UTC, datetime, timedelta

import pytest

from ordersaga.agents import inventory, webview
from ordersaga.schemas.heartbeats import ServiceHeartbeat
from ordersaga.shell.topics import SERVICES
from ordersaga.web.service_registry import health_of, state_of

pytestmark = pytest.mark.usefixtures("store")


@pytest.fixture
def outbox(capture):
    return capture(inventory.node)


def beat(instance: str = "inventory@6068:123", group: str = "inventory", age_s: float = 0.0):
    now = datetime.now(UTC) - timedelta(seconds=age_s)
    return ServiceHeartbeat(
        group=group,
        instance=instance,
        host="127.0.0.1",
        port=6068,
        pid=123,
        started_at=now - timedelta(seconds=60),
        sent_at=now,
        interval_s=2.0,
        partitions=("inventory.commands[0]",),
        lag=0,
        version="0.1.0",
    )


@pytest.mark.parametrize(
    ("age_s", "state"), [(0.0, "up"), (3.9, "up"), (4.5, "stale"), (5.9, "stale"), (6.5, "gone")]
)
def test_a_worker_is_up_stale_or_gone_by_the_age_of_its_last_heartbeat(age_s, state):
    record = {"sent_epoch": 1_000.0, "interval_s": 2.0}
    assert state_of(record, 1_000.0 + age_s) == state


def test_a_group_is_ok_while_all_live_degraded_with_a_stale_one_down_with_none_up():
    assert health_of(["up", "gone"]) == "ok"
    assert health_of(["up", "stale"]) == "degraded"
    assert health_of(["stale", "gone"]) == "down"
    assert health_of([]) == "down"


async def test_every_worker_announces_itself_on_the_services_topic(outbox):
    announce = inspect.unwrap(inventory.node.announcer.announce)
    await announce()
    [sent] = outbox.on(SERVICES)
    message = sent.message
    assert isinstance(message, ServiceHeartbeat)
    assert (message.group, message.pid, message.interval_s) == (
        "inventory",
        inventory.node.announcer.pid,
        inventory.node.settings.heartbeat_s,
    )
    assert sent.key == message.instance.encode()
    node = inventory.node
    port = node.app.conf.web_port
    assert message.instance == f"inventory@{node.host}:{port}:{node.pid}.{node.start_token}"


def test_two_starts_of_one_worker_on_one_host_port_and_pid_are_two_instances():
    # As two starts of a pod are (pid 1, the same port): only the start token differs.
    first, second = (
        inventory.build(inventory.node.settings),
        inventory.build(inventory.node.settings),
    )
    assert (first.node.pid, first.node.host) == (second.node.pid, second.node.host)
    assert first.node.instance != second.node.instance


async def test_the_web_view_keeps_the_latest_heartbeat_of_each_instance(drive):
    async with drive(webview.keep_services, webview.node) as d:
        await d.put(beat(age_s=1.0), key="inventory@6068:123", topic=SERVICES)
        await d.put(beat(age_s=5.0), key="inventory@6068:123", topic=SERVICES)  # older: ignored
        await d.put(
            beat("orders@6067:9", "orders", age_s=10.0), key="orders@6067:9", topic=SERVICES
        )
    services = {s["instance"]: s for s in await webview.desk.registry.services()}
    assert services["inventory@6068:123"]["state"] == "up"
    assert services["inventory@6068:123"]["age_s"] < 4
    assert services["orders@6067:9"]["state"] == "gone"


async def test_a_heartbeat_of_no_known_group_is_dead_lettered(drive, capture):
    outbox = capture(webview.node)
    async with drive(webview.keep_services, webview.node) as d:
        await d.put(beat("rogue@1:1", "rogue"), key="rogue@1:1", topic=SERVICES)
    [dead] = outbox.on(f"{SERVICES}.dlq")
    assert "not an agent group" in dead.header("dlq.error")
    assert await webview.desk.registry.services() == []


async def test_the_registry_is_bounded_and_forgets_long_gone_workers(drive, capture, monkeypatch):
    registry = webview.desk.registry
    monkeypatch.setattr(registry, "max_services", 2)
    outbox = capture(webview.node)
    async with drive(webview.keep_services, webview.node) as d:
        for i in range(3):
            await d.put(beat(f"inventory@1:{i}"), key=f"inventory@1:{i}", topic=SERVICES)
    assert len(await registry.services()) == 2
    [dead] = outbox.on(f"{SERVICES}.dlq")
    assert "its limit" in dead.header("dlq.error")
    # Long gone instances are dropped when the registry is read
    monkeypatch.setattr(registry, "forget_after_s", 0.0)
    assert await registry.services() == []
