"""The fault phases' options and how their figures are summed up (no system needed)."""

from __future__ import annotations

import pytest

from ordersaga.ops.bench.config import BenchConfig
from ordersaga.ops.bench.faults import _answers
from ordersaga.ops.bench.load import Ended, Tracker
from ordersaga.ops.bench.report import _fault_line


@pytest.mark.parametrize(
    ("options", "refusal"),
    [
        ({"kills_s": -1}, "--kills cannot be negative"),
        ({"brokers": 2}, "--brokers must be 1 or 3"),
        ({"broker_loss_s": 30}, "--broker-loss needs --brokers 3"),
        ({"attach": True, "kills_s": 30}, "need the embedded system"),
    ],
)
def test_fault_options_are_checked(options: dict[str, object], refusal: str) -> None:
    with pytest.raises(ValueError, match=refusal):
        BenchConfig(**options)  # type: ignore[arg-type]


def test_a_fault_phase_counts_what_was_offered_answered_and_how_it_ended() -> None:
    tracker = Tracker(customer_id="c")
    tracker.accept("o1", 0, 10.0)
    tracker.accept("o2", 1, 10.1)
    tracker.end("o1", Ended(10.5, "COMPLETED", None))
    tracker.end("o2", Ended(11.0, "FAILED", "step_timeout"))
    tracker.refused = 2
    tracker.post_s = [0.01, 0.02, 3.5, 0.03]
    tracker.statuses = {"202": 2, "429": 2}
    figures = _answers(tracker, rate=2.0, seconds=2.0)
    assert figures["offered"] == 4 and figures["accepted"] == 2
    assert figures["accepted_share"] == 0.5
    assert figures["posts_over_3_s"] == 1 and figures["post_s"]["max"] == 3.5
    assert figures["completed"] == 1 and figures["step_timeouts"] == 1
    line = _fault_line("kills", {**figures, "kills": 3, "killed": {"payments": 3}})
    assert "2 of 4 accepted (50%)" in line and "3 saga workers SIGKILLed" in line
    assert "1 over 3 s" in line and "1 FAILED step_timeout" in line
