"""`make chaos-brokers`: the chaos run on a three-node Apache Kafka cluster whose brokers die too.

A random broker is SIGKILLed every 4-8 s and started again 2-5 s later, while
workers are SIGKILLed as in the chaos test and orders pour in; the same
invariants must hold afterwards. Not part of `make test` (time).
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from tests.brokers import require
from tests.chaos.test_chaos import run_chaos

pytestmark = [pytest.mark.chaos_brokers, pytest.mark.timeout(1200)]

ORDERS = int(os.environ.get("CHAOS_BROKERS_ORDERS", "1500"))


async def test_no_order_lost_while_brokers_and_workers_are_killed(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    require("kafka")
    await run_chaos("kafka", ORDERS, tmp_path, monkeypatch, brokers=3)
