"""Structured logs: JSON lines for machines, a console line for people, ids from context.

Every record a worker emits (ours, Faust's, mode's, aiokafka's) goes through one
handler on the root logger, configured through Faust's ``logging_config`` so
that the worker sets it up in place of its own. Its filter stamps the record
with the worker's group and name and with the ids of what the worker is doing:
the message being handled (``Node.consume``) or the request being answered (the
HTTP edge). Both set one context variable per message or request; nothing is
formatted unless a record is actually emitted.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Mapping
from contextvars import ContextVar, Token
from typing import Any, Literal

from opentelemetry import trace
from pythonjsonlogger.orjson import OrjsonFormatter

from ordersaga.schemas.messages import Envelope

LogFormat = Literal["auto", "json", "console"]

# The ids a record may carry, in the order the console line shows them.
CONTEXT_KEYS = (
    "order_id",
    "correlation_id",
    "event_id",
    "topic",
    "partition",
    "offset",
    "http_method",
    "http_path",
)
# Every JSON line has these, whatever logged it.
REQUIRED_KEYS = ("time", "level", "group", "worker", "logger", "message")

_context: ContextVar[Mapping[str, Any] | None] = ContextVar("ordersaga_log_context", default=None)


def bind(fields: Mapping[str, Any]) -> Token[Mapping[str, Any] | None]:
    """Make ``fields`` (``None`` values dropped) the log context until ``unbind``.

    It replaces what was bound before rather than merging: a message or a request
    is the whole of what a worker is doing at a time.
    """
    return _context.set({k: v for k, v in fields.items() if v is not None})


def message_ids(envelope: Envelope | None) -> dict[str, str | None]:
    """The ids of a message's envelope that its log lines carry."""
    if envelope is None:
        return {}
    return {
        "order_id": envelope.order_id,
        "correlation_id": envelope.correlation_id,
        "event_id": envelope.event_id,
    }


def unbind(token: Token[Mapping[str, Any] | None]) -> None:
    _context.reset(token)


def current() -> Mapping[str, Any]:
    """The log context bound now (empty outside a message or request)."""
    return _context.get() or {}


class ContextFilter(logging.Filter):
    """Stamp each record with the worker's group and name and the bound ids.

    A field the call gave itself (``extra={"order_id": ...}``) wins over the
    context's. ``worker`` is a callable because the name includes the web port,
    which the ``faust worker`` command line sets after the app is made.
    """

    def __init__(self, group: str, worker: Callable[[], str] | str, traced: bool = False) -> None:
        super().__init__()
        self.group = group
        self._worker = worker
        self._worker_name: str | None = None
        # With tracing on, each line names the span it was logged in, linking logs to
        # traces; off, nothing of OpenTelemetry is looked at.
        self.traced = traced

    @property
    def worker(self) -> str:
        if self._worker_name is None:
            self._worker_name = self._worker if isinstance(self._worker, str) else self._worker()
        return self._worker_name

    def filter(self, record: logging.LogRecord) -> bool:
        record.group = self.group
        record.worker = self.worker
        fields = _context.get()
        if fields:
            attrs = record.__dict__
            for key, value in fields.items():
                attrs.setdefault(key, value)
        if self.traced:
            span = trace.get_current_span().get_span_context()
            if span.is_valid:
                record.trace_id = format(span.trace_id, "032x")
                record.span_id = format(span.span_id, "016x")
        return True


class JsonFormatter(OrjsonFormatter):
    """One JSON object per line: time (UTC, ISO 8601), level, group, worker, logger, message.

    Then whatever ids the record carries and any other ``extra`` fields; a
    traceback goes into ``exc_info`` as one string, so a line is always a line.
    """

    def __init__(self) -> None:
        super().__init__(
            ["levelname", "group", "worker", "name", "message"],
            rename_fields={"levelname": "level", "name": "logger"},
            timestamp="time",
        )

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        # The timestamp first, for people reading the file with less.
        log_data["time"] = None
        super().add_fields(log_data, record, message_dict)


class ConsoleFormatter(logging.Formatter):
    """A line for a person at a terminal: time, level, logger, message, then the ids."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(group)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        ids = " ".join(
            f"{key}={record.__dict__[key]}" for key in CONTEXT_KEYS if key in record.__dict__
        )
        return f"{line} [{ids}]" if ids else line


def resolve_format(wanted: LogFormat, stream: Any = None) -> Literal["json", "console"]:
    """``auto`` is the console line on a terminal and JSON anywhere else."""
    if wanted != "auto":
        return wanted
    stream = sys.stdout if stream is None else stream
    try:
        return "console" if stream.isatty() else "json"
    except (AttributeError, ValueError):  # no stream, or a closed one
        return "json"


def logging_config(
    group: str, worker: Callable[[], str] | str, log_format: LogFormat, traced: bool = False
) -> dict[str, Any]:
    """Faust's ``logging_config``: our handler in place of the worker's default one.

    ``merge`` keeps the rest of mode's configuration, the root logger's level
    from ``faust worker -l`` included; only the handler named "default" is ours.
    """
    formatter = JsonFormatter if resolve_format(log_format) == "json" else ConsoleFormatter
    return {
        "merge": True,
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"ordersaga": {"()": formatter}},
        "filters": {
            "ordersaga": {"()": ContextFilter, "group": group, "worker": worker, "traced": traced}
        },
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stdout",
                "formatter": "ordersaga",
                "filters": ["ordersaga"],
            }
        },
    }
