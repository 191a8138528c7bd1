"""Process output into size-rotated logs, and the supervisor's status file."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import Any

# Longest line held in memory while copying a process's output; a longer one is
# written in pieces of this size, each on its own line.
LOG_LINE_LIMIT = 256 * 1024
# How long the copy may go on draining the pipe after its process exited: a
# descendant that inherited the pipe could otherwise keep it open forever.
LOG_DRAIN_GRACE_S = 2.0


def utc_now() -> str:
    """Now, as ISO 8601 in UTC (the timestamps of supervisor.json)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def rotating_log(path: Path, max_bytes: int, backups: int) -> logging.Logger:
    """A logger that writes bare lines to ``path``, rotated at ``max_bytes``."""
    handler = RotatingFileHandler(path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(message)s"))
    # Built directly rather than with getLogger: it stays out of logging's tree
    # (no root handlers, nothing kept once the runtime drops it).
    log = logging.Logger(f"ordersaga.runtime.{path.name}", logging.INFO)
    log.propagate = False
    log.addHandler(handler)
    return log


def _write_line(log: logging.Logger, data: bytes) -> None:
    # The handler adds the newline back; "%" is safe as there are no args.
    log.info(data.decode("utf-8", "replace").rstrip("\r\n"))


async def copy_lines(
    stream: asyncio.StreamReader, log: logging.Logger, limit: int = LOG_LINE_LIMIT
) -> None:
    """Copy ``stream`` line by line into ``log`` until end of file.

    ``limit`` should be the stream's own limit. readuntil rather than readline:
    on an overlong line readline throws the buffered part away, readuntil keeps
    it, so it can be written in ``limit``-sized pieces. Never raises (but for
    cancellation): a failed copy must not take the supervisor down.
    """
    try:
        while True:
            try:
                data = await stream.readuntil(b"\n")
            except asyncio.IncompleteReadError as exc:  # end of file
                if exc.partial:
                    _write_line(log, exc.partial)
                return
            except asyncio.LimitOverrunError:
                data = await stream.read(limit)
            _write_line(log, data)
    except Exception as exc:
        with contextlib.suppress(Exception):
            log.info(f"[ordersaga: stopped copying this output: {exc!r}]")


def write_json_atomic(path: Path, data: Mapping[str, Any]) -> None:
    """Write ``data`` as JSON to ``path`` so that a reader sees the old or the new file."""
    write_private(path, json.dumps(data, indent=2) + "\n")


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path``, its owner's alone, so a reader sees the old or the new file.

    Owner-only: supervisor.json holds the admin's Redis URL, the secrets passwords.
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            os.fchmod(f.fileno(), 0o600)
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
