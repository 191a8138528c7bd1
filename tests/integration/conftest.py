"""The whole system, started for real: embedded broker, Redis, every agent group, web view."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from ordersaga.runtime.system import free_port_block
from tests.brokers import BROKERS, require
from tests.integration.support import register

pytestmark = pytest.mark.integration

START_TIMEOUT_S = 180


@pytest.hookimpl(tryfirst=True)  # before pytest groups the tests by their system's broker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked ``session_end`` run after every other test, in the order given.

    "No worker restarted during the session" means something only once the session's
    tests have all run; this says so explicitly, instead of a file name sorting last.
    Pytest then groups the tests by the broker of their ``system``, keeping this order
    within each group, so each system's own session ends with it.
    """
    last = [item for item in items if item.get_closest_marker("session_end")]
    if last:
        items[:] = [item for item in items if not item.get_closest_marker("session_end")] + last


@dataclass
class System:
    """A running ordersaga: where its parts listen."""

    broker: str
    base_url: str
    web_port: int
    bootstrap: str
    redis_url: str
    data_dir: Path
    output: list[str]


@contextmanager
def running_system(
    broker: str,
    data_dir: Path,
    *,
    env: dict[str, str] | None = None,
    args: tuple[str, ...] = (),
    workers: int = 7,
) -> Iterator[System]:
    """``ordersaga run`` on fresh ports with the integration settings and ``env`` over them.

    ``workers`` is how many web ports the system takes (a second web view worker
    takes the web view's port + 100, so pass 101 or more for one). Stopped
    (SIGTERM, then SIGKILL after 60 s) when the block ends. No OTEL_* variable of
    the shell that runs the tests reaches its workers: a system traces only when
    ``env`` says so.
    """
    require(broker)
    # The workers, then the broker, its KRaft controller (Apache Kafka) and Redis.
    web_port = free_port_block(max(workers, 7) + 3)
    services = web_port + max(workers, 7)
    full_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("OTEL_")},
        "ORDERSAGA_BROKER": broker,
        "ORDERSAGA_DATA_DIR": str(data_dir),
        "ORDERSAGA_WEB_PORT": str(web_port),
        "ORDERSAGA_EMBEDDED_KAFKA_PORT": str(services),
        "ORDERSAGA_EMBEDDED_REDIS_PORT": str(services + 2),
        "ORDERSAGA_SEED_CATALOG": "false",
        # Short deadlines and breaker settings so timeouts and the breaker show in seconds.
        "ORDERSAGA_STEP_TIMEOUT_S": "1",
        "ORDERSAGA_BREAKER_FAILURE_THRESHOLD": "3",
        "ORDERSAGA_BREAKER_MIN_CALLERS": "2",
        # Judged on the last seconds' calls only, so the breaker test does not depend
        # on how many orders other tests charged before it.
        "ORDERSAGA_BREAKER_WINDOW_S": "10",
        "ORDERSAGA_BREAKER_FAILURE_RATIO": "0.25",
        "ORDERSAGA_BREAKER_COOL_DOWN_S": "3",
        # Finished orders are forgotten within the session, so every test (and the
        # audit at the end) also runs against tables that are being pruned.
        "ORDERSAGA_RETENTION_S": "6",
        # Small bounds, so the hostile tier reaches them with little traffic.
        "ORDERSAGA_MAX_LONG_POLLS": "20",
        "ORDERSAGA_MAX_RECORD_BYTES": str(64 * 1024),
        "ORDERSAGA_MAX_HOLDS_PER_SKU": "500",
        # Every test client is 127.0.0.1: the per-client limit is tested on a system of
        # its own (test_auth_and_limits.py).
        "ORDERSAGA_RATE_LIMIT_PER_S": "0",
        # Nor a per-client share of the orders in flight (tested on a system of its
        # own: test_abuse_saga.py).
        "ORDERSAGA_MAX_SAGAS_IN_FLIGHT_PER_CLIENT": "100000",
        "ORDERSAGA_READ_RATE_LIMIT_PER_S": "0",
        **(env or {}),
    }
    full_env.pop("KAFKA_BROKER", None)
    full_env.pop("REDIS_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "ordersaga", "run", *args],
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    output: list[str] = []
    ready = threading.Event()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            output.append(line.rstrip())
            if "ordersaga is up" in line:
                ready.set()

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while not ready.is_set() and proc.poll() is None and time.monotonic() < deadline:
        ready.wait(0.5)
    if not ready.is_set():
        proc.kill()
        logs = "\n".join(output[-40:])
        pytest.fail(f"ordersaga run did not come up:\n{logs}")
    text = "\n".join(output)
    listening = re.search(r"broker\s+kafka://(\S+)", text)
    assert listening, text
    # The admin's URL, password included, is in the supervisor's file (mode 0600).
    published = json.loads((data_dir / "supervisor.json").read_text())
    redis_url = published["addresses"]["redis_url"]
    try:
        yield System(
            broker=broker,
            base_url=f"http://127.0.0.1:{web_port}",
            web_port=web_port,
            bootstrap=listening.group(1),
            redis_url=redis_url,
            data_dir=data_dir,
            output=output,
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail("ordersaga run did not stop within 60 s of SIGTERM")


@pytest.fixture(scope="session", params=BROKERS)
def system(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[System]:
    """Start `ordersaga run` on fresh ports, once per broker, and stop it after its tests.

    Every whole-system test runs on each broker; pytest runs all of them on one
    before it starts the other.
    """
    broker = str(request.param)
    with running_system(broker, tmp_path_factory.mktemp(f"ordersaga-{broker}")) as started:
        yield started


# The customers the integration tests order as; any other customer's orders fail
# customer_invalid, which the customer tests check.
TEST_CUSTOMERS = (
    "cust-1",
    "cust-retention",
    "cust-topics",
    "cust-redrive",
    # Their orders fail on purpose (the breaker tests).
    "cust-faults",
    "cust-mallory",
)


@pytest.fixture(scope="session")
def client(system: System) -> Iterator[httpx.Client]:
    """An HTTP client on the web view, its test customers registered."""
    with httpx.Client(base_url=system.base_url, timeout=60) as c:
        register(c, *TEST_CUSTOMERS)
        yield c
