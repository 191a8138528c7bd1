"""One order followed by its correlation id through the JSON logs of every group it passed."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from ordersaga.shell.groups import GROUP_NAMES
from tests.integration.conftest import System
from tests.integration.support import final, new_sku, order_body, wait_for

pytestmark = pytest.mark.integration

REQUIRED = ("time", "level", "group", "worker", "message")


def worker_logs(system: System) -> dict[str, list[Path]]:
    """Each group's worker log files (rotated ones included); not the broker's or Redis's."""
    found: dict[str, list[Path]] = {}
    for path in sorted((system.data_dir / "logs").glob("*-*.log*")):
        group = path.name.split(".log")[0].rsplit("-", 1)[0]
        if group in GROUP_NAMES:
            found.setdefault(group, []).append(path)
    return found


def read_lines(paths: list[Path]) -> list[dict[str, Any]]:
    """Every line of ``paths`` as JSON; a line that is not a JSON object fails the test."""
    lines: list[dict[str, Any]] = []
    for path in paths:
        for number, raw in enumerate(path.read_bytes().splitlines(), 1):
            try:
                line = orjson.loads(raw)
            except orjson.JSONDecodeError:
                pytest.fail(f"{path.name}:{number} is not JSON: {raw[:300]!r}")
            assert isinstance(line, dict), f"{path.name}:{number}: {raw[:300]!r}"
            missing = [k for k in REQUIRED if k not in line]
            assert not missing, f"{path.name}:{number} lacks {missing}: {raw[:300]!r}"
            lines.append(line)
    return lines


def test_one_orders_correlation_id_is_in_the_json_logs_of_every_group_it_passed(
    system: System, client: httpx.Client
) -> None:
    sku = new_sku(client, 5, 300)
    correlation_id = f"logs-{uuid.uuid4().hex[:12]}"
    r = client.post(
        "/orders", json=order_body([(sku, 1)]), headers={"X-Correlation-ID": correlation_id}
    )
    assert r.status_code == 202, r.text
    order_id = r.json()["order_id"]
    assert final(client, order_id)["status"] == "COMPLETED"

    def lines_of_the_order() -> dict[str, list[dict[str, Any]]]:
        found: dict[str, list[dict[str, Any]]] = {}
        for group, paths in worker_logs(system).items():
            for line in read_lines(paths):
                if line.get("correlation_id") == correlation_id:
                    found.setdefault(group, []).append(line)
        return found

    # The notification follows OrderCompleted, and the copy into the files lags a little.
    def every_line() -> dict[str, list[dict[str, Any]]] | None:
        f = lines_of_the_order()
        # The commit nobody awaits may be applied after the order's notification.
        committed = any(
            line["message"].endswith("done, unanswered") for line in f.get("inventory", [])
        )
        return f if set(f) == GROUP_NAMES and committed else None

    found = wait_for(every_line)
    assert found, f"groups with the order's lines: {sorted(lines_of_the_order())}"
    for group, lines in found.items():
        assert all(line["group"] == group for line in lines), group
        assert all(line["worker"].startswith(f"{group}@") for line in lines), group
        assert all(line["order_id"] == order_id for line in lines), (group, lines)
    messages = {group: [line["message"] for line in lines] for group, lines in found.items()}
    assert "order accepted" in messages["webview"]
    assert found["webview"][0]["http_path"] == "/orders"
    assert {"saga started: PENDING", "saga ended: COMPLETED"} <= set(messages["orders"])
    assert "ValidateCustomer -> CustomerValidated" in messages["customers"]
    # A one-SKU order's stock commands are answered by the SKU's own command, but
    # for the commit, which nobody awaits.
    assert any(m.endswith(" -> StockReserved") for m in messages["inventory"]), messages
    assert "SkuCommand commit -> done, unanswered" in messages["inventory"], messages
    assert "ChargePayment -> PaymentCharged" in messages["payments"]
    assert "PrepareShipment -> ShipmentPrepared" in messages["shipping"]
    # A line from a handled message says where the message was read.
    handled = found["payments"][0]
    assert handled["topic"] == "payments.commands"
    assert isinstance(handled["partition"], int) and isinstance(handled["offset"], int)
    assert handled["event_id"].startswith(order_id)


def test_every_line_of_every_worker_log_is_a_json_object_with_the_required_keys(
    system: System, client: httpx.Client
) -> None:
    logs = worker_logs(system)
    assert set(logs) == GROUP_NAMES
    for group, paths in logs.items():
        lines = read_lines(paths)
        # Faust's own lines are JSON too, not only ours.
        assert any(line["logger"].startswith(("faust", "mode")) for line in lines), group
        assert {line["group"] for line in lines} == {group}
