"""The agenda the orchestrator's timers read instead of scanning the saga table."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ordersaga.saga.agenda import Agenda


def test_due_hands_out_each_key_whose_time_has_come_once_in_time_order():
    agenda = Agenda()
    agenda.at("b", 20.0)
    agenda.at("a", 10.0)
    agenda.at("c", 30.0)
    assert agenda.due(5.0) == []
    assert agenda.due(20.0) == ["a", "b"]
    assert agenda.due(20.0) == []
    assert len(agenda) == 1


def test_filing_a_key_again_replaces_its_time():
    agenda = Agenda()
    agenda.at("a", 10.0)
    agenda.at("a", 50.0)  # the saga moved its deadline
    assert agenda.due(20.0) == []
    assert agenda.due(50.0) == ["a"]


def test_a_dropped_key_is_never_due():
    agenda = Agenda()
    agenda.at("a", 10.0)
    agenda.drop("a")
    agenda.drop("never-filed")
    assert agenda.due(100.0) == []
    assert len(agenda) == 0


def test_the_heap_stays_bounded_however_often_keys_are_filed_again():
    agenda = Agenda()
    for i in range(50_000):
        agenda.at(f"k{i % 10}", float(i))
    assert len(agenda) == 10
    assert len(agenda._heap) <= 2 * 10 + 1_000 + 1


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["at", "drop", "due"]),
            st.sampled_from(["a", "b", "c", "d"]),
            st.integers(min_value=0, max_value=50),
        ),
        max_size=60,
    )
)
def test_an_agenda_behaves_like_a_dict_of_due_times(actions):
    agenda, model = Agenda(), {}
    for action, key, t in actions:
        if action == "at":
            agenda.at(key, float(t))
            model[key] = float(t)
        elif action == "drop":
            agenda.drop(key)
            model.pop(key, None)
        else:
            expected = sorted((w, k) for k, w in model.items() if w <= t)
            assert agenda.due(float(t)) == [k for _, k in expected]
            for _, k in expected:
                del model[k]
        assert len(agenda) == len(model)
