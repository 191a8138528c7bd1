"""schemathesis against the running system: no 5xx, and no answer that contradicts /openapi.json.

Every operation of the document is fuzzed (its coverage cases, then a fixed
number of generated ones, valid and invalid, derandomized with a fixed seed so
every run sends the same cases, within a time bound) with the checks that hold
the document to what is served: no server error; only documented statuses,
content types and headers; bodies matching their schemas; 405 with a true
``Allow`` for a method a route does not have.

The fuzzer registers customers, blocks them, restocks SKUs and places orders on
the system the other tests share, so it may run before or after any of them:
every id it sends in a path or as a body's customer is its own
(:func:`own_namespace`: ``fz-`` plus what was generated, or one of the few it made
first, so that reads find something and answer 200, not only 404), so even a
generated id equal to a test's customer or SKU is never blocked or restocked, and
the other tests count only their own orders, stock and customers. The
no-restarts check that ends the session (``session_end``) also shows the fuzzing
crashed no worker.
"""

from __future__ import annotations

import re
import time
import zlib
from collections import Counter
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis import Case
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    allow_header_conformance,
    content_type_conformance,
    missing_required_header,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from ordersaga.agents import webview
from tests.integration.conftest import System
from tests.integration.support import final, order_body, place, wait_for

pytestmark = pytest.mark.integration

# Generated cases per operation (after its coverage cases), and the whole run's bound on
# each broker: past it no more requests are sent, and the last test fails.
MAX_EXAMPLES = 30
BUDGET_S = 60.0
SEED = 1313
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    # And what a route answers to a method it does not have: 405 with a true Allow.
    unsupported_method,
    allow_header_conformance,
    missing_required_header,
]
CONFIG = SchemathesisConfig.from_dict(
    {
        "seed": SEED,
        "generation": {
            "mode": "all",
            "max-examples": MAX_EXAMPLES,
            "deterministic": True,
            "database": "none",
        },
        "phases": {"stateful": {"enabled": False}},
    }
)
NAMESPACE = "fz-"
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@\-]{0,63}$")


class Run:
    """What the fuzzing sent, per broker."""

    def __init__(self) -> None:
        self.started: float | None = None
        self.sent: Counter[str] = Counter()
        self.statuses: Counter[int] = Counter()
        self.not_sent = 0

    def over_budget(self) -> bool:
        now = time.monotonic()
        if self.started is None:
            self.started = now
        return now - self.started > BUDGET_S


RUNS: dict[str, Run] = {}


@pytest.fixture(scope="module")
def http() -> Any:
    with requests.Session() as session:
        yield session


# The document the web view builds at start-up, loaded when the tests are collected
# (schemathesis' lazy loader does not run on this pytest); the first test checks that
# the running system serves exactly this document, and each case is sent to it.
DOCUMENT: dict[str, Any] = webview.desk.openapi.body()
schema = schemathesis.openapi.from_dict(DOCUMENT, config=CONFIG)


def test_the_running_system_serves_the_document_fuzzed_here(
    system: System, client: httpx.Client
) -> None:
    assert client.get("/openapi.json").json() == DOCUMENT


@dataclass(frozen=True)
class Known:
    """Ids that exist, of the fuzzer's own: reads of them answer 200, not just 404."""

    customer_id: str
    sku: str
    order_id: str


@pytest.fixture(scope="module")
def known(system: System, client: httpx.Client) -> Known:
    customer_id, sku = f"{NAMESPACE}known", f"{NAMESPACE}known-sku"
    account = {"customer_id": customer_id, "name": "Fuzz", "email": "fuzz@test.example.com"}
    assert client.post("/customers", json=account).status_code in (200, 201)
    r = client.post(f"/inventory/{sku}/restock", json={"quantity": 1000, "unit_price": 100})
    assert r.status_code == 202, r.text
    wait_for(lambda: client.get(f"/inventory/{sku}").status_code == 200)
    order = final(client, place(client, order_body([(sku, 1)], customer=customer_id)))
    assert order["status"] == "COMPLETED", order
    return Known(customer_id, sku, order["order_id"])


def _own(value: Any, existing: str) -> Any:
    # Only valid ids are changed: invalid ones must stay invalid. Half of them (by a
    # checksum, so every run picks the same) become the existing id, half move into
    # the fuzzer's namespace.
    if not (isinstance(value, str) and _ID.match(value)):
        return value
    if zlib.crc32(value.encode()) % 2:
        return existing
    return (NAMESPACE + value)[:64]


def own_namespace(case: Case, known: Known) -> None:
    """Point the case at the fuzzer's own customers, SKUs and order."""
    params = case.path_parameters or {}
    for name, existing in (
        ("customer_id", known.customer_id),
        ("sku", known.sku),
        ("order_id", known.order_id),
    ):
        if name in params:
            params[name] = _own(params[name], existing)
    if case.method.upper() == "POST" and isinstance(case.body, dict):
        if "customer_id" in case.body:
            case.body["customer_id"] = _own(case.body["customer_id"], known.customer_id)


@schema.parametrize()
@settings(
    derandomize=True,
    deadline=None,
    database=None,
    # No shrinking: a failure is reported as found, within the time bound.
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_the_api_answers_as_its_document_says(
    case: Case, system: System, http: requests.Session, known: Known
) -> None:
    run = RUNS.setdefault(system.broker, Run())
    if run.over_budget():
        run.not_sent += 1
        return
    own_namespace(case, known)
    response = case.call_and_validate(
        base_url=system.base_url, session=http, checks=CHECKS, timeout=30
    )
    # Coverage cases also send methods a route does not have (405): counted as its own.
    run.sent[case.operation.label] += 1
    run.statuses[response.status_code] += 1


def test_the_fuzzing_covered_every_operation_within_its_budget(
    system: System, client: httpx.Client
) -> None:
    run = RUNS.get(system.broker)
    assert run is not None and run.started is not None, "the fuzzing did not run"
    document = client.get("/openapi.json").json()
    operations = {
        f"{method.upper()} {path}" for path, item in document["paths"].items() for method in item
    }
    elapsed = time.monotonic() - run.started
    print(
        f"\nschemathesis on {system.broker}: {len(run.sent)} operations, "
        f"{sum(run.sent.values())} cases in {elapsed:.0f} s; statuses {dict(run.statuses)}"
    )
    assert run.not_sent == 0, f"{run.not_sent} cases were not sent within {BUDGET_S:.0f} s"
    assert set(run.sent) == operations
    # What it placed has ended (failed: its customers are unknown), so the tests after
    # this one start, as they expect, with nothing in flight.
    wait_for(lambda: not client.get("/dashboard/stats").json()["in_flight"], timeout=30)
