"""A changelog that takes longer to replay than ORDERSAGA_RECOVERY_LIMIT_S: recovered, not looped.

The limit bounds a recovery that stops moving, not a long one (shell/recovery_watch.py).
Here the limit is 1 s and the customers changelog holds 40,000 records: the
worker SIGKILLed and restarted replays them for longer than the limit and comes
back once, where a limit on the total time would have ended every attempt.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from ordersaga.adapters.kafka_clients import new_producer
from ordersaga.ops.tail import records
from ordersaga.tables import CUSTOMERS
from tests.integration.conftest import System, running_system
from tests.integration.support import register

pytestmark = pytest.mark.integration

RECORDS = 40_000
LIMIT_S = 1.0


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    data_dir = tmp_path_factory.mktemp("ordersaga-recovery")
    with running_system(
        "kafka", data_dir, env={"ORDERSAGA_RECOVERY_LIMIT_S": str(LIMIT_S)}
    ) as system:
        yield system


async def _fill_changelog(bootstrap: str) -> None:
    """Customer records under new ids, written as the table writes its own (JSON key and value)."""
    topic = CUSTOMERS.changelog_topic
    sample = None
    async for record in records(bootstrap, topic, idle_timeout=3.0):
        sample = record
    assert sample is not None, "no customer record to copy"
    key = orjson.loads(sample.key)
    value = orjson.loads(sample.value)
    assert key == value["customer_id"] == "cust-recovery", (sample.key, sample.value)
    producer = new_producer(bootstrap, acks="all", linger_ms=20, max_batch_size=512 * 1024)
    await producer.start()
    try:
        pending = []
        for i in range(RECORDS):
            customer_id = f"cust-fill-{i}"
            filled = orjson.dumps({**value, "customer_id": customer_id})
            pending.append(await producer.send(topic, filled, key=orjson.dumps(customer_id)))
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


def _worker(system: System, group: str) -> dict[str, Any]:
    published = json.loads((system.data_dir / "supervisor.json").read_text())
    [worker] = [w for w in published["workers"] if w["group"] == group]
    return dict(worker)


def test_a_replay_longer_than_the_limit_ends_in_a_ready_worker(limited: System) -> None:
    with httpx.Client(base_url=limited.base_url, timeout=30) as client:
        register(client, "cust-recovery")
    asyncio.run(_fill_changelog(limited.bootstrap))
    before = _worker(limited, "customers")
    os.kill(before["pid"], signal.SIGKILL)
    killed_at = time.monotonic()
    ready_url = f"http://127.0.0.1:{limited.web_port + 6}/ready"
    ready_after = None
    with httpx.Client(timeout=2) as probe:
        while time.monotonic() - killed_at < 120:
            time.sleep(0.25)
            try:
                if (
                    probe.get(ready_url).status_code == 200
                    and _worker(limited, "customers")["pid"] != before["pid"]
                ):
                    ready_after = time.monotonic() - killed_at
                    break
            except httpx.HTTPError:
                continue
    assert ready_after is not None, "the customers worker did not come back"
    after = _worker(limited, "customers")
    # One restart (the kill), no exit of its own: the replay outlasted the limit unharmed.
    assert after["restarts"] == before["restarts"] + 1, after
    assert [e["code"] for e in after["exits"][len(before["exits"]) :]] == [-9], after
    assert ready_after > 3 * LIMIT_S, f"replayed in {ready_after:.1f} s: not past the limit"
