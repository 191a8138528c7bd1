"""The in-flight limit: Little's law on what the system can end per second, floored and capped."""

from __future__ import annotations

import pytest

from ordersaga.web.admission import CompletionRate, admission_limit, in_flight_limit


def test_the_rate_is_measured_from_the_counter_of_ended_orders() -> None:
    rate = CompletionRate()
    rate.sample(0.0, 1000)  # the first reading only sets the origin
    assert rate.rate == 0.0
    rate.sample(0.1, 1100)  # too soon to say anything
    assert rate.rate == 0.0
    rate.sample(1.0, 1040)  # 40 ended in a second: taken as measured
    assert rate.rate == pytest.approx(40.0)
    rate.sample(2.0, 1140)  # 100/s: the smoothed rate moves a fifth of the way
    assert rate.rate == pytest.approx(52.0)


def test_a_counter_that_went_back_restarts_the_measurement() -> None:
    rate = CompletionRate()
    rate.sample(0.0, 500)
    rate.sample(1.0, 540)
    rate.sample(2.0, 3)  # Redis flushed: not a negative rate
    assert rate.rate == pytest.approx(40.0)
    rate.sample(3.0, 43)
    assert rate.rate == pytest.approx(40.0)


def test_a_stall_does_not_lower_the_best_rate_a_lasting_loss_does() -> None:
    rate = CompletionRate()
    ended, now = 0, 0.0
    rate.sample(now, ended)
    for _ in range(20):  # 80 ended per second for 20 s
        now, ended = now + 1.0, ended + 80
        rate.sample(now, ended)
    assert rate.rate == pytest.approx(80.0, rel=0.01) and rate.best == pytest.approx(80.0, rel=0.01)
    for _ in range(5):  # a worker SIGKILLed: nothing ends for 5 s
        now += 1.0
        rate.sample(now, ended)
    assert rate.rate < 30.0
    assert rate.best > 0.9 * 80.0  # what the limit is taken from barely moved
    for _ in range(300):  # half the capacity gone for good: 5 minutes at 40/s
        now, ended = now + 1.0, ended + 40
        rate.sample(now, ended)
    assert rate.best == pytest.approx(40.0, rel=0.05)


@pytest.mark.parametrize(
    ("rate", "expected"),
    [(0.0, 64), (10.0, 64), (40.0, 80), (100.0, 200), (1000.0, 500)],
)
def test_the_limit_is_rate_times_target_latency_between_floor_and_cap(
    rate: float, expected: int
) -> None:
    assert in_flight_limit(rate, target_latency_s=2.0, floor=64, cap=500) == expected


def test_a_cap_below_the_floor_wins() -> None:
    assert in_flight_limit(0.0, target_latency_s=2.0, floor=64, cap=2) == 2


def test_a_stalled_system_takes_orders_up_to_the_cap_a_busy_one_its_best_rate() -> None:
    rate = CompletionRate()
    ended, now = 0, 0.0
    rate.sample(now, ended)
    assert admission_limit(rate, 2.0, floor=64, cap=500) == 64  # nothing seen yet: the floor
    for _ in range(20):  # busy: 90 ended per second
        now, ended = now + 1.0, ended + 90
        rate.sample(now, ended)
    assert not rate.stalled
    assert admission_limit(rate, 2.0, floor=64, cap=500) == 180
    now += 0.5  # a step's worker restarting: nothing ends, seen at the next sample
    rate.sample(now, ended)
    assert rate.stalled
    assert admission_limit(rate, 2.0, floor=64, cap=500) == 500
    for _ in range(5):  # back, draining its backlog at full speed: still the cap
        now, ended = now + 1.0, ended + 120
        rate.sample(now, ended)
    assert rate.stalled
    for _ in range(10):  # the backlog drained: Little's law on the best rate again
        now, ended = now + 1.0, ended + 90
        rate.sample(now, ended)
    assert not rate.stalled
    assert admission_limit(rate, 2.0, floor=64, cap=500) > 180
