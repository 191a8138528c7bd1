"""The pure parts of `ordersaga bench`: percentiles, the throughput window, the summary."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from ordersaga.ops.bench import (
    Ended,
    Tracker,
    Window,
    cpu_percent,
    default_out_path,
    format_summary,
    lag_by_topic,
    latency_stats,
    parse_cpu_ticks,
    parse_vmhwm_kb,
    percentile,
    rate_between,
    throughput_window,
)
from ordersaga.ops.relay import (
    SAGA_HOPS,
    critical_path_messages,
    relay_payload,
    relay_topics,
    typical_envelope_bytes,
)
from ordersaga.shell.codec import decode

# ----------------------------------------------------------------- percentile


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]  # 1..100
    assert percentile(values, 50) == 50
    assert percentile(values, 95) == 95
    assert percentile(values, 99) == 99
    assert percentile(values, 100) == 100
    assert percentile(values, 0.5) == 1


def test_percentile_does_not_need_sorted_input() -> None:
    assert percentile([5.0, 1.0, 4.0, 2.0, 3.0], 50) == 3.0
    assert percentile([5.0, 1.0, 4.0, 2.0, 3.0], 80) == 4.0
    assert percentile([5.0, 1.0, 4.0, 2.0, 3.0], 81) == 5.0


def test_percentile_of_one_value_is_that_value() -> None:
    assert percentile([0.25], 50) == 0.25
    assert percentile([0.25], 99) == 0.25


@pytest.mark.parametrize("p", [0, -1, 100.5])
def test_percentile_rejects_out_of_range(p: float) -> None:
    with pytest.raises(ValueError):
        percentile([1.0, 2.0], p)


def test_percentile_of_nothing_is_an_error() -> None:
    with pytest.raises(ValueError):
        percentile([], 50)


def test_latency_stats() -> None:
    stats = latency_stats([0.1 * i for i in range(1, 11)])
    assert stats is not None
    assert stats["count"] == 10
    assert stats["p50"] == pytest.approx(0.5)
    assert stats["p95"] == pytest.approx(1.0)
    assert stats["max"] == pytest.approx(1.0)
    assert stats["mean"] == pytest.approx(0.55)
    assert latency_stats([]) is None


# ----------------------------------------------------------- throughput window


def test_window_spans_first_measured_acceptance_to_last_measured_end() -> None:
    window = throughput_window(
        measured_accepted=[10.0, 11.0, 12.0],
        measured_ended=[10.5, 13.0, 12.5],
        all_ended=[10.5, 13.0, 12.5],
    )
    assert window == Window(start=10.0, end=13.0, ended=3)
    assert window.seconds == pytest.approx(3.0)
    assert window.rate == pytest.approx(1.0)


def test_window_counts_warmup_orders_that_end_inside_it() -> None:
    # Two warm-up orders: one ended before the window, one inside it.
    window = throughput_window(
        measured_accepted=[10.0, 11.0],
        measured_ended=[12.0, 14.0],
        all_ended=[9.0, 10.2, 12.0, 14.0],
    )
    assert window is not None
    assert window.ended == 3
    assert window.rate == pytest.approx(3 / 4.0)


def test_window_needs_acceptances_and_ends() -> None:
    assert throughput_window([], [1.0], [1.0]) is None
    assert throughput_window([1.0], [], []) is None


def test_empty_window_has_rate_zero() -> None:
    assert Window(start=5.0, end=5.0, ended=1).rate == 0.0


def test_closed_loop_steady_state_rate_is_recovered() -> None:
    # A system ending one order every 0.1 s with 4 in flight (latency 0.4 s):
    # order i accepted at i*0.1, ended at i*0.1 + 0.4; the first 10 are warm-up.
    accepted = [i * 0.1 for i in range(110)]
    ended = [a + 0.4 for a in accepted]
    window = throughput_window(accepted[10:], ended[10:], ended)
    assert window is not None
    assert window.rate == pytest.approx(10.0, rel=0.05)


def test_rate_between() -> None:
    assert rate_between([1.0, 2.0, 3.0]) == pytest.approx(1.5)
    assert rate_between([1.0]) is None
    assert rate_between([2.0, 2.0]) is None


# ------------------------------------------------------------------ lag, RSS


def test_lag_by_topic_sums_partitions_and_skips_uncommitted() -> None:
    committed = {("a", 0): 5, ("a", 1): 10, ("b", 0): -1, ("c", 0): 7}
    end = {("a", 0): 8, ("a", 1): 10, ("b", 0): 50, ("c", 0): 7}
    assert lag_by_topic(committed, end) == {"a": 3, "c": 0}


def test_lag_is_never_negative() -> None:
    assert lag_by_topic({("a", 0): 9}, {("a", 0): 4}) == {"a": 0}


def test_parse_vmhwm() -> None:
    status = "Name:\tpython\nVmPeak:\t  300000 kB\nVmHWM:\t   81234 kB\nVmRSS:\t   80000 kB\n"
    assert parse_vmhwm_kb(status) == 81234
    assert parse_vmhwm_kb("Name:\tkthreadd\n") is None


def test_parse_cpu_ticks_survives_spaces_in_the_command_name() -> None:
    stat = "1234 (python -m faust) S 1 1234 1234 0 -1 4194304 100 0 0 0 250 50 0 0 20 0 5"
    assert parse_cpu_ticks(stat) == 300
    assert parse_cpu_ticks("1234 (x) S 1") is None


def test_cpu_percent() -> None:
    before = {"orders-0": 10.0, "broker": 5.0, "gone": None, "restarted": 9.0}
    after = {"orders-0": 15.0, "broker": 5.5, "gone": 3.0, "restarted": 1.0}
    assert cpu_percent(before, after, wall_s=10.0) == {
        "orders-0": 50.0,
        "broker": 5.0,
        "gone": None,
        "restarted": None,
    }


# ------------------------------------------------------------------- tracker


async def test_tracker_wakes_the_waiter_and_keeps_the_first_end() -> None:
    tracker = Tracker(customer_id="bench-x")
    tracker.accept("o1", 0, at=1.0)
    waiting = asyncio.create_task(tracker.wait_ended("o1", timeout=5))
    await asyncio.sleep(0)
    tracker.end("o1", Ended(at=2.0, status="COMPLETED", reason=None))
    tracker.end("o1", Ended(at=3.0, status="FAILED", reason="late duplicate"))
    assert await waiting is True
    assert tracker.ended["o1"].at == 2.0
    assert tracker.pending == 0
    # Already ended: no wait at all; never ending: False after the timeout.
    assert await tracker.wait_ended("o1", timeout=0) is True
    tracker.accept("o2", 1, at=1.5)
    assert await tracker.wait_ended("o2", timeout=0.01) is False
    assert tracker.pending == 1


# -------------------------------------------------------------------- relay


def test_relay_has_one_topic_more_than_hops() -> None:
    assert relay_topics(3) == ["relay.0", "relay.1", "relay.2", "relay.3"]


def test_saga_hops_match_the_critical_path() -> None:
    names = [m.TYPE for m in critical_path_messages()]
    assert len(names) == SAGA_HOPS == 9
    assert names[0] == "PlaceOrder" and names[-1] == "ShipmentPrepared"


def test_relay_payload_is_a_padded_real_envelope() -> None:
    size = typical_envelope_bytes()
    payload = relay_payload(size, "bench-0123456789abcdef0123456789abcdef")
    assert len(payload.value) == size
    envelope, message = decode(payload.value)
    assert envelope.type in {m.TYPE for m in critical_path_messages()}
    assert message.order_ref() == payload.key.decode()


# ------------------------------------------------------------------- summary


def result(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "config": {
            "orders": 2000,
            "warmup": 300,
            "via": "kafka",
            "rate": None,
            "concurrency": 32,
            "workers": 1,
            "attach": False,
            "partitions": 4,
        },
        "saga": {
            "completed": 2000,
            "not_completed": 0,
            "not_completed_by": {},
            "unfinished": 0,
            "rejected": 0,
            "window": {"start": 0.0, "end": 20.0, "ended": 2030, "seconds": 20.0},
            "sagas_per_s": 101.5,
            "accepted_per_s": 100.2,
            "latency_s": {"count": 2000, "p50": 0.31, "p95": 0.52, "p99": 0.9, "max": 1.25},
        },
        "relay": {
            "hops": 13,
            "message_bytes": 450,
            "messages_per_s": 406.0,
            "seconds": 4.9,
            "cpu_percent": {"bench": 97.4, "broker": 40.0},
            "received": 2000,
            "messages": 2000,
            "error": None,
        },
        "ratio": 0.25,
        "chain": {
            "hops": 13,
            "in_flight": 32,
            "chains": 2000,
            "completed": 2000,
            "chains_per_s": 250.0,
            "latency_s": {"p50": 0.12, "p99": 0.4},
            "error": None,
        },
        "chain_ratio": 0.406,
        "rss": {
            "workers_kb": {"webview-0": 81920, "orders-0": 71680},
            "servers_kb": {"broker": 51200, "redis": None},
        },
        "lag": {
            "at_end": {"orders": {"total": 3, "topics": {}}, "webview": {"error": "boom"}},
            "settled": {"orders": {"total": 0, "topics": {}}, "webview": {"error": "boom"}},
            "settled_after_s": 4.2,
        },
        "cpu_percent": {"bench": 12.3, "orders-0": 80.0, "broker": None},
        "notes": [],
        "out": "bench-results/bench-x.json",
    }
    base.update(overrides)
    return base


def test_summary_gives_every_figure() -> None:
    text = format_summary(result())
    assert "2000 orders after 300 warm-up, via kafka, closed loop, 32 in flight" in text
    assert "sagas/s       101.5" in text
    assert "2030 ended in the 20.0 s window" in text
    assert "p50 310 ms" in text and "p99 900 ms" in text and "max 1.25 s" in text
    assert "2000 COMPLETED, 0 not COMPLETED" in text
    assert "406.0 msg/s end to end (2000 of 2000 in 4.9 s, bench CPU 97%)" in text
    assert "250.0 chains/s closed loop, 32 in flight through 13 hops" in text
    assert "(2000 of 2000; p50 120 ms, p99 400 ms)" in text
    assert "40.6% of the chain rate; 25.0% of the flood relay" in text
    assert "webview-0 80, orders-0 70, broker 50, redis ?" in text
    assert "lag at end    orders 3, webview n/a" in text
    assert "lag +4 s      orders 0" in text
    assert "CPU % sagas   bench 12, orders-0 80, broker ?" in text
    assert "bench-results/bench-x.json" in text
    assert len(text.splitlines()) <= 24  # one screen


def test_summary_without_relay_or_rss_and_with_failures() -> None:
    r = result(relay=None, ratio=None, rss={"note": "n/a with --attach"}, notes=["odd"])
    r["config"]["rate"] = 50.0
    r["saga"].update(completed=1990, not_completed=10, not_completed_by={"FAILED/step_timeout": 10})
    text = format_summary(r)
    assert "open loop at 50/s" in text
    assert "skipped (--no-relay)" in text
    assert "10 not COMPLETED (FAILED/step_timeout 10)" in text
    assert "peak RSS      n/a with --attach" in text
    assert "note          odd" in text


def test_summary_when_nothing_was_measured() -> None:
    r = result()
    r["saga"].update(window=None, sagas_per_s=None, latency_s=None, completed=0, unfinished=2000)
    text = format_summary(r)
    assert "sagas/s       n/a" in text
    assert "2000 unfinished" in text


def test_default_out_path() -> None:
    when = datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)
    assert default_out_path(when) == Path("bench-results/bench-20250304-050607.json")
