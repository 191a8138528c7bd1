"""Last of the session: whatever the tests sent, no worker exited or was restarted.

Marked ``session_end``: tests/integration/conftest.py runs it after every other test
of its system, whatever the files' names or the order they are given in.
"""

from __future__ import annotations

import json

import httpx
import pytest

from ordersaga.shell.groups import GROUPS
from tests.integration.conftest import System

pytestmark = pytest.mark.integration


@pytest.mark.session_end
def test_no_worker_restarted_during_the_session(system: System) -> None:
    status = json.loads((system.data_dir / "supervisor.json").read_text())
    assert status["state"] == "up", status
    workers = status["workers"]
    assert {w["group"] for w in workers} == {g.name for g in GROUPS}
    assert [
        (w["name"], w["restarts"], w["exits"]) for w in workers if w["restarts"] or w["exits"]
    ] == []
    assert not [line for line in system.output if "exited with" in line]
    for group in GROUPS:
        port = group.web_port(system.web_port)
        assert httpx.get(f"http://127.0.0.1:{port}/ready").status_code == 200, group.name
        live = httpx.get(f"http://127.0.0.1:{port}/live")
        assert live.status_code == 200, group.name
        # One instance per start, named after its group, host and port.
        assert live.json()["instance"].startswith(f"{group.name}@"), live.json()
        assert f":{port}:" in live.json()["instance"]
