"""Traces through the shells: an HTTP span, then a span per message handled, linked by headers.

The webview, orders and customers shells run with tracing on (an in-memory exporter
instead of OTLP): the POST's span is the parent of the PlaceOrder's handling, whose
span is the parent of the ValidateCustomer's, each hop through a real ``traceparent``
header in the message the previous hop sent.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from ordersaga.agents import customers, orders, shipping, webview
from ordersaga.observability.tracing import Tracing, traces_url, tracing_for
from ordersaga.schemas.messages import PrepareShipment, ValidateCustomer
from ordersaga.shell.codec import encode
from ordersaga.shell.topics import (
    CUSTOMERS_COMMANDS,
    ORDERS_COMMANDS,
    ORDERS_REPLIES,
    SHIPPING_COMMANDS,
)
from tests.harness import ADDRESS, ITEMS, JSON, ORDER_ID, order_body, stock

CLIENT_TRACE = 0x4BF92F3577B34DA6A3CE929D0E0E4736
CLIENT_SPAN = 0x00F067AA0BA902B7
TRACEPARENT = f"00-{CLIENT_TRACE:032x}-{CLIENT_SPAN:016x}-01"


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    """Tracing on for the three shells, every span kept in memory as it ends."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    for node in (webview.node, orders.node, customers.node):
        monkeypatch.setattr(node, "tracing", Tracing(provider, node.group.app_id))
    yield exporter
    provider.shutdown()


@pytest.fixture
async def traced_client(view_store, spans) -> AsyncIterator[TestClient]:
    """The webview's routes behind its middlewares, the tracing one outermost as in a worker."""
    tracing = webview.node.tracing
    assert tracing is not None
    app = web.Application(middlewares=[tracing.middleware(), *webview.app.web.web_app.middlewares])
    for route in webview.app.web.web_app.router.routes():
        app.router.add_route(route.method, route.resource.canonical, route.handler)
    async with TestClient(TestServer(app)) as c:
        yield c


def only(found: list[ReadableSpan], name: str) -> ReadableSpan:
    [span] = [s for s in found if s.name == name]
    return span


async def test_an_order_is_one_trace_from_its_post_through_each_message_handled(
    traced_client: TestClient, spans: InMemorySpanExporter, drive, capture
) -> None:
    await stock(drive, "SKU-A")
    spans.clear()
    sent_by = {n.group.name: capture(n) for n in (webview.node, orders.node, customers.node)}
    r = await traced_client.post(
        "/orders",
        data=orjson.dumps(order_body()),
        headers={**JSON, "traceparent": TRACEPARENT, "X-Correlation-ID": "cor-trace"},
    )
    assert r.status == 202
    order_id = (await r.json())["order_id"]

    [place] = sent_by["webview"].on(ORDERS_COMMANDS)
    async with drive(orders.run_sagas, orders.node) as d:
        await d.put_sent(place)
    [validate] = [
        s
        for s in sent_by["orders"].on(CUSTOMERS_COMMANDS)
        if isinstance(s.message, ValidateCustomer)
    ]
    async with drive(customers.keep_customers, customers.node) as d:
        await d.put_sent(validate)
    [answer] = sent_by["customers"].on(ORDERS_REPLIES)

    found = list(spans.get_finished_spans())
    post = only(found, "POST /orders")
    placed = only(found, f"{ORDERS_COMMANDS} process")
    validated = only(found, f"{CUSTOMERS_COMMANDS} process")
    # One trace, the client's, each hop the child of the one that sent its message.
    assert {s.context.trace_id for s in found} == {CLIENT_TRACE}
    assert post.parent is not None and post.parent.span_id == CLIENT_SPAN
    assert placed.parent is not None and placed.parent.span_id == post.context.span_id
    assert validated.parent is not None and validated.parent.span_id == placed.context.span_id
    assert post.start_time < placed.start_time < validated.start_time
    # The header each message carried names the span that was current when it was sent.
    assert place.header("traceparent") == f"00-{CLIENT_TRACE:032x}-{post.context.span_id:016x}-01"
    assert answer.header("traceparent") == (
        f"00-{CLIENT_TRACE:032x}-{validated.context.span_id:016x}-01"
    )

    assert post.kind is SpanKind.SERVER
    assert dict(post.attributes or {}) == {
        "http.request.method": "POST",
        "url.path": "/orders",
        "http.route": "/orders",
        "http.response.status_code": 202,
        "ordersaga.correlation_id": "cor-trace",
    }
    assert validated.kind is SpanKind.CONSUMER
    attributes = dict(validated.attributes or {})
    assert attributes == {
        "messaging.system": "kafka",
        "messaging.operation.type": "process",
        "messaging.operation.name": "process",
        "messaging.destination.name": CUSTOMERS_COMMANDS,
        "messaging.destination.partition.id": attributes["messaging.destination.partition.id"],
        "messaging.kafka.offset": attributes["messaging.kafka.offset"],
        "messaging.consumer.group.name": "ordersaga-customers",
        "messaging.kafka.message.key": "cust-1",
        "messaging.message.id": validate.envelope.event_id,
        "ordersaga.event_type": "ValidateCustomer",
        "ordersaga.correlation_id": "cor-trace",
        "ordersaga.order_id": order_id,
        "ordersaga.outcome": "ok",
    }
    assert isinstance(attributes["messaging.kafka.offset"], int)


async def test_a_request_without_traceparent_starts_a_trace_and_unknown_routes_are_named_by_method(
    traced_client: TestClient, spans: InMemorySpanExporter
) -> None:
    spans.clear()
    assert (await traced_client.get("/nowhere")).status == 404
    assert (await traced_client.get("/orders/ord_missing")).status == 404
    first, second = spans.get_finished_spans()
    assert first.name == "GET" and first.parent is None
    assert second.name == "GET /orders/{order_id}"
    assert dict(second.attributes or {})["http.response.status_code"] == 404


def test_tracing_is_off_without_an_endpoint_and_exports_to_v1_traces_with_one() -> None:
    assert tracing_for("ordersaga-orders", None) is None
    assert tracing_for("ordersaga-orders", "") is None
    assert traces_url("http://127.0.0.1:4318/") == "http://127.0.0.1:4318/v1/traces"
    on = tracing_for("ordersaga-orders", "http://127.0.0.1:9")
    assert on is not None
    try:
        resource = on.provider.resource.attributes
        assert resource["service.name"] == "ordersaga-orders"
    finally:
        on.shutdown()


async def test_with_tracing_off_a_worker_neither_starts_spans_nor_passes_traceparent_on(
    drive, capture
) -> None:
    # The shells as every worker without OTEL_EXPORTER_OTLP_ENDPOINT has them.
    assert shipping.node.tracing is None
    outbox = capture(shipping.node)
    command = PrepareShipment(order_id=ORDER_ID, address=ADDRESS, items=ITEMS)
    encoded = encode(command, key=ORDER_ID, correlation_id="cor-off")
    async with drive(shipping.ship_orders, shipping.node) as d:
        await d.put_raw(
            encoded.value,
            key=ORDER_ID,
            topic=SHIPPING_COMMANDS,
            headers=[*encoded.headers, ("traceparent", TRACEPARENT.encode())],
        )
    [reply] = outbox.on(ORDERS_REPLIES)
    assert reply.header("traceparent") is None
    assert [k for k, _ in reply.headers] == ["type", "version", "correlation_id", "event_id"]
