"""Apache Kafka's own console consumer reads what ordersaga writes: key, headers, JSON."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
import pytest

from tests.integration.conftest import System
from tests.integration.support import final, new_sku, order_body, place

pytestmark = pytest.mark.integration


def test_the_console_consumer_shows_key_type_correlation_and_json(
    system: System, client: httpx.Client
) -> None:
    if system.broker == "tansu":
        # Like kcat, Apache's Java consumer fails against Tansu (TimeoutException on
        # its first fetch); ordersaga's own `tail` is the console tool there.
        pytest.skip("Apache's console consumer does not work against Tansu")
    sku = new_sku(client, 5, 300)
    correlation = f"console-{sku}"
    order_id = place(client, order_body([(sku, 1)]), **{"X-Correlation-ID": correlation})
    assert final(client, order_id)["status"] == "COMPLETED"
    argv = [
        sys.executable,
        "-m",
        "ordersaga",
        "kafka",
        "console-consumer",
        "--bootstrap-server",
        system.bootstrap,
        "--topic",
        "orders.events",
        "--from-beginning",
        "--timeout-ms",
        "15000",
        "--formatter-property",
        "print.key=true",
        "--formatter-property",
        "print.headers=true",
    ]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False).stdout
    # One line per message: headers, key and value separated by tabs.
    mine = [
        line.split("\t")
        for line in out.splitlines()
        if f"\t{order_id}\t" in line and line.startswith("type:OrderEvent,")
    ]
    assert mine, out[-2000:]
    names = []
    for headers, key, value in mine:
        assert key == order_id
        fields = dict(h.split(":", 1) for h in headers.split(","))
        assert fields["type"] == "OrderEvent"
        assert fields["correlation_id"] == correlation
        envelope = json.loads(value)
        assert envelope["order_id"] == order_id and envelope["type"] == "OrderEvent"
        names.append(envelope["payload"]["name"])
    assert names[0] == "OrderPlaced" and names[-1] == "OrderCompleted", names
