"""The structured log lines: the JSON and console formats and the ids they take from context."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import orjson
import pytest
from mode.utils.logging import setup_logging

from ordersaga.observability.log_format import (
    REQUIRED_KEYS,
    ConsoleFormatter,
    ContextFilter,
    JsonFormatter,
    bind,
    current,
    logging_config,
    resolve_format,
    unbind,
)


def record(msg: str = "hello %s", *args: object, **extra: object) -> logging.LogRecord:
    made = logging.LogRecord("faust.x", logging.INFO, __file__, 1, msg, args or ("w",), None)
    made.__dict__.update(extra)
    return made


def stamped(made: logging.LogRecord, worker: str = "payments@6069:1") -> logging.LogRecord:
    assert ContextFilter("payments", worker).filter(made)
    return made


def as_json(made: logging.LogRecord) -> dict[str, object]:
    line = JsonFormatter().format(made)
    assert "\n" not in line
    parsed = orjson.loads(line)
    assert isinstance(parsed, dict)
    return parsed


def test_a_json_line_has_the_required_keys_and_the_ids_bound_for_the_message() -> None:
    token = bind({"order_id": "ord_1", "correlation_id": "cor_1", "partition": 2, "offset": 7})
    try:
        line = as_json(stamped(record()))
    finally:
        unbind(token)
    assert list(line)[: len(REQUIRED_KEYS)] == list(REQUIRED_KEYS)
    assert line["time"].endswith("+00:00")  # type: ignore[union-attr]
    assert (line["level"], line["group"], line["worker"]) == ("INFO", "payments", "payments@6069:1")
    assert (line["logger"], line["message"]) == ("faust.x", "hello w")
    assert (line["order_id"], line["correlation_id"]) == ("ord_1", "cor_1")
    assert (line["partition"], line["offset"]) == (2, 7)


def test_outside_a_message_or_request_a_line_carries_no_ids() -> None:
    line = as_json(stamped(record()))
    assert not {"order_id", "correlation_id", "event_id", "topic"} & set(line)


def test_an_id_the_call_gives_itself_wins_over_the_context() -> None:
    token = bind({"order_id": "ord_context", "correlation_id": "cor_1"})
    try:
        line = as_json(stamped(record(order_id="ord_given")))
    finally:
        unbind(token)
    assert (line["order_id"], line["correlation_id"]) == ("ord_given", "cor_1")


def test_a_traceback_and_a_multiline_message_stay_on_one_line() -> None:
    try:
        raise ValueError("bad\nworse")
    except ValueError:
        import sys

        made = logging.LogRecord("x", logging.ERROR, __file__, 1, "a\nb", (), sys.exc_info())
    line = as_json(stamped(made))
    assert line["message"] == "a\nb"
    assert "ValueError: bad\nworse" in str(line["exc_info"])


def test_bind_drops_missing_ids_and_replaces_what_was_bound_until_unbound() -> None:
    outer = bind({"order_id": "ord_1", "event_id": None})
    assert current() == {"order_id": "ord_1"}
    inner = bind({"correlation_id": "cor_2"})
    assert current() == {"correlation_id": "cor_2"}
    unbind(inner)
    assert current() == {"order_id": "ord_1"}
    unbind(outer)
    assert current() == {}


def test_the_worker_name_is_asked_for_once_and_only_when_a_line_is_logged() -> None:
    calls: list[int] = []

    def name() -> str:
        calls.append(1)
        return "orders@6067:9"

    f = ContextFilter("orders", name)
    assert calls == []
    made = [record(), record()]
    for r in made:
        f.filter(r)
    assert [r.worker for r in made] == ["orders@6067:9"] * 2  # type: ignore[attr-defined]
    assert calls == [1]


def test_the_console_line_ends_with_the_ids_it_has() -> None:
    token = bind({"order_id": "ord_1", "topic": "payments.commands"})
    try:
        line = ConsoleFormatter().format(stamped(record()))
    finally:
        unbind(token)
    assert " INFO    payments faust.x: hello w [order_id=ord_1 topic=payments.commands]" in line
    assert "[" not in ConsoleFormatter().format(stamped(record("plain %s", "x")))


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_auto_is_console_on_a_terminal_and_json_elsewhere_and_a_forced_format_wins() -> None:
    assert resolve_format("auto", _Tty()) == "console"
    assert resolve_format("auto", io.StringIO()) == "json"
    assert resolve_format("auto", object()) == "json"
    assert resolve_format("json", _Tty()) == "json"
    assert resolve_format("console", io.StringIO()) == "console"


@pytest.fixture
def root_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def test_faust_workers_logging_setup_takes_the_config_and_keeps_the_command_lines_level(
    root_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    # What `faust worker -l info` does with the app's logging_config (mode.utils.logging).
    setup_logging(loglevel="info", logging_config=logging_config("shipping", "w@1:2", "json"))
    logging.getLogger("aiokafka.consumer").debug("not at info")
    token = bind({"order_id": "ord_9"})
    try:
        logging.getLogger("aiokafka.consumer").info("fetched")
    finally:
        unbind(token)
    [out] = capsys.readouterr().out.splitlines()
    line = orjson.loads(out)
    assert (line["group"], line["worker"], line["logger"]) == (
        "shipping",
        "w@1:2",
        "aiokafka.consumer",
    )
    assert (line["message"], line["order_id"]) == ("fetched", "ord_9")


def test_with_tracing_on_a_line_names_its_trace_and_span() -> None:
    from opentelemetry.sdk.trace import TracerProvider

    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("handling") as span:
        traced, untraced = record(), record()
        ContextFilter("orders", "orders@6067:1", traced=True).filter(traced)
        ContextFilter("orders", "orders@6067:1").filter(untraced)
    context = span.get_span_context()
    assert traced.trace_id == format(context.trace_id, "032x")  # type: ignore[attr-defined]
    assert traced.span_id == format(context.span_id, "016x")  # type: ignore[attr-defined]
    assert not hasattr(untraced, "trace_id")
    outside = record()
    ContextFilter("orders", "orders@6067:1", traced=True).filter(outside)
    assert not hasattr(outside, "trace_id")  # no span current, no ids
