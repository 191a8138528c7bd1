"""Groups off the saga's critical path fetch in batches; the saga's own groups never do."""

from __future__ import annotations

from typing import Any, cast

import pytest

from ordersaga.config.settings import get_settings
from ordersaga.shell.patches import tune_fetch_wait
from ordersaga.topology import TOPOLOGY
from tests.harness import webview

CRITICAL_PATH = {step.participant for step in TOPOLOGY.steps} | {"orders"}


def test_only_groups_off_the_critical_path_are_latency_tolerant() -> None:
    tolerant = {p.name for p in TOPOLOGY.participants if p.latency_tolerant}
    assert tolerant == {"webview", "notifications"}
    assert not tolerant & CRITICAL_PATH


@pytest.mark.parametrize(("wait_ms", "min_bytes"), [(100, 65_536), (1500, 1)])
async def test_the_worker_consumer_faust_creates_fetches_as_tuned(
    wait_ms: int, min_bytes: int
) -> None:
    app = cast(Any, webview.app)
    thread = app.consumer._thread
    try:
        tune_fetch_wait(wait_ms, min_bytes)
        consumer = thread._create_worker_consumer(app.transport)
        assert (consumer._fetch_max_wait_ms, consumer._fetch_min_bytes) == (wait_ms, min_bytes)
    finally:
        # Every group of this test process shares the patched class: put back the
        # saga groups' tuning.
        tune_fetch_wait(get_settings().fetch_max_wait_ms)
