"""Timeouts and the payment circuit breaker, on the running system."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.integration.conftest import System
from tests.integration.support import final, history, new_sku, order_body, place, stock, wait_for

pytestmark = pytest.mark.integration


def test_a_gateway_that_never_answers_times_out_and_compensates(client: httpx.Client) -> None:
    # Given a payment token the gateway never answers
    sku = new_sku(client, 5, 400)
    order_id = place(client, order_body([(sku, 2)], token="tok_timeout"))
    # Then the charge is retried, the saga gives up and releases the stock
    order = final(client, order_id)
    assert (order["status"], order["failure_reason"]) == ("FAILED", "step_timeout")
    events = history(client, order_id)
    assert events.count("StepRetried") == 2  # three sends in all
    assert events[-3:] == ["PaymentRefunded", "StockReleased", "OrderFailed"]
    assert wait_for(lambda: stock(client, sku)["available"] == 5)
    assert stock(client, sku)["reserved"] == 0


def breaker_state(system: System) -> str:
    payments_port = system.web_port + 3
    text = httpx.get(f"http://127.0.0.1:{payments_port}/metrics").text
    line = next(x for x in text.splitlines() if x.startswith("ordersaga_circuit_state{"))
    return {"0.0": "closed", "1.0": "half_open", "2.0": "open"}[line.split()[-1]]


def test_circuit_opens_after_gateway_errors_fails_fast_then_recovers(
    system: System, client: httpx.Client
) -> None:
    sku = new_sku(client, 20, 400)
    # Given three orders of two customers whose charges hit a failing gateway (in
    # tests: 3 failures from at least 2 customers)
    for customer in ("cust-faults", "cust-mallory", "cust-faults"):
        failing = order_body([(sku, 1)], token="tok_gateway_error", customer=customer)
        order = final(client, place(client, failing))
        assert (order["status"], order["failure_detail"]) == ("FAILED", "gateway_unavailable")
    assert breaker_state(system) == "open"
    # When a good card arrives while the circuit is open, it fails fast with a clear reason
    order = final(client, place(client, order_body([(sku, 1)])))
    assert (order["status"], order["failure_reason"]) == ("FAILED", "payment_declined")
    assert order["failure_detail"] == "circuit_open"
    # Then after the cool-down a trial call closes the circuit again
    time.sleep(3.5)
    order = final(client, place(client, order_body([(sku, 1)])))
    assert order["status"] == "COMPLETED"
    assert breaker_state(system) == "closed"
    assert wait_for(lambda: stock(client, sku)["available"] == 19)
