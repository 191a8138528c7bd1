"""The operator tools against the running system: audit, dlq, topics, tail.

Named to run after the scenario tests, so the audit covers every order they placed.
"""

from __future__ import annotations

import subprocess

import httpx
import pytest

from tests.integration.conftest import System
from tests.integration.support import final, new_sku, order_body, place, wait_for
from tests.integration.support import ordersaga_cli as ordersaga

pytestmark = pytest.mark.integration


def test_audit_passes_once_the_system_is_idle(system: System, client: httpx.Client) -> None:
    sku = new_sku(client, 3, 700)
    final(client, place(client, order_body([(sku, 1)])))

    def audited() -> subprocess.CompletedProcess[str] | None:
        run = ordersaga(system, "audit")
        return run if run.returncode == 0 else None

    run = wait_for(audited, timeout=60, interval=2)
    verdicts = [line.split()[0] for line in run.stdout.splitlines() if line[:4] in {"PASS", "FAIL"}]
    assert verdicts == ["PASS"] * 6, run.stdout


def test_dlq_list_and_replay(system: System) -> None:
    produced = ordersaga(system, "dlq", "list", "orders.commands")
    assert produced.returncode == 0, produced.stderr
    before = produced.stdout.count("error:")
    assert before >= 1, "the dead-letter test put poison on orders.commands"
    # A replay is chosen (test_zzv_abuse_records.py replays one, once, and refuses the old).
    replay = ordersaga(system, "dlq", "replay", "orders.commands.dlq")
    assert replay.returncode == 2
    assert "--id" in replay.stderr and "--since" in replay.stderr


def test_topics_and_tail(system: System) -> None:
    topics = ordersaga(system, "topics")
    assert topics.returncode == 0, topics.stderr
    for name in ("orders.commands", "orders.events", "inventory.sku-commands", "notifications"):
        assert name in topics.stdout.split()
    tail = ordersaga(system, "tail", "orders.events", "--max", "3")
    assert tail.returncode == 0, tail.stderr
    assert tail.stdout.count("type=OrderEvent") == 3
