"""The web tests' fixtures: the shared harness (``tests/harness.py``) and the webview's outbox.

Only the route tests ask for Redis (through ``client`` or ``store``); the tests
of the pure decisions start nothing.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from ordersaga.agents import webview
from ordersaga.shell.node import Node
from tests.harness import Outbox, _fresh_state, capture, client, drive, intake, store, view_store

__all__ = ["_fresh_state", "capture", "client", "drive", "intake", "outbox", "store", "view_store"]


@pytest.fixture
def outbox(capture: Callable[[Node], Outbox]) -> Outbox:
    """What the webview sends, as each agent test module binds ``capture`` to its node."""
    return capture(webview.node)
