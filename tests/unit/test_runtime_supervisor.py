"""The supervisor's published state (supervisor.json) and its readiness waits."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from ordersaga.config.settings import Settings
from ordersaga.runtime.supervision import stock_check
from ordersaga.runtime.system import (
    Runtime,
    Worker,
    health_check,
    ready_check,
    supervisor_status,
    wait_all,
    write_json_atomic,
)
from ordersaga.shell.groups import GROUPS, group

BASE = "http://worker.test"


def _worker(name: str = "inventory", index: int = 0) -> Worker:
    return Worker(group(name), index, 6068, Path(f"/logs/{name}-{index}.log"))


def _client(answer: Callable[[httpx.Request], httpx.Response]) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.MockTransport(answer), base_url=BASE)


# ------------------------------------------------------------ supervisor.json


def test_write_json_atomic_replaces_the_file_and_leaves_no_temp(tmp_path: Path) -> None:
    path = tmp_path / "supervisor.json"
    write_json_atomic(path, {"n": 1})
    write_json_atomic(path, {"n": 2})
    assert json.loads(path.read_text()) == {"n": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["supervisor.json"]


def test_a_failed_write_keeps_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "supervisor.json"
    write_json_atomic(path, {"n": 1})
    with pytest.raises(TypeError):
        write_json_atomic(path, {"n": object()})
    assert json.loads(path.read_text()) == {"n": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["supervisor.json"]


def test_status_names_every_worker_with_its_restarts_and_exits() -> None:
    w = _worker()
    w.restarts = 2
    w.exits = [{"code": -9, "at": "2024-01-01T00:00:00.000+00:00"}]
    status = supervisor_status([w, _worker("orders")], "up")
    assert status["state"] == "up"
    assert isinstance(status["updated_at"], str)
    assert status["workers"] == [
        {
            "name": "inventory-0",
            "group": "inventory",
            "web_port": 6068,
            "pid": None,  # no process running
            "restarts": 2,
            "exits": [{"code": -9, "at": "2024-01-01T00:00:00.000+00:00"}],
        },
        {
            "name": "orders-0",
            "group": "orders",
            "web_port": 6068,
            "pid": None,
            "restarts": 0,
            "exits": [],
        },
    ]


async def test_spawns_and_exits_are_published(tmp_path: Path) -> None:
    runtime = Runtime(Settings(data_dir=str(tmp_path)), quiet=True)
    w = Worker(GROUPS[0], 0, 6066, tmp_path / "webview-0.log")
    runtime.workers.append(w)
    w.process = await runtime._exec(
        [sys.executable, "-c", "import time; time.sleep(0.5); raise SystemExit(4)"],
        w.log_path,
        worker=w,
    )
    runtime.publish()
    running = json.loads((tmp_path / "supervisor.json").read_text())
    assert running["state"] == "starting"
    assert running["workers"][0]["pid"] == w.process.pid
    await asyncio.wait(set(runtime.copiers), timeout=10)
    exited = json.loads((tmp_path / "supervisor.json").read_text())
    assert exited["workers"][0]["pid"] is None
    assert [e["code"] for e in exited["workers"][0]["exits"]] == [4]
    await runtime.stop()
    assert json.loads((tmp_path / "supervisor.json").read_text())["state"] == "stopped"


# ------------------------------------------------------------------ readiness


async def test_ready_once_ready_answers_200() -> None:
    answers = [
        httpx.Response(503, json={"ready": False, "reasons": ["no partitions assigned"]}),
        httpx.Response(503, json={"ready": False, "error": "not_ready", "message": "recovering"}),
        httpx.Response(200, json={"ready": True}),
    ]
    async with _client(lambda request: answers.pop(0)) as client:
        check = ready_check(client, _worker(), BASE, say=print)
        first = await check()
        assert first is not None and "no partitions assigned" in first
        assert "/logs/inventory-0.log" in first
        second = await check()
        assert second is not None and "recovering" in second
        assert await check() is None


async def test_a_200_that_says_not_ready_is_not_ready() -> None:
    async with _client(lambda request: httpx.Response(200, json={"ready": False})) as client:
        assert await ready_check(client, _worker(), BASE, say=print)() is not None


async def test_a_lasting_404_with_health_200_means_no_readiness_endpoint() -> None:
    said: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200 if request.url.path == "/health" else 404, text="Not Found")

    async with _client(answer) as client:
        check = ready_check(client, _worker(), BASE, said.append, no_endpoint_grace=0.2)
        assert await check() is not None  # a 404 is not ready, at first
        await asyncio.sleep(0.25)
        assert await check() is None
    assert said == [
        "worker inventory-0 has no readiness endpoint (GET /ready is 404); /health is 200"
    ]


async def test_a_404_while_unhealthy_stays_not_ready() -> None:
    async with _client(
        lambda request: httpx.Response(404 if "ready" in str(request.url) else 503)
    ) as client:
        check = ready_check(client, _worker(), BASE, print, no_endpoint_grace=0)
        assert await check() is not None
        assert await check() is not None


async def test_an_unreachable_worker_is_not_ready() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    async with _client(answer) as client:
        why = await ready_check(client, _worker(), BASE, print)()
        assert why is not None and "refused" in why
        assert await health_check(client, _worker(), BASE)() is not None


async def test_a_worker_that_exited_fails_the_wait_at_once() -> None:
    w = _worker()
    w.process = await asyncio.create_subprocess_exec(sys.executable, "-c", "raise SystemExit(2)")
    await w.process.wait()
    async with _client(lambda request: httpx.Response(200, json={"ready": True})) as client:
        with pytest.raises(RuntimeError, match="worker inventory-0 exited with 2"):
            await wait_all({"w": ready_check(client, w, BASE, print)}, "not ready", print, 5)


async def test_the_timeout_names_the_workers_not_ready_and_their_logs() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.port == 1:
            return httpx.Response(200, json={"ready": True})
        return httpx.Response(503, json={"ready": False, "reasons": ["table sagas recovering"]})

    said: list[str] = []
    async with _client(answer) as client:
        checks = {
            "worker webview-0": ready_check(client, _worker("webview"), "http://a:1", print),
            "worker orders-0": ready_check(client, _worker("orders"), "http://b:2", print),
        }
        with pytest.raises(TimeoutError) as raised:
            await wait_all(checks, "not ready", said.append, timeout=0.3, poll_s=0.05)
    message = str(raised.value)
    assert message.startswith("not ready after 0s: worker orders-0 (")
    assert "table sagas recovering" in message and "/logs/orders-0.log" in message
    assert "webview-0" not in message


# ------------------------------------------------------------------ catalogue


async def test_stock_is_met_once_put_in_reaches_the_seeded_quantity() -> None:
    answers = [
        httpx.Response(404, json={"error": "not_found"}),
        httpx.Response(200, json={"sku": "book", "put_in": 40}),
        httpx.Response(200, json={"sku": "book", "put_in": 100}),
    ]
    async with _client(lambda request: answers.pop(0)) as client:
        check = stock_check(client, "book", 100)
        assert await check() == "GET /inventory/book 404, put_in None, want 100"
        assert await check() == "GET /inventory/book 200, put_in 40, want 100"
        assert await check() is None
