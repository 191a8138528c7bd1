"""The agent tests' fixtures, from the shared harness (``tests/harness.py``)."""

from __future__ import annotations

from tests.harness import (
    _fresh_state,
    _gateway_journal,
    capture,
    client,
    drive,
    intake,
    store,
    view_store,
)

__all__ = [
    "_fresh_state",
    "_gateway_journal",
    "capture",
    "client",
    "drive",
    "intake",
    "store",
    "view_store",
]
