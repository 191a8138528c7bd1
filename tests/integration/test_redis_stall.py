"""A stalled Redis: the web view answers 503 naming it, in seconds, and recovers by itself.

While Redis is stopped (SIGSTOP) nothing can be projected; orders other tests left
in flight wait the stall out, and the order placed after it must complete.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from tests.integration.conftest import System
from tests.integration.support import final, new_sku, order_body, place

pytestmark = pytest.mark.integration


@contextmanager
def stopped(pid: int) -> Iterator[None]:
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def test_a_stalled_redis_is_a_503_naming_it_then_all_is_well(
    system: System, client: httpx.Client
) -> None:
    # valkey-server names its process "valkey-server 127.0.0.1:PORT".
    port = system.redis_url.rsplit(":", 1)[1].split("/")[0]
    found = subprocess.run(
        ["pgrep", "-f", f"server 127.0.0.1:{port}"], capture_output=True, text=True, check=False
    ).stdout.split()
    assert len(found) == 1, found
    with stopped(int(found[0])):
        time.sleep(1.5)  # past /health's one-second cache
        # A bound, not a speed goal: a request must not hang on the stalled store.
        health = httpx.get(f"{system.base_url}/health", timeout=10)
        read = httpx.get(f"{system.base_url}/inventory", timeout=10)
    assert health.status_code == 503
    assert health.headers["Retry-After"]
    assert [p["field"] for p in health.json()["problems"]] == ["redis"]
    assert read.status_code == 503, read.text
    assert read.json()["problems"] == [{"field": "redis", "message": "unavailable"}]
    time.sleep(1.5)
    assert httpx.get(f"{system.base_url}/health").status_code == 200
    sku = new_sku(client, 5, 100)
    assert final(client, place(client, order_body([(sku, 1)])))["status"] == "COMPLETED"
