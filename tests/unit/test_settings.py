"""Settings that would break a guarantee are refused at start-up."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from ordersaga.config.settings import Settings
from ordersaga.runtime.worker_env import SETTINGS_ENV, as_env


def test_defaults_are_consistent() -> None:
    settings = Settings()
    assert settings.redrive_after_s < settings.redrive_window_s == settings.retention_s / 2
    assert settings.finished_view_ttl_s >= settings.idempotency_ttl_s


def test_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDERSAGA_RETENTION_S", "30")
    monkeypatch.setenv("ORDERSAGA_REDRIVE_AFTER_S", "4.5")
    settings = Settings()
    assert (settings.retention_s, settings.redrive_after_s, settings.redrive_window_s) == (
        30.0,
        4.5,
        15.0,
    )


@pytest.mark.parametrize(("retention", "after"), [(6, 3), (6, 5), (2, 2)])
def test_a_redrive_that_could_outlive_the_saga_is_refused(retention: float, after: float) -> None:
    # A PlaceOrder re-sent after the orchestrator forgot the order would run it twice.
    with pytest.raises(ValidationError, match="REDRIVE_AFTER_S"):
        Settings(retention_s=retention, redrive_after_s=after)


def test_orders_are_remembered_past_retention_and_charges_past_that() -> None:
    # A forgotten order must stay known until its id alone is too old to start,
    # and the gateway's idempotency must outlast any order that could still start.
    with pytest.raises(ValidationError, match="ORDER_MEMORY_S"):
        Settings(retention_s=120, order_memory_s=60)
    with pytest.raises(ValidationError, match="GATEWAY_JOURNAL_TTL_S"):
        Settings(order_memory_s=3600, gateway_journal_ttl_s=3600)
    assert Settings(order_memory_s=3600, gateway_journal_ttl_s=3601).order_memory_s == 3600


def test_views_must_outlive_idempotency_keys() -> None:
    with pytest.raises(ValidationError, match="FINISHED_VIEW_TTL_S"):
        Settings(idempotency_ttl_s=100, finished_view_ttl_s=99)
    assert Settings(idempotency_ttl_s=100, finished_view_ttl_s=100).finished_view_ttl_s == 100


def test_the_otlp_endpoint_and_log_format_are_settings_handed_to_workers_only_when_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A settings variable: the runtime drops it from what workers inherit and
    # passes it on from its own settings, so a worker traces only when the runtime does.
    assert {"OTEL_EXPORTER_OTLP_ENDPOINT", "ORDERSAGA_LOG_FORMAT"} <= SETTINGS_ENV
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" not in as_env(Settings())
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    monkeypatch.setenv("ORDERSAGA_LOG_FORMAT", "console")
    env = as_env(Settings())
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://127.0.0.1:4318"
    assert env["ORDERSAGA_LOG_FORMAT"] == "console"
    monkeypatch.setenv("ORDERSAGA_LOG_FORMAT", "xml")
    with pytest.raises(ValidationError):
        Settings()


@pytest.mark.parametrize(
    ("given", "level"),
    [
        ("info", "info"),
        ("WARNING", "warn"),
        ("warn", "warn"),
        ("critical", "crit"),
        ("debug", "debug"),
    ],
)
def test_the_log_level_is_a_name_faust_takes(
    monkeypatch: pytest.MonkeyPatch, given: str, level: str
) -> None:
    # `faust worker -l warning` is a usage error: every worker exited at start.
    monkeypatch.setenv("ORDERSAGA_LOG_LEVEL", given)
    assert Settings().log_level == level


def test_a_log_level_faust_does_not_know_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDERSAGA_LOG_LEVEL", "verbose")
    with pytest.raises(ValidationError, match="log_level"):
        Settings()
