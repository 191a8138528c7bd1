"""`ordersaga demo` against the running system: every scenario ends as it says."""

from __future__ import annotations

import asyncio

import pytest

from ordersaga.ops.demo import SCENARIOS, run_demo
from tests.integration.conftest import System

pytestmark = pytest.mark.integration


def test_every_demo_scenario_ends_as_expected(system: System, capsys) -> None:  # type: ignore[no-untyped-def]
    assert asyncio.run(run_demo(system.base_url)) == 0
    out = capsys.readouterr().out
    assert out.count("\nok ") + out.startswith("ok ") == len(SCENARIOS), out
    assert "unknown customer  FAILED     customer_invalid" in out
    assert "expected 18 / 0 / 2" in out
