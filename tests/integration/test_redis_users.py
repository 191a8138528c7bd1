"""The Redis `ordersaga run` starts: no client without a password, each group its own user."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import redis
from redis.exceptions import NoPermissionError

from tests.integration.conftest import System

pytestmark = pytest.mark.integration


def _port(system: System) -> int:
    return int(system.redis_url.rsplit(":", 1)[1].split("/")[0])


def _as(system: System, user: str) -> redis.Redis:
    passwords = json.loads((system.data_dir / "redis" / "users.json").read_text())
    return redis.Redis(port=_port(system), username=user, password=passwords[user])


def test_a_client_without_a_password_is_refused(system: System) -> None:
    with pytest.raises(redis.AuthenticationError), redis.Redis(port=_port(system)) as anyone:
        anyone.set("ordersaga:order:forged", "{}")


def test_payments_cannot_touch_the_read_model(system: System) -> None:
    with _as(system, "ordersaga-payments") as payments, pytest.raises(NoPermissionError):
        payments.set("ordersaga:order:forged", "{}")


def test_the_web_view_cannot_run_dangerous_commands(system: System) -> None:
    with _as(system, "ordersaga-webview") as webview:
        assert webview.exists("ordersaga:skus") in (0, 1)  # its own keys it may read
        with pytest.raises(NoPermissionError):
            webview.flushall()


def test_only_the_groups_that_use_redis_are_given_a_url(system: System) -> None:
    published = json.loads((system.data_dir / "supervisor.json").read_text())
    assert (system.data_dir / "supervisor.json").stat().st_mode & 0o077 == 0
    seen = {}
    for worker in published["workers"]:
        environ = Path(f"/proc/{worker['pid']}/environ").read_bytes().split(b"\0")
        urls = [v.split(b"=", 1)[1].decode() for v in environ if v.startswith(b"REDIS_URL=")]
        seen[worker["group"]] = urls[0].split("://", 1)[1].split(":", 1)[0] if urls else None
    assert seen == {
        "webview": "ordersaga-webview",
        "orders": None,
        "inventory": None,
        "payments": "ordersaga-payments",
        "shipping": None,
        "notifications": None,
        "customers": None,
    }
