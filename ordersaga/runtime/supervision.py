"""The supervised workers: what the supervisor knows of each, and how it waits on them.

A worker is healthy when its /health answers, ready when its /ready does (it
has its partitions and restored tables); the seeded catalogue is visible when
the web view shows every SKU's stock.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from ordersaga.runtime.logs import (
    utc_now,
)
from ordersaga.shell.groups import AgentGroup

READY_TIMEOUT_S = 120.0
# A worker whose /ready is 404 this long while /health is 200 predates the
# readiness endpoint; /health is all it can say.
NO_READY_ENDPOINT_GRACE_S = 10.0
PROGRESS_EVERY_S = 10.0


@dataclass
class Worker:
    """One supervised ``faust worker`` process."""

    group: AgentGroup
    index: int
    web_port: int
    log_path: Path
    process: asyncio.subprocess.Process | None = None
    started_at: float = 0.0
    restarts: int = 0
    backoff_s: float = 1.0
    exits: list[dict[str, Any]] = field(default_factory=list)  # {"code", "at"}, oldest first

    @property
    def name(self) -> str:
        return f"{self.group.name}-{self.index}"

    def status(self) -> dict[str, Any]:
        """This worker's entry in supervisor.json (no pid between an exit and the restart)."""
        alive = self.process is not None and self.process.returncode is None
        return {
            "name": self.name,
            "group": self.group.name,
            "web_port": self.web_port,
            "pid": self.process.pid if alive and self.process else None,
            "restarts": self.restarts,
            "exits": list(self.exits),
        }


def supervisor_status(
    workers: Sequence[Worker], state: str, addresses: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The content of supervisor.json: with ``addresses``, where the system's parts listen.

    ``pid`` is the supervisor's own: a tool reading the file can tell a system still
    running from the file a killed one left behind.
    """
    status: dict[str, Any] = {
        "state": state,
        "pid": os.getpid(),
        "workers": [w.status() for w in workers],
        "updated_at": utc_now(),
    }
    if addresses:
        status["addresses"] = dict(addresses)
    return status


# A check answers None once its condition holds, else what it saw instead.
Check = Callable[[], Awaitable[str | None]]


async def wait_all(
    checks: Mapping[str, Check],
    what: str,
    say: Callable[[str], None],
    timeout: float,
    poll_s: float = 0.3,
) -> None:
    """Run the checks until every one has answered None; then each is run no more.

    Raises TimeoutError ``"<what> after <timeout>s: <name> (<last answer>)..."``
    naming each check still failing; an error a check raises propagates.
    """
    start = time.monotonic()
    next_report = start + PROGRESS_EVERY_S
    pending = dict(checks)
    why: dict[str, str] = {}
    while True:
        answers = await asyncio.gather(*(check() for check in pending.values()))
        for name, answer in zip(list(pending), answers, strict=True):
            if answer is None:
                del pending[name]
            else:
                why[name] = answer
        if not pending:
            return
        now = time.monotonic()
        if now - start >= timeout:
            failing = "; ".join(f"{name} ({why[name]})" for name in pending)
            raise TimeoutError(f"{what} after {timeout:.0f}s: {failing}")
        if now >= next_report:
            say("still waiting for " + "; ".join(f"{name} ({why[name]})" for name in pending))
            next_report = now + PROGRESS_EVERY_S
        await asyncio.sleep(poll_s)


def _exited(w: Worker) -> None:
    if w.process is not None and w.process.returncode is not None:
        raise RuntimeError(f"worker {w.name} exited with {w.process.returncode}; see {w.log_path}")


def health_check(client: httpx.AsyncClient, w: Worker, base_url: str) -> Check:
    """Met once the worker's GET /health answers 200."""

    async def check() -> str | None:
        _exited(w)
        try:
            r = await client.get(f"{base_url}/health")
        except httpx.HTTPError as exc:
            return f"GET /health failed: {exc!r}; see {w.log_path}"
        return None if r.status_code == 200 else f"GET /health {r.status_code}; see {w.log_path}"

    return check


def ready_check(
    client: httpx.AsyncClient,
    w: Worker,
    base_url: str,
    say: Callable[[str], None],
    no_endpoint_grace: float = NO_READY_ENDPOINT_GRACE_S,
) -> Check:
    """Met once the worker's GET /ready answers 200 ``{"ready": true}``.

    A 404 counts as not ready, but one that lasts ``no_endpoint_grace`` while
    /health answers 200 means a worker without the endpoint: it is met then.
    """
    missing_since: float | None = None
    healthy = health_check(client, w, base_url)

    async def check() -> str | None:
        nonlocal missing_since
        _exited(w)
        try:
            r = await client.get(f"{base_url}/ready")
        except httpx.HTTPError as exc:
            return f"GET /ready failed: {exc!r}; see {w.log_path}"
        if r.status_code != 404:
            missing_since = None
        elif missing_since is None:
            missing_since = time.monotonic()
        elif time.monotonic() - missing_since >= no_endpoint_grace and await healthy() is None:
            say(f"worker {w.name} has no readiness endpoint (GET /ready is 404); /health is 200")
            return None
        try:
            body = r.json()
        except ValueError:
            body = None
        if r.status_code == 200 and isinstance(body, dict) and body.get("ready") is True:
            return None
        body = body if isinstance(body, dict) else {}
        if isinstance(body.get("reasons"), list):
            why = "; ".join(map(str, body["reasons"]))
        else:  # a 503 in the API's error shape says it in "message"
            why = str(body.get("message") or r.text[:200])
        return f"GET /ready {r.status_code}: {why or 'no reason given'}; see {w.log_path}"

    return check


def stock_check(client: httpx.AsyncClient, sku: str, put_in: int) -> Check:
    """Met once the web view (``client``'s base URL) shows ``sku`` with at least ``put_in``."""

    async def check() -> str | None:
        try:
            r = await client.get(f"/inventory/{sku}")
            seen = r.json().get("put_in") if r.status_code == 200 else None
        except (httpx.HTTPError, ValueError, AttributeError) as exc:
            return f"GET /inventory/{sku} failed: {exc!r}"
        if isinstance(seen, int) and seen >= put_in:
            return None
        return f"GET /inventory/{sku} {r.status_code}, put_in {seen}, want {put_in}"

    return check
