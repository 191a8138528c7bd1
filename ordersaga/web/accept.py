"""Accepting an order or a restock: the decisions, without aiohttp, Redis or Faust.

A POST with an ``Idempotency-Key`` first claims the key in Redis; what the
claim answers decides whether the request is the key's first use, a retry, or
another request under a used key (:func:`claim_outcome`). An accepted order is
then registered as awaiting its first event, and what that answers decides
whether its PlaceOrder is sent (:func:`place_order_send`). The views do the
two round trips; each decision is a function of what one of them answered,
which is why there are two functions and not one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any


def order_fingerprint(body: bytes) -> str:
    """What a retry of POST /orders must repeat: the body, byte for byte."""
    return hashlib.sha256(body).hexdigest()


def restock_fingerprint(sku: str, body: bytes) -> str:
    """What a retry of a restock must repeat: the SKU of its path and its body.

    The separator keeps a SKU and a body from combining like another pair.
    """
    return hashlib.sha256(sku.encode() + b"\0" + body).hexdigest()


@dataclass(frozen=True)
class KeyUse:
    """One use of an Idempotency-Key: the request's fingerprint, its id and when it came."""

    fingerprint: str
    id: str
    accepted_at: float

    def record(self) -> dict[str, Any]:
        """The record kept under the key in Redis."""
        return {"fingerprint": self.fingerprint, "id": self.id, "accepted_at": self.accepted_at}

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> KeyUse:
        """The use a record kept under a key stands for."""
        # A record without a fingerprint matches no request: the key counts as reused.
        return cls(
            fingerprint=str(record.get("fingerprint") or ""),
            id=str(record["id"]),
            accepted_at=float(record["accepted_at"]),
        )


class KeyOutcome(Enum):
    """What a request is to the Idempotency-Key it carries."""

    FIRST = "first"  # the key's first use: the request goes on under its own id
    REPLAY = "replay"  # a retry of the first use: answered as the first use was
    REUSED = "reused"  # another request under a used key: refused with 422


@dataclass(frozen=True)
class KeyClaim:
    """The outcome of claiming a key, and the id and time the key stands for."""

    outcome: KeyOutcome
    id: str
    accepted_at: float


def claim_outcome(minted: KeyUse, first: KeyUse) -> KeyClaim:
    """What a request is, given its own use of a key and the use Redis kept first.

    ``minted`` is what this request would be if it were first (a fresh id, now);
    ``first`` is the use the key's record holds once claimed: ``minted`` itself if
    this request won the claim. A retry takes the first use's id and time, so it
    answers the same order and does not look younger than it is.
    """
    if first.fingerprint != minted.fingerprint:
        outcome = KeyOutcome.REUSED
    elif first.id == minted.id:
        outcome = KeyOutcome.FIRST
    else:
        outcome = KeyOutcome.REPLAY
    # Always what Redis kept: the key's record is the one truth for every use of it.
    return KeyClaim(outcome, first.id, first.accepted_at)


class Send(Enum):
    """Whether an accepted order's PlaceOrder goes out with this answer."""

    SEND = "send"  # no event of the order yet, and early enough to start it
    CONFIRMED = "confirmed"  # an event is projected: the orchestrator has the order
    TOO_LATE = "too_late"  # the orchestrator may have run and forgotten it: it would run again


def place_order_send(
    *, awaiting: bool, accepted_at: float, now: float, redrive_window_s: float
) -> Send:
    """Whether to send the PlaceOrder of an order accepted at ``accepted_at``.

    ``awaiting`` is False once an event of the order is projected. A new order is
    sent; a retry is sent again under the re-drive's rule, so neither a lost send
    nor a message the orchestrator skipped leaves it unstarted, but never past
    ``redrive_window_s`` (``Settings.redrive_window_s``).
    """
    if not awaiting:
        return Send.CONFIRMED
    if now - accepted_at >= redrive_window_s:
        return Send.TOO_LATE
    return Send.SEND
