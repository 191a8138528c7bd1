"""The timers' memory of what they sent: due again after the interval, pruned later."""

from __future__ import annotations

from ordersaga.saga.throttle import Throttle


def test_a_key_is_due_until_sent_then_again_after_the_interval() -> None:
    t = Throttle(every_s=10.0, forget_after_s=100.0)
    assert t.due("a", 0.0)
    t.sent("a", 0.0)
    assert not t.due("a", 9.9)
    assert t.due("a", 10.0)
    assert t.due("b", 0.0)


def test_old_keys_are_pruned_so_memory_stays_bounded() -> None:
    t = Throttle(every_s=1.0, forget_after_s=5.0)
    for i in range(1000):
        t.sent(i, float(i) / 100)
    t.prune(now=7.5)
    assert len(t) == 750  # those sent at 2.5 s or later
    t.prune(now=20.0)
    assert len(t) == 0
    t.sent("x", 20.0)
    t.prune(now=24.0)
    assert len(t) == 1
