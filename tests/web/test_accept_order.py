"""Accepting an order or a restock, decided without aiohttp, Redis or Faust.

``claim_outcome`` decides what a request is to its Idempotency-Key, given the
use Redis kept first; ``place_order_send`` decides whether an accepted order's
PlaceOrder goes out, given whether an event of it is projected. The route tests
(``test_order_routes.py``, ``test_inventory_routes.py``) run the same cases
through HTTP and Redis.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ordersaga.web.accept import (
    KeyClaim,
    KeyOutcome,
    KeyUse,
    Send,
    claim_outcome,
    order_fingerprint,
    place_order_send,
    restock_fingerprint,
)

BODY = b'{"customer_id": "cust-1", "items": [{"sku": "SKU-A", "quantity": 1}]}'
OTHER_BODY = b'{"customer_id": "cust-1", "items": [{"sku": "SKU-B", "quantity": 1}]}'
T0 = 1_700_000_000.0
WINDOW = 600.0


def use(body: bytes = BODY, id: str = "ord_first", at: float = T0) -> KeyUse:
    return KeyUse(order_fingerprint(body), id, at)


def accept(
    minted: KeyUse, first: KeyUse | None, *, projected: bool, now: float
) -> tuple[KeyClaim, Send | None]:
    """The whole POST /orders decision as the view runs it, Redis answers given."""
    if first is None:  # no Idempotency-Key
        claim = KeyClaim(KeyOutcome.FIRST, minted.id, minted.accepted_at)
    else:
        claim = claim_outcome(minted, first)
    if claim.outcome is KeyOutcome.REUSED:
        return claim, None
    send = place_order_send(
        awaiting=not projected, accepted_at=claim.accepted_at, now=now, redrive_window_s=WINDOW
    )
    return claim, send


# ------------------------------------------------------------------ fingerprints


def test_an_order_fingerprint_is_of_the_exact_bytes() -> None:
    assert order_fingerprint(BODY) == order_fingerprint(bytes(BODY))
    assert order_fingerprint(BODY) != order_fingerprint(OTHER_BODY)
    # The same JSON written otherwise is another request: retries resend their bytes.
    assert order_fingerprint(BODY) != order_fingerprint(BODY.replace(b": ", b":"))
    assert len(order_fingerprint(b"")) == 64


def test_a_restock_fingerprint_covers_the_sku_and_the_body() -> None:
    body = b'{"quantity": 5, "unit_price": 250}'
    assert restock_fingerprint("SKU-N", body) == restock_fingerprint("SKU-N", body)
    assert restock_fingerprint("SKU-N", body) != restock_fingerprint("SKU-M", body)
    assert restock_fingerprint("SKU-N", body) != restock_fingerprint("SKU-N", body + b" ")
    # The separator: the SKU's end cannot pass for the body's start.
    assert restock_fingerprint("SKU-1", b"2{}") != restock_fingerprint("SKU-12", b"{}")
    assert restock_fingerprint("SKU-N", body) != order_fingerprint(body)


# ------------------------------------------------------------------ key records


def test_a_key_use_survives_its_record() -> None:
    minted = use()
    assert minted.record() == {
        "fingerprint": order_fingerprint(BODY),
        "id": "ord_first",
        "accepted_at": T0,
    }
    assert KeyUse.from_record(minted.record()) == minted


def test_a_record_read_back_from_json_is_typed() -> None:
    first = KeyUse.from_record({"fingerprint": "f" * 64, "id": "rst_1", "accepted_at": 12})
    assert first == KeyUse("f" * 64, "rst_1", 12.0)
    assert isinstance(first.accepted_at, float)


@pytest.mark.parametrize("fingerprint", [None, ""], ids=["missing", "empty"])
def test_a_record_without_a_fingerprint_matches_no_request(fingerprint: str | None) -> None:
    record = {"id": "ord_old", "accepted_at": T0}
    if fingerprint is not None:
        record["fingerprint"] = fingerprint
    claim = claim_outcome(use(id="ord_new"), KeyUse.from_record(record))
    assert claim.outcome is KeyOutcome.REUSED


# ------------------------------------------------------------------ claim_outcome


def test_the_request_that_wins_the_claim_is_the_first_use() -> None:
    minted = use(id="ord_new", at=T0 + 5)
    assert claim_outcome(minted, minted) == KeyClaim(KeyOutcome.FIRST, "ord_new", T0 + 5)
    # Redis hands back an equal record, not the same object.
    again = KeyUse.from_record(minted.record())
    assert claim_outcome(minted, again) == KeyClaim(KeyOutcome.FIRST, "ord_new", T0 + 5)


def test_a_retry_is_answered_with_the_first_uses_id_and_time() -> None:
    first = use(id="ord_first", at=T0)
    retry = use(id="ord_minted_for_the_retry", at=T0 + 30)
    assert claim_outcome(retry, first) == KeyClaim(KeyOutcome.REPLAY, "ord_first", T0)


def test_another_body_under_a_used_key_is_reused() -> None:
    first = use(BODY, id="ord_first")
    other = use(OTHER_BODY, id="ord_other", at=T0 + 1)
    claim = claim_outcome(other, first)
    assert claim.outcome is KeyOutcome.REUSED
    # What the key still stands for: the first body's order.
    assert (claim.id, claim.accepted_at) == ("ord_first", T0)


def test_a_fingerprint_mismatch_is_reused_whatever_the_ids() -> None:
    first = use(BODY, id="ord_same")
    assert claim_outcome(use(OTHER_BODY, id="ord_same"), first).outcome is KeyOutcome.REUSED


def test_restock_keys_follow_the_same_rule() -> None:
    body = b'{"quantity": 5, "unit_price": 250}'
    first = KeyUse(restock_fingerprint("SKU-N", body), "rst_first", T0)
    retry = KeyUse(restock_fingerprint("SKU-N", body), "rst_retry", T0 + 1)
    other_sku = KeyUse(restock_fingerprint("SKU-M", body), "rst_m", T0 + 1)
    other_quantity = KeyUse(
        restock_fingerprint("SKU-N", b'{"quantity": 6, "unit_price": 250}'), "rst_q", T0 + 1
    )
    assert claim_outcome(first, first).outcome is KeyOutcome.FIRST
    assert claim_outcome(retry, first) == KeyClaim(KeyOutcome.REPLAY, "rst_first", T0)
    assert claim_outcome(other_sku, first).outcome is KeyOutcome.REUSED
    assert claim_outcome(other_quantity, first).outcome is KeyOutcome.REUSED


fingerprints = st.sampled_from(["a" * 64, "b" * 64, ""])
ids = st.sampled_from(["ord_1", "ord_2", "rst_1"])
times = st.floats(min_value=0, max_value=2e9, allow_nan=False)


@given(fingerprints, ids, times, fingerprints, ids, times)
def test_claim_outcome_against_the_rule_it_replaced(
    fp: str, id: str, at: float, first_fp: str, first_id: str, first_at: float
) -> None:
    minted, first = KeyUse(fp, id, at), KeyUse(first_fp, first_id, first_at)
    claim = claim_outcome(minted, first)
    # The route's former inline rule: refuse a fingerprint mismatch, else take the first's.
    assert (claim.outcome is KeyOutcome.REUSED) == (first_fp != fp)
    if claim.outcome is not KeyOutcome.REUSED:
        assert (claim.id, claim.accepted_at) == (first_id, first_at)
        assert (claim.outcome is KeyOutcome.FIRST) == (first_id == id)


# --------------------------------------------------------------- place_order_send


@pytest.mark.parametrize(
    ("awaiting", "age", "expected"),
    [
        (True, 0.0, Send.SEND),  # a new order
        (True, WINDOW / 2, Send.SEND),  # a retry, never confirmed
        (True, WINDOW - 0.001, Send.SEND),
        (True, WINDOW, Send.TOO_LATE),  # the orchestrator may have forgotten it
        (True, WINDOW * 10, Send.TOO_LATE),
        (True, -5.0, Send.SEND),  # accepted by a worker whose clock is ahead
        (False, 0.0, Send.CONFIRMED),  # an event is projected already
        (False, WINDOW / 2, Send.CONFIRMED),
        (False, WINDOW * 10, Send.CONFIRMED),
    ],
)
def test_place_order_send(awaiting: bool, age: float, expected: Send) -> None:
    send = place_order_send(
        awaiting=awaiting, accepted_at=T0, now=T0 + age, redrive_window_s=WINDOW
    )
    assert send is expected


@given(
    st.booleans(),
    times,
    times,
    st.floats(min_value=1, max_value=1e6, allow_nan=False),
)
def test_place_order_send_against_the_rule_it_replaced(
    awaiting: bool, accepted_at: float, now: float, window: float
) -> None:
    send = place_order_send(
        awaiting=awaiting, accepted_at=accepted_at, now=now, redrive_window_s=window
    )
    assert (send is Send.SEND) == (awaiting and now - accepted_at < window)


# ------------------------------------------------------------ POST /orders, whole


def test_a_new_order_without_a_key_is_sent() -> None:
    minted = use(id="ord_new")
    assert accept(minted, None, projected=False, now=T0) == (
        KeyClaim(KeyOutcome.FIRST, "ord_new", T0),
        Send.SEND,
    )


def test_a_new_order_with_a_key_is_sent() -> None:
    minted = use(id="ord_new")
    assert accept(minted, minted, projected=False, now=T0) == (
        KeyClaim(KeyOutcome.FIRST, "ord_new", T0),
        Send.SEND,
    )


def test_a_retry_of_an_unconfirmed_order_resends_the_same_order() -> None:
    first = use(id="ord_first", at=T0)
    retry = use(id="ord_retry", at=T0 + 20)
    assert accept(retry, first, projected=False, now=T0 + 20) == (
        KeyClaim(KeyOutcome.REPLAY, "ord_first", T0),
        Send.SEND,
    )


def test_a_retry_of_a_projected_order_sends_nothing() -> None:
    first = use(id="ord_first", at=T0)
    retry = use(id="ord_retry", at=T0 + 20)
    assert accept(retry, first, projected=True, now=T0 + 20) == (
        KeyClaim(KeyOutcome.REPLAY, "ord_first", T0),
        Send.CONFIRMED,
    )


def test_a_retry_past_the_window_sends_nothing_and_keeps_its_first_time() -> None:
    first = use(id="ord_first", at=T0)
    late = T0 + WINDOW + 1
    retry = use(id="ord_retry", at=late)
    assert accept(retry, first, projected=False, now=late) == (
        KeyClaim(KeyOutcome.REPLAY, "ord_first", T0),
        Send.TOO_LATE,
    )


def test_the_same_key_with_another_body_is_refused_and_sends_nothing() -> None:
    first = use(BODY, id="ord_first", at=T0)
    other = use(OTHER_BODY, id="ord_other", at=T0 + 1)
    claim, send = accept(other, first, projected=False, now=T0 + 1)
    assert claim.outcome is KeyOutcome.REUSED
    assert send is None
