"""One order followed by its trace through every hop, exported over OTLP by the real workers.

A system of its own (on Tansu, the faster to start) whose workers export to a
small OTLP/HTTP receiver this module runs on 127.0.0.1; no other system traces.
"""

from __future__ import annotations

import gzip
import json
import threading
import uuid
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from tests.integration.conftest import System, running_system
from tests.integration.support import final, new_sku, order_body, wait_for

pytestmark = pytest.mark.integration

# The hops of a completed one-SKU order after its POST, in order: the span of
# each handled message, the child of the span that sent that message. The
# orchestrator sends a one-SKU order's stock commands to the SKU itself.
PATH = (
    ("orders.commands process", "PlaceOrder", "orders"),
    ("customers.commands process", "ValidateCustomer", "customers"),
    ("orders.replies process", "CustomerValidated", "orders"),
    ("inventory.sku-commands process", "SkuCommand", "inventory"),
    ("orders.replies process", "StockReserved", "orders"),
    ("payments.commands process", "ChargePayment", "payments"),
    ("orders.replies process", "PaymentCharged", "orders"),
    ("shipping.commands process", "PrepareShipment", "shipping"),
    ("orders.replies process", "ShipmentPrepared", "orders"),
)
# The commit the last decision sends, which nobody awaits: a child of its span too.
COMMIT = ("inventory.sku-commands process", "SkuCommand", "inventory")
# OrderPlaced, CustomerValidated, StockReserved, PaymentCharged, and OrderCompleted
# carrying ShipmentPrepared (one event per decision): each handled by the web view
# (notifications reads only the outcome, OrderEnded on orders.outcomes).
EVENTS = 5


@dataclass(frozen=True)
class Span:
    service: str
    trace_id: str
    span_id: str
    parent_id: str
    name: str
    kind: int
    start_ns: int
    attributes: dict[str, Any]


def _value(v: AnyValue) -> Any:
    return getattr(v, v.WhichOneof("value")) if v.WhichOneof("value") else None


class Receiver(ThreadingHTTPServer):
    """An OTLP/HTTP trace receiver: keeps every span of every export it is sent."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Export)
        self.spans: list[Span] = []
        self.lock = threading.Lock()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def keep(self, request: ExportTraceServiceRequest) -> None:
        found = []
        for resource_spans in request.resource_spans:
            resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for s in scope_spans.spans:
                    found.append(
                        Span(
                            service=str(resource.get("service.name")),
                            trace_id=s.trace_id.hex(),
                            span_id=s.span_id.hex(),
                            parent_id=s.parent_span_id.hex(),
                            name=s.name,
                            kind=s.kind,
                            start_ns=s.start_time_unix_nano,
                            attributes={a.key: _value(a.value) for a in s.attributes},
                        )
                    )
        with self.lock:
            self.spans.extend(found)

    def of_trace(self, trace_id: str) -> list[Span]:
        with self.lock:
            return [s for s in self.spans if s.trace_id == trace_id]


class _Export(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        encoding = self.headers.get("Content-Encoding", "")
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "deflate":
            body = zlib.decompress(body)
        if self.path != "/v1/traces":
            self.send_error(404)
            return
        self.server.keep(ExportTraceServiceRequest.FromString(body))
        answer = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: Any) -> None:
        return None


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def traced_system(receiver: Receiver, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    with running_system(
        "tansu",
        tmp_path_factory.mktemp("ordersaga-traced"),
        env={
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            # Export every 100 ms rather than every 5 s, so the test waits little.
            "OTEL_BSP_SCHEDULE_DELAY": "100",
            # Deadlines far off: no timer re-sends a step into the order's trace.
            "ORDERSAGA_STEP_TIMEOUT_S": "30",
        },
    ) as started:
        yield started


def test_one_order_is_one_trace_with_a_span_per_hop_each_the_child_of_the_one_before(
    traced_system: System, receiver: Receiver
) -> None:
    with httpx.Client(base_url=traced_system.base_url, timeout=60) as client:
        account = {"customer_id": "cust-1", "name": "Trace", "email": "t@test.example.com"}
        assert client.post("/customers", json=account).status_code in (200, 201)
        sku = new_sku(client, 5, 300)
        trace_id, client_span = uuid.uuid4().hex, uuid.uuid4().hex[:16]
        correlation_id = f"trace-{uuid.uuid4().hex[:12]}"
        r = client.post(
            "/orders",
            json=order_body([(sku, 1)]),
            headers={
                "traceparent": f"00-{trace_id}-{client_span}-01",
                "X-Correlation-ID": correlation_id,
            },
        )
        assert r.status_code == 202, r.text
        order_id = r.json()["order_id"]
        assert final(client, order_id)["status"] == "COMPLETED"

    def complete() -> list[Span]:
        spans = receiver.of_trace(trace_id)
        told = Counter(s.service for s in spans if s.name == "orders.events process")
        outcomes = [s for s in spans if s.name == "orders.outcomes process"]
        done = told["ordersaga-webview"] >= EVENTS and len(outcomes) >= 1
        last = any(s.attributes.get("ordersaga.event_type") == PATH[-1][1] for s in spans)
        # The reserve's and the commit's
        stock = sum(1 for s in spans if s.name == COMMIT[0])
        return spans if done and last and stock >= 2 else []

    spans = wait_for(complete, timeout=30)
    by_id = {s.span_id: s for s in spans}

    [post] = [s for s in spans if s.name == "POST /orders"]
    assert (post.service, post.parent_id) == ("ordersaga-webview", client_span)
    assert post.attributes["http.response.status_code"] == 202
    assert post.attributes["ordersaga.correlation_id"] == correlation_id

    # Walk the hops: each the child of the span before it, started after it.
    hops = [post]
    for name, event_type, group in PATH:
        children = sorted(
            (
                s
                for s in spans
                if s.parent_id == hops[-1].span_id
                and s.name == name
                and s.attributes.get("ordersaga.event_type") == event_type
            ),
            key=lambda s: s.start_ns,
        )
        assert children, f"no {name} of {event_type} under {hops[-1].name}: {spans}"
        hop = children[0]
        assert hop.service == f"ordersaga-{group}", hop
        assert hop.start_ns > hops[-1].start_ns, (hop, hops[-1])
        hops.append(hop)

    [commit] = [s for s in spans if s.parent_id == hops[-1].span_id and s.name == COMMIT[0]]
    assert (commit.service, commit.attributes["ordersaga.event_type"]) == (
        f"ordersaga-{COMMIT[2]}",
        COMMIT[1],
    )

    # Every span of the trace hangs off another of it, or off the client's span.
    assert all(s.parent_id in by_id for s in spans if s is not post), [
        s for s in spans if s.parent_id not in by_id and s is not post
    ]
    # The order's events reach the web view, and its outcome notifications, each
    # under the orchestrator span that sent it.
    events = [s for s in spans if s.name == "orders.events process"]
    assert all(by_id[s.parent_id].service == "ordersaga-orders" for s in events)
    [outcome] = [s for s in spans if s.name == "orders.outcomes process"]
    assert outcome.service == "ordersaga-notifications"
    assert outcome.attributes.get("ordersaga.event_type") == "OrderEnded"
    assert by_id[outcome.parent_id].service == "ordersaga-orders"
    assert all(by_id[s.parent_id].start_ns < s.start_ns for s in spans if s is not post)

    for hop in hops[1:]:
        attributes = hop.attributes
        assert attributes["messaging.system"] == "kafka"
        assert attributes["messaging.destination.name"] == hop.name.removesuffix(" process")
        assert attributes["ordersaga.order_id"] == order_id
        assert attributes["ordersaga.correlation_id"] == correlation_id
        assert isinstance(attributes["messaging.kafka.offset"], int)
        assert attributes["messaging.kafka.message.key"] in (order_id, sku, "cust-1")
        assert attributes["ordersaga.outcome"] == "ok"

    # With tracing on, every log line about the order names its trace and the span it
    # was logged in: from a line, an operator finds the trace, and from a span, its lines.
    lines = [
        json.loads(line)
        for path in sorted((traced_system.data_dir / "logs").glob("*-*.log"))
        for line in path.read_text().splitlines()
        if line.startswith("{") and f'"order_id":"{order_id}"' in line
    ]
    groups = {line["group"] for line in lines}
    assert {"webview", "orders", "customers", "inventory", "payments", "shipping"} <= groups
    assert all(line.get("trace_id") == trace_id for line in lines), lines
    assert all(line["span_id"] in by_id for line in lines), lines
