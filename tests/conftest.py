"""Fixtures every test folder may use: a real Redis (valkey-server) for the session.

Only tests that ask for ``valkey_port`` start it; one server serves the agent
and the web tests alike.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ordersaga.runtime.servers import redis_argv


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _answers_ping(port: int) -> bool:
    """True once a server on ``port`` accepts a connection and answers PING."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def _start_valkey(workdir: Path, timeout: float = 10.0) -> tuple[subprocess.Popen[bytes], int]:
    """Start valkey-server on a free port; retry on another port if that one was taken."""
    last = ""
    for attempt in range(3):
        port = _free_port()
        log = workdir / f"valkey-{attempt}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                redis_argv(port, workdir),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while proc.poll() is None and time.monotonic() < deadline:
            if _answers_ping(port) and proc.poll() is None:
                return proc, port
            time.sleep(0.02)
        if proc.poll() is None:  # up but silent: give up on it
            proc.kill()
            proc.wait()
        last = log.read_text(errors="replace")
    raise RuntimeError(f"valkey-server did not start; last log:\n{last}")


@pytest.fixture(scope="session")
def valkey_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """Port of a real valkey-server on 127.0.0.1, up for the whole session."""
    proc, port = _start_valkey(tmp_path_factory.mktemp("valkey"))
    try:
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# The tiers that need no broker, browser or downloaded tool: `make test-fast` runs what is
# marked `fast`, `make test` runs it and then everything not marked `fast`, so no test runs
# twice and none falls between the two.
_FAST_TIERS = ("unit", "agents", "web")
_NEEDS_A_TOOL = ("needs_promtool", "needs_k8s_tools")


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    tests = Path(__file__).parent
    for item in items:
        tier = item.path.relative_to(tests).parts[0] if item.path.is_relative_to(tests) else ""
        needs_tool = any(item.get_closest_marker(name) for name in _NEEDS_A_TOOL)
        if tier in _FAST_TIERS and not needs_tool:
            item.add_marker(pytest.mark.fast)
