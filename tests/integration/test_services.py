"""The service registry on the running system: every worker of every group, live.

The chaos test SIGKILLs workers and checks that each shows as gone and its
group still has a live one; the shared system here must see no restart
(``test_no_restarts``).
"""

from __future__ import annotations

import httpx
import pytest

from ordersaga.shell.groups import GROUPS
from tests.integration.support import wait_for

pytestmark = pytest.mark.integration


def test_every_worker_of_every_group_is_listed_up_with_its_partitions(
    client: httpx.Client,
) -> None:
    def all_up() -> dict | None:  # type: ignore[type-arg]
        listing = client.get("/services").json()
        up = {s["group"] for s in listing["services"] if s["state"] == "up"}
        return listing if up >= {g.name for g in GROUPS} else None

    listing = wait_for(all_up, timeout=30)
    assert listing["heartbeat_s"] > 0
    for service in listing["services"]:
        if service["state"] == "up":
            assert service["port"] > 0 and service["pid"] > 0 and service["version"]
            assert service["age_s"] <= 2 * listing["heartbeat_s"] + 1
    shipping = [s for s in listing["services"] if s["group"] == "shipping" and s["state"] == "up"]
    assert shipping and any(
        p.startswith("shipping.commands[") for s in shipping for p in s["partitions"]
    )
    health = client.get("/services/shipping/health")
    assert health.status_code == 200 and health.json()["status"] == "ok"


def test_a_group_health_of_no_known_group_is_404(client: httpx.Client) -> None:
    r = client.get("/services/nosuchgroup/health")
    assert r.status_code == 404
    assert r.json()["problems"][0]["field"] == "group"
