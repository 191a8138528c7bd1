"""The supervisor's log copy: line by line into a size-rotating file, bounded in memory."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from ordersaga.config.settings import Settings
from ordersaga.runtime.system import Runtime, Worker, copy_lines, rotating_log
from ordersaga.shell.groups import GROUPS


def _close(log: object) -> None:
    for handler in list(log.handlers):  # type: ignore[attr-defined]
        handler.close()


def _runtime(tmp_path: Path, **settings: object) -> Runtime:
    return Runtime(Settings(data_dir=str(tmp_path), **settings), quiet=True)  # type: ignore[arg-type]


async def _copied(runtime: Runtime, timeout: float = 10) -> None:
    """Wait until every copier of ``runtime`` is done."""
    if runtime.copiers:
        _, late = await asyncio.wait(set(runtime.copiers), timeout=timeout)
        assert not late, "a copier did not finish"


async def test_lines_are_copied_as_they_are(tmp_path: Path) -> None:
    path = tmp_path / "w.log"
    log = rotating_log(path, max_bytes=0, backups=1)
    stream = asyncio.StreamReader()
    stream.feed_data(b"first\nsecond with 100% and %s\r\n\xff bad utf-8\nlast, no newline")
    stream.feed_eof()
    await copy_lines(stream, log)
    _close(log)
    assert path.read_text(encoding="utf-8").splitlines() == [
        "first",
        "second with 100% and %s",
        "\ufffd bad utf-8",
        "last, no newline",
    ]


async def test_an_overlong_line_is_written_in_pieces_not_buffered(tmp_path: Path) -> None:
    path = tmp_path / "w.log"
    log = rotating_log(path, max_bytes=0, backups=1)
    stream = asyncio.StreamReader(limit=1024)
    stream.feed_data(b"a" * 5000 + b"\nafter\n")
    stream.feed_eof()
    await copy_lines(stream, log, limit=1024)
    _close(log)
    lines = path.read_text().splitlines()
    assert lines[-1] == "after"
    assert "".join(lines[:-1]) == "a" * 5000  # nothing lost
    assert max(len(line) for line in lines) <= 1024  # never more than the limit at once


async def test_the_copy_never_raises(tmp_path: Path) -> None:
    log = rotating_log(tmp_path / "w.log", max_bytes=0, backups=1)
    stream = asyncio.StreamReader()
    stream.feed_data(b"before\n")
    stream.set_exception(ConnectionResetError("pipe gone"))
    await copy_lines(stream, log)
    _close(log)
    assert "pipe gone" in (tmp_path / "w.log").read_text()


def test_the_log_rotates_by_size_and_keeps_the_backups(tmp_path: Path) -> None:
    path = tmp_path / "w.log"
    log = rotating_log(path, max_bytes=1000, backups=2)
    assert not log.propagate
    for i in range(200):
        log.info(f"line {i:04d} " + "x" * 40)
    _close(log)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["w.log", "w.log.1", "w.log.2"]
    assert all((tmp_path / n).stat().st_size <= 1000 for n in names)
    assert path.read_text().splitlines()[-1].startswith("line 0199 ")


async def test_a_process_output_goes_to_its_log_even_a_huge_line(tmp_path: Path) -> None:
    runtime = _runtime(tmp_path)
    path = tmp_path / "p.log"
    code = "import sys; print('x' * 300_000); print('done', file=sys.stderr)"
    process = await runtime._exec([sys.executable, "-c", code], path)
    assert await asyncio.wait_for(process.wait(), 10) == 0
    await _copied(runtime)
    await runtime.stop()
    lines = path.read_text().splitlines()
    assert lines[-1] == "done"  # stderr is in the same log
    assert "".join(lines[:-1]) == "x" * 300_000


async def test_a_restarted_worker_writes_on_in_the_same_rotating_log(tmp_path: Path) -> None:
    runtime = _runtime(tmp_path, log_max_bytes=1500, log_backups=2)
    w = Worker(GROUPS[0], 0, 1, tmp_path / "webview-0.log")
    for run in range(3):
        code = f"for i in range(40): print('run {run} line', i, 'y' * 30)"
        p = await runtime._exec([sys.executable, "-c", code], w.log_path, worker=w)
        await asyncio.wait_for(p.wait(), 10)
        await _copied(runtime)
    assert list(runtime.logs) == [w.log_path]  # one logger for the three runs
    handler = runtime.logs[w.log_path].handlers[0]
    await runtime.stop()
    assert runtime.logs == {}
    assert getattr(handler, "stream", None) is None  # closed on stop
    assert [e["code"] for e in w.exits] == [0, 0, 0]
    files = sorted(n for n in os.listdir(tmp_path) if n.startswith("webview-0.log"))
    assert files == ["webview-0.log", "webview-0.log.1", "webview-0.log.2"]
    assert w.log_path.read_text().splitlines()[-1].startswith("run 2 line 39 ")


async def test_the_copy_ends_when_the_process_exits_though_a_child_holds_the_pipe(
    tmp_path: Path,
) -> None:
    runtime = _runtime(tmp_path)
    w = Worker(GROUPS[0], 0, 1, tmp_path / "w.log")
    code = (
        "import subprocess, sys; "
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
        "print('parent done'); raise SystemExit(3)"
    )
    process = await runtime._exec([sys.executable, "-c", code], w.log_path, worker=w)
    try:
        started = time.monotonic()
        await _copied(runtime, timeout=10)
        assert time.monotonic() - started < 8
        assert process.returncode == 3
        assert [e["code"] for e in w.exits] == [3]
        assert "parent done" in w.log_path.read_text()
    finally:
        # The sleeper is in the session the parent led: its process group.
        with pytest.raises(ProcessLookupError):
            while True:
                os.killpg(process.pid, signal.SIGKILL)
                await asyncio.sleep(0.1)
        await runtime.stop()
