"""The saga table itself: every entry is whole and consistent with the messages it names."""

from __future__ import annotations

from ordersaga.saga.definition import SAGA, UNDOS
from ordersaga.schemas.status import TERMINAL
from tests.unit.saga_driver import _paid


def test_every_step_builds_the_command_it_declares_from_a_saga() -> None:
    state = _paid().state
    assert state is not None
    state = state.model_copy(update={"payment_token": "tok_ok"})
    for step in SAGA:
        assert type(step.build(state)) is step.command, step.name
        if step.undo is not None:
            assert type(step.undo.build(state)) is step.undo.command, step.undo.name


def test_names_replies_and_reasons_are_distinct_and_only_the_last_step_ends_the_saga() -> None:
    assert len({s.name for s in SAGA} | set(UNDOS)) == len(SAGA) + len(UNDOS)
    assert len({s.success for s in SAGA}) == len(SAGA)
    failures = [s.failure for s in SAGA if s.failure is not None]
    assert len(set(failures)) == len(failures)
    reasons = [s.failure_reason for s in SAGA if s.failure is not None]
    assert None not in reasons and len(set(reasons)) == len(reasons)
    assert [s.status_after in TERMINAL for s in SAGA] == [False] * (len(SAGA) - 1) + [True]


def test_each_undo_answers_with_its_own_reply() -> None:
    assert len({u.done for u in UNDOS.values()}) == len(UNDOS)
    assert all(u.done not in {s.success for s in SAGA} for u in UNDOS.values())
