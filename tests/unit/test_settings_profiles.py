"""Broker profiles as Settings presets, and the environment the runtime hands its workers."""

from __future__ import annotations

import pytest

from ordersaga.config.settings import Settings
from ordersaga.runtime.worker_env import as_env, with_profile


def test_the_tansu_profile_polls_fast_unless_the_user_chose_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ORDERSAGA_FETCH_MAX_WAIT_MS", raising=False)
    tansu = with_profile(Settings(), "tansu", kafka_broker="127.0.0.1:9999")
    assert (tansu.fetch_max_wait_ms, tansu.rebalance_timeout_s) == (20, 3.0)
    assert with_profile(Settings(), "kafka").fetch_max_wait_ms == Settings().fetch_max_wait_ms
    monkeypatch.setenv("ORDERSAGA_FETCH_MAX_WAIT_MS", "250")
    assert with_profile(Settings(), "tansu").fetch_max_wait_ms == 250


def test_workers_read_back_exactly_the_settings_they_were_handed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    handed = with_profile(
        Settings(), "tansu", kafka_broker="127.0.0.1:9999", redis_url="redis://h:1/0"
    )
    env = as_env(handed)
    assert env["KAFKA_BROKER"] == "127.0.0.1:9999"
    assert env["REDIS_URL"] == "redis://h:1/0"
    assert env["ORDERSAGA_FETCH_MAX_WAIT_MS"] == "20"
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert Settings() == handed
