"""The invariant checker of `ordersaga audit`, on hand-built states."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import pytest

from ordersaga.ops.audit import State, check_invariants, stock_with_holds


def healthy() -> State:
    """One completed and one failed order, consistent everywhere."""
    return State(
        sagas={
            "o1": {"status": "COMPLETED", "total": 300, "items": [{"sku": "A", "quantity": 3}]},
            "o2": {"status": "FAILED", "total": 100, "items": [{"sku": "A", "quantity": 1}]},
        },
        stock={
            "A": {
                "put_in": 10,
                "available": 7,
                "reserved": 0,
                "committed": 3,
                "holds": {
                    "o1": {"quantity": 3, "state": "committed"},
                    "o2": {"quantity": 0, "state": "released"},
                },
            }
        },
        payments={"o1": {"charged": 300, "refunded": 0}, "o2": {"charged": 100, "refunded": 100}},
        shipments={"o1": {"status": "prepared"}, "o2": {"status": "cancelled"}},
        view_statuses={"o1": "COMPLETED", "o2": "FAILED"},
        stock_views={"A": {"available": 7, "reserved": 0, "committed": 3}},
    )


def failing(state: State, accepted: set[str] | None = None) -> list[str]:
    return [c.name[:2] for c in check_invariants(state, accepted) if not c.ok]


def test_a_consistent_state_passes_every_invariant() -> None:
    checks = check_invariants(healthy(), {"o1", "o2"})
    assert [c.ok for c in checks] == [True] * 6
    assert checks[0].figures["orders"] == 2


def mutate(path: list[Any], value: Any) -> State:
    state = copy.deepcopy(healthy())
    target: Any = state
    for step in path[:-1]:
        target = (
            getattr(target, step)
            if isinstance(step, str) and hasattr(target, step)
            else target[step]
        )
    target[path[-1]] = value
    return state


@pytest.mark.parametrize(
    ("path", "value", "broken"),
    [
        (["sagas", "o2", "status"], "COMPENSATING", "1."),
        (["stock", "A", "available"], 8, "2."),
        (["stock", "A", "holds", "o1"], {"quantity": 3, "state": "reserved"}, "2."),
        (["payments", "o1", "charged"], 600, "3."),
        (["payments", "o2", "refunded"], 0, "3."),
        (["shipments", "o2", "status"], "prepared", "4."),
        (["shipments", "o1", "status"], "cancelled", "4."),
        (["view_statuses", "o1"], "PAID", "5."),
        (["stock_views", "A", "available"], 9, "5."),
    ],
)
def test_each_violation_is_caught_by_its_invariant(path, value, broken) -> None:  # type: ignore[no-untyped-def]
    assert broken in failing(mutate(path, value))


def test_an_order_accepted_but_never_seen_by_the_orchestrator_fails() -> None:
    assert failing(healthy(), {"o1", "o2", "o3"}) == ["1."]


def test_a_completed_order_without_its_committed_stock_fails() -> None:
    state = mutate(["stock", "A", "holds", "o1"], {"quantity": 0, "state": "released"})
    state.stock["A"].update(available=10, committed=0)
    state.stock_views["A"].update(available=10, committed=0)
    assert failing(state) == ["2."]


def test_forgotten_orders_are_not_reported_missing_and_their_committed_stock_counts() -> None:
    state = healthy()
    # o1 was forgotten: saga, ledger and shipment deleted, its committed hold folded
    # into forgotten_committed.
    for table in (state.sagas, state.payments, state.shipments):
        del table["o1"]
    del state.stock["A"]["holds"]["o1"]
    state.stock["A"]["forgotten_committed"] = 3
    state = dataclasses.replace(state, forgotten={"o1"})
    checks = check_invariants(state, {"o1", "o2"})
    assert [c.name[:2] for c in checks if not c.ok] == []
    assert checks[0].figures["forgotten"] == 1

    # Without the fold, the committed level no longer matches its holds.
    state.stock["A"]["forgotten_committed"] = 0
    assert failing(state, {"o1", "o2"}) == ["2."]
    # And an accepted order that was never forgotten nor seen is still caught.
    state.stock["A"]["forgotten_committed"] = 3
    state = dataclasses.replace(state, forgotten=set())
    assert failing(state, {"o1", "o2"}) == ["1."]


def test_a_record_that_is_not_its_tables_record_fails_the_record_check() -> None:
    state = healthy()
    state.malformed.append("shipments[o3]: Input should be 'prepared', 'refused' or 'cancelled'")
    assert failing(state) == ["6."]


def test_stock_levels_are_derived_from_the_holds_as_the_workers_derive_them() -> None:
    # Given the stock and sku_holds changelogs' last values
    levels = {"A": {"sku": "A", "unit_price": 100, "put_in": 10, "version": 1}}
    holds = {
        "A/o1": {"sku": "A", "order_id": "o1", "quantity": 3, "state": "committed", "version": 3},
        "A/o2": {"sku": "A", "order_id": "o2", "quantity": 0, "state": "released", "version": 5},
    }
    # When they are merged
    stock = stock_with_holds(levels, holds)
    # Then the levels are the record's plus the sums of its holds, which the checks see
    a = stock["A"]
    assert (a["put_in"], a["available"], a["reserved"], a["committed"], a["version"]) == (
        10,
        7,
        0,
        3,
        5,
    )
    assert set(a["holds"]) == {"o1", "o2"}
    state = dataclasses.replace(healthy(), stock=stock)
    assert failing(state) == []


def test_more_held_than_was_put_in_fails_the_stock_check() -> None:
    levels = {"A": {"sku": "A", "unit_price": 100, "put_in": 2, "version": 1}}
    holds = {
        "A/o1": {"sku": "A", "order_id": "o1", "quantity": 3, "state": "committed", "version": 2},
    }
    state = dataclasses.replace(healthy(), stock=stock_with_holds(levels, holds))
    assert "2." in failing(state)
