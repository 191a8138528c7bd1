"""The tools find the system `ordersaga run` runs in their data dir (ordersaga.runtime.running)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson

from ordersaga.config.settings import Settings
from ordersaga.runtime.running import running_system, settings_for_tools

ADDRESSES = {"kafka_broker": "127.0.0.1:31001", "redis_url": "redis://127.0.0.1:31003/0"}


def publish(data_dir: Path, state: str = "up", pid: int | None = None, **extra: object) -> None:
    status = {"state": state, "pid": os.getpid() if pid is None else pid, "workers": []}
    status.update({"addresses": ADDRESSES, **extra})
    (data_dir / "supervisor.json").write_bytes(orjson.dumps(status))


def bare(data_dir: Path, **fields: object) -> Settings:
    """Settings with no address set (whatever this shell's environment says), and ``fields``."""
    unset = {"kafka_broker": None, "redis_url": None, **fields}
    return Settings(data_dir=str(data_dir)).model_copy(update=unset)


def test_unset_addresses_come_from_the_running_system(tmp_path: Path) -> None:
    publish(tmp_path)
    settings, note = settings_for_tools(bare(tmp_path))
    assert (settings.kafka_broker, settings.redis_url) == (
        ADDRESSES["kafka_broker"],
        ADDRESSES["redis_url"],
    )
    assert note is not None and "KAFKA_BROKER=127.0.0.1:31001" in note


def test_what_the_environment_sets_wins(tmp_path: Path) -> None:
    publish(tmp_path)
    settings, note = settings_for_tools(bare(tmp_path, kafka_broker="10.0.0.1:9092"))
    assert settings.kafka_broker == "10.0.0.1:9092"
    assert settings.redis_url == ADDRESSES["redis_url"]
    assert note is not None and "KAFKA_BROKER" not in note


def test_a_stopped_or_killed_system_or_no_file_supplies_nothing(tmp_path: Path) -> None:
    assert running_system(tmp_path) is None
    (tmp_path / "supervisor.json").write_text("{not json")
    assert running_system(tmp_path) is None
    publish(tmp_path, state="stopped")
    assert running_system(tmp_path) is None
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    publish(tmp_path, pid=gone.pid)  # a SIGKILLed run leaves its file behind
    assert running_system(tmp_path) is None
    settings, note = settings_for_tools(bare(tmp_path))
    assert (settings.kafka_broker, note) == (None, None)


def test_the_replication_a_cluster_was_started_with_comes_along(tmp_path: Path) -> None:
    # `ordersaga run --brokers 3`: its topics were declared with 3 replicas.
    publish(tmp_path, addresses={**ADDRESSES, "replication_factor": "3"})
    settings, note = settings_for_tools(bare(tmp_path))
    assert settings.replication_factor == 3
    assert note is not None and "ORDERSAGA_REPLICATION_FACTOR=3" in note
    told, _ = settings_for_tools(bare(tmp_path, replication_factor=1))
    assert told.replication_factor == 1


def test_the_note_masks_the_admin_s_redis_password(tmp_path: Path) -> None:
    url = "redis://admin:s3cret-pass@127.0.0.1:31003/0"
    publish(tmp_path, addresses={**ADDRESSES, "redis_url": url})
    settings, note = settings_for_tools(bare(tmp_path))
    assert settings.redis_url == url
    assert note is not None and "s3cret-pass" not in note and "admin:****@" in note
