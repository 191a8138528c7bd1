"""Order ids carry their birth time: an order id runs once, ever."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter

from ordersaga.saga.order_ids import born_at, may_start, mint_order_id
from ordersaga.schemas.bounds import Id

MEMORY = 3600.0
NOW = 1_800_000_000.0


@given(st.floats(min_value=0, max_value=2**44 / 1000 - 1))
def test_a_minted_id_says_when_it_was_born_to_the_millisecond(now: float) -> None:
    order_id = mint_order_id(now)
    born = born_at(order_id)
    assert born is not None and abs(born - now) < 0.001
    # and it is a valid order id of the usual length
    assert TypeAdapter(Id).validate_python(order_id) == order_id
    assert len(order_id) == 28


def test_ids_of_the_same_millisecond_differ() -> None:
    assert len({mint_order_id(NOW) for _ in range(1000)}) == 1000


def test_a_young_order_may_start_an_old_one_never() -> None:
    young = mint_order_id(NOW - MEMORY + 1)
    old = mint_order_id(NOW - MEMORY - 1)
    assert may_start(young, sent_at=NOW, now=NOW, memory_s=MEMORY)
    # A copy of an old PlaceOrder in a fresh envelope still names an old order
    assert not may_start(old, sent_at=NOW, now=NOW, memory_s=MEMORY)


def test_an_order_remembered_as_forgotten_never_starts_again() -> None:
    young = mint_order_id(NOW - 1)
    assert not may_start(young, sent_at=NOW, now=NOW, memory_s=MEMORY, forgotten=True)


def test_an_id_of_another_form_is_as_old_as_its_first_send() -> None:
    assert born_at("ord-1") is None
    assert born_at("ord_zzzzzzzzzzzzzzzzzzzzzzzz") is None
    assert may_start("ord-1", sent_at=NOW - 5, now=NOW, memory_s=MEMORY)
    assert not may_start("ord-1", sent_at=NOW - MEMORY, now=NOW, memory_s=MEMORY)
