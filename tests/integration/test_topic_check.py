"""`ordersaga topics --check` against a running system's broker, on both brokers."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from ordersaga.shell.topics import ALL_TOPICS
from tests.integration.conftest import System

pytestmark = pytest.mark.integration


def topics_check(
    system: System, broker: bool = True, **env: str
) -> subprocess.CompletedProcess[str]:
    """``ordersaga topics --check`` with ``env`` and none of this shell's ORDERSAGA_ settings.

    With ``broker``, KAFKA_BROKER names the system's broker; without, it is unset.
    """
    settings = {k: v for k, v in os.environ.items() if not k.startswith("ORDERSAGA_")}
    settings.pop("KAFKA_BROKER", None)
    if broker:
        settings["KAFKA_BROKER"] = system.bootstrap
    return subprocess.run(
        [sys.executable, "-m", "ordersaga", "topics", "--check"],
        env={**settings, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_system_s_topics_are_as_declared(system: System) -> None:
    run = topics_check(system)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "ordersaga topics as declared" in run.stdout


def test_every_difference_from_the_declarations_is_reported(system: System) -> None:
    run = topics_check(system, ORDERSAGA_PARTITIONS="8", ORDERSAGA_TOPIC_RETENTION_HOURS="24")
    assert run.returncode == 1, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    for topic in ALL_TOPICS:
        assert f"{topic}: 4 partitions, declared 8" in lines
    # Retention is declared for the command and event topics, not the compacted ones.
    assert "orders.commands: retention.ms=604800000, declared 86400000" in lines
    assert not any(line.startswith("ordersaga.services: retention") for line in lines)


def test_the_tools_find_the_system_ordersaga_run_runs_in_their_data_dir(system: System) -> None:
    # No KAFKA_BROKER: the addresses come from the system's supervisor.json.
    run = topics_check(system, broker=False, ORDERSAGA_DATA_DIR=str(system.data_dir))
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"KAFKA_BROKER={system.bootstrap}" in run.stderr
