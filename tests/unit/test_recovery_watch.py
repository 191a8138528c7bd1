"""A recovery is stuck when it reads nothing for the limit, however long it has run."""

from __future__ import annotations

from ordersaga.shell.recovery_watch import RecoveryWatch


def test_a_long_replay_that_keeps_reading_is_never_stuck() -> None:
    watch = RecoveryWatch(limit_s=1.0)
    assert all(watch.stalled(True, read, now=float(read)) is None for read in range(600))


def test_a_replay_that_stops_reading_is_stuck_after_the_limit() -> None:
    watch = RecoveryWatch(limit_s=1.0)
    assert watch.stalled(True, 10, now=0.0) is None
    assert watch.stalled(True, 10, now=1.0) is None
    assert watch.stalled(True, 10, now=1.5) == "table recovery read nothing for 1 s"


def test_a_new_recovery_starts_its_own_clock() -> None:
    watch = RecoveryWatch(limit_s=1.0)
    watch.stalled(True, 10, now=0.0)
    assert watch.stalled(False, 10, now=5.0) is None
    assert watch.stalled(True, 10, now=5.5) is None
    assert watch.stalled(True, 10, now=7.0) is not None
