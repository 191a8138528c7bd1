"""The service registry on the running system: every worker listed, a killed one gone."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import httpx
import pytest

from ordersaga.app.groups import GROUPS
from tests.integration.conftest import System
from tests.integration.support import wait_for

pytestmark = pytest.mark.integration


def services(client: httpx.Client) -> dict[str, Any]:
    r = client.get("/services")
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_a_killed_worker_shows_gone_within_three_heartbeats_and_its_replacement_up(
    system: System, client: httpx.Client
) -> None:
    # Every group has a live worker, each telling its partitions
    def all_up() -> dict[str, Any] | None:
        listing = services(client)
        up = {s["group"] for s in listing["services"] if s["state"] == "up"}
        return listing if up >= {g.name for g in GROUPS} else None

    listing = wait_for(all_up, timeout=30)
    period = float(listing["heartbeat_s"])
    [victim] = [s for s in listing["services"] if s["group"] == "shipping" and s["state"] == "up"]
    assert victim["partitions"] and victim["port"] > 0 and victim["version"]
    assert client.get("/services/shipping/health").json()["status"] == "ok"

    # When it is SIGKILLed
    os.kill(victim["pid"], signal.SIGKILL)
    killed_at = time.monotonic()

    def state_of_victim() -> str:
        found = [s for s in services(client)["services"] if s["instance"] == victim["instance"]]
        return found[0]["state"] if found else "missing"

    # Then it shows as gone within three heartbeat periods (plus one of polling)
    wait_for(lambda: state_of_victim() == "gone", timeout=3 * period + 5, interval=0.2)
    assert time.monotonic() - killed_at <= 4 * period + 1

    # And the supervisor's replacement, a new instance, shows as up
    def replacement() -> dict[str, Any] | None:
        for s in services(client)["services"]:
            if s["group"] == "shipping" and s["state"] == "up" and s["pid"] != victim["pid"]:
                return dict(s)
        return None

    new = wait_for(replacement, timeout=90, interval=0.5)
    assert new["instance"] != victim["instance"]
    health = client.get("/services/shipping/health")
    assert health.status_code == 200 and health.json()["up"] >= 1


def test_a_group_health_of_no_known_group_is_404(client: httpx.Client) -> None:
    r = client.get("/services/nosuchgroup/health")
    assert r.status_code == 404
    assert r.json()["problems"][0]["field"] == "group"
