"""The Redis users `ordersaga run` makes, and a TLS Redis named by its URL."""

from __future__ import annotations

from pathlib import Path

from redis.asyncio.connection import SSLConnection

from ordersaga.runtime.redis_users import GROUP_USERS, RULES, redis_users
from ordersaga.web.read_model import ViewStore


def test_the_default_user_is_off_and_each_group_has_its_keys(tmp_path: Path) -> None:
    users = redis_users(tmp_path, 6390)
    lines = users.acl_file.read_text().splitlines()
    assert lines[0].startswith("user default off")
    webview = next(line for line in lines if line.startswith("user ordersaga-webview "))
    payments = next(line for line in lines if line.startswith("user ordersaga-payments "))
    assert "~ordersaga:* " in webview and "-@dangerous" in webview
    assert "~ordersaga:gateway:order:* " in payments and "~ordersaga:*" not in payments
    assert users.acl_file.stat().st_mode & 0o077 == 0
    assert set(GROUP_USERS.values()) < set(RULES)


def test_passwords_are_kept_across_runs_and_in_the_urls(tmp_path: Path) -> None:
    first = redis_users(tmp_path, 6390)
    again = redis_users(tmp_path, 6391)
    assert first.passwords == again.passwords
    password = again.passwords["ordersaga-payments"]
    assert again.url("ordersaga-payments") == (
        f"redis://ordersaga-payments:{password}@127.0.0.1:6391/0"
    )
    assert f">{password} " in again.acl_file.read_text()


def test_a_tls_redis_is_named_by_its_url() -> None:
    store = ViewStore.from_url(
        "rediss://ordersaga-webview:pw@redis.example:6380/0?ssl_ca_certs=/etc/ca.pem",
        finished_ttl_s=60,
    )
    pool = store.redis.connection_pool
    assert pool.connection_class is SSLConnection
    assert pool.connection_kwargs["ssl_ca_certs"] == "/etc/ca.pem"
    assert pool.connection_kwargs["username"] == "ordersaga-webview"
