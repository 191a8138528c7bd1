"""Shared harness for the Faust agent shells (``ordersaga.agents.*``) and the web view's routes.

``tests/agents/conftest.py`` and ``tests/web/conftest.py`` take their fixtures
from here; test data and helpers are imported from here directly.

Each agent runs under ``agent.test_context()``: nothing connects to Kafka, and
its tables live in the memory store. Outbound messages are caught where they
leave the process: ``Node.topic(name).send`` is replaced, per node, by a
recorder (:class:`Outbox`), so every ``node.send`` and every dead-letter is
seen with its topic, key, value and headers, and decoded with the real codec.

The webview group's read model lives in Redis, a real one: ``valkey_port``
(``tests/conftest.py``) starts a ``valkey-server`` for the session, and
:func:`view_store` hands the webview a client on a flushed database for each
test that asks for it. :func:`client` serves the webview app's routes over
aiohttp's test server, answering from that store.

The agents never yield, and faust's test wrapper wakes ``put()`` as soon as the
stream has *taken* the value, not when the handler is done. :class:`AgentDriver`
therefore waits for ``Node.consume`` to report the message finished (its
``ok`` counter, or a dead-letter actually sent) before it returns.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient, TestServer

from ordersaga.adapters.queue_probe import Place, QueueProbe
from ordersaga.agents import (
    customers,
    inventory,
    notifications,
    orders,
    payments,
    shipping,
    webview,
)
from ordersaga.config.settings import get_settings
from ordersaga.schemas.messages import (
    Address,
    Envelope,
    Message,
    OrderEvent,
    OrderLine,
    OrderSnapshot,
    PlaceOrder,
    StockChanged,
)
from ordersaga.shell.codec import Encoded, decode, encode
from ordersaga.shell.node import Node
from ordersaga.shell.topics import INVENTORY_EVENTS
from ordersaga.web.admission import CompletionRate
from ordersaga.web.auth import Gatekeeper
from ordersaga.web.intake import OrderIntake
from ordersaga.web.read_model import ViewStore

# The process settings' data dir, set before anything reads them: the default
# agent groups (built on first use, from ``get_settings()``) and the nodes some
# tests make of their own (tests/agents/fraud_agent.py) keep their Faust state
# there rather than in the working directory. A group a test builds with
# ``<group>.build(settings)`` needs none of this (test_explicit_settings.py).
_DATA_DIR = tempfile.mkdtemp(prefix="ordersaga-agent-tests-")
os.environ["ORDERSAGA_DATA_DIR"] = _DATA_DIR
atexit.register(shutil.rmtree, _DATA_DIR, True)
get_settings.cache_clear()

AGENT_MODULES = (orders, inventory, payments, shipping, notifications, webview, customers)

# ------------------------------------------------------------------ test data

ORDER_ID = "ord-agent-1"
CUSTOMER_ID = "cust-42"
ADDRESS = Address(name="Ada", line1="1 Main St", city="Paris", postal_code="75001", country="FR")
ITEMS = (OrderLine(sku="SKU-A", quantity=2), OrderLine(sku="SKU-B", quantity=1))
PRICES = {"SKU-A": 500, "SKU-B": 1200}
TOTAL = 2 * 500 + 1 * 1200


def place_order(
    order_id: str = ORDER_ID,
    *,
    items: tuple[OrderLine, ...] = ITEMS,
    payment_token: str = "tok_ok",
    country: str = "FR",
) -> PlaceOrder:
    """A PlaceOrder command as the web view sends it."""
    return PlaceOrder(
        order_id=order_id,
        customer_id=CUSTOMER_ID,
        items=items,
        payment_token=payment_token,
        shipping_address=ADDRESS.model_copy(update={"country": country}),
    )


def order_event(
    name: str,
    seq: int,
    status: str,
    *,
    order_id: str = ORDER_ID,
    failure_reason: str | None = None,
    shipment_id: str | None = None,
    detail: str | None = None,
) -> OrderEvent:
    """An order event as the orchestrator publishes it."""
    at = datetime(2024, 5, 1, 12, 0, seq, tzinfo=UTC)
    return OrderEvent(
        name=name,
        seq=seq,
        detail=detail,
        order=OrderSnapshot(
            order_id=order_id,
            customer_id=CUSTOMER_ID,
            status=status,
            failure_reason=failure_reason,
            items=ITEMS,
            shipment_id=shipment_id,
            placed_at=at,
            updated_at=at,
        ),
    )


def event_id_of(encoded: Encoded) -> str:
    """The envelope id of an encoded message (what its answers name as their cause)."""
    return decode(encoded.value)[0].event_id


def with_type(encoded: Encoded, new_type: str) -> bytes:
    """The same envelope bytes with its ``type`` rewritten (valid JSON, valid envelope)."""
    raw = orjson.loads(encoded.value)
    raw["type"] = new_type
    return orjson.dumps(raw)


# ------------------------------------------------------------------- outbox


@dataclass
class Sent:
    """One message handed to a topic's ``send``."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]
    partition: int | None = None

    @property
    def key_str(self) -> str | None:
        return self.key.decode() if self.key is not None else None

    def header(self, name: str) -> str | None:
        """The last header called ``name``, decoded."""
        found = [v for k, v in self.headers if k == name]
        return found[-1].decode() if found else None

    @property
    def decoded(self) -> tuple[Envelope, Message]:
        return decode(self.value)

    @property
    def envelope(self) -> Envelope:
        return self.decoded[0]

    @property
    def message(self) -> Message:
        return self.decoded[1]


@dataclass
class Outbox:
    """Everything one node sent, in order, per topic."""

    node: Node
    sent: list[Sent] = field(default_factory=list)
    failed: list[Sent] = field(default_factory=list)
    _failures: dict[str, list[BaseException]] = field(default_factory=dict)
    # Topics whose sends are taken but never acknowledged: a broker electing a leader.
    unacked: set[str] = field(default_factory=set)

    def on(self, topic: str) -> list[Sent]:
        return [s for s in self.sent if s.topic == topic]

    def messages(self, topic: str) -> list[Message]:
        return [s.message for s in self.on(topic)]

    def topics(self) -> list[str]:
        return [s.topic for s in self.sent]

    def clear(self) -> None:
        self.sent.clear()
        self.failed.clear()

    def fail(self, topic: str, exc: BaseException, times: int = 1) -> None:
        """Make the next ``times`` sends to ``topic`` raise ``exc`` (recorded in ``failed``)."""
        self._failures.setdefault(topic, []).extend([exc] * times)

    def _recorder(self, topic: str) -> Callable[..., Any]:
        async def send(
            key: Any = None,
            value: Any = None,
            headers: Any = None,
            partition: int | None = None,
            **_: Any,
        ) -> asyncio.Future[None]:
            record = Sent(topic, key, value, list(headers or []), partition)
            pending = self._failures.get(topic)
            if pending:
                self.failed.append(record)
                raise pending.pop(0)
            self.sent.append(record)
            # Like Topic.send: an awaitable that resolves once the broker has it.
            delivered: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            if topic not in self.unacked:
                delivered.set_result(None)
            return delivered

        return send


@pytest.fixture
def capture(monkeypatch: pytest.MonkeyPatch) -> Callable[[Node], Outbox]:
    """``capture(node)``: record what ``node`` sends instead of producing it."""

    def install(node: Node) -> Outbox:
        outbox = Outbox(node)
        original = Node.topic.__get__(node)
        patched: set[int] = set()

        def topic(*names: str) -> Any:
            t = original(*names)
            if id(t) not in patched:
                patched.add(id(t))
                monkeypatch.setattr(t, "send", outbox._recorder(",".join(names)))
            return t

        # Topics created before the test (the agents' own inputs) and any created later.
        for t in list(node._topics.values()):
            patched.add(id(t))
            monkeypatch.setattr(t, "send", outbox._recorder(",".join(t.topics)))
        monkeypatch.setattr(node, "topic", topic)
        return outbox

    return install


# ------------------------------------------------------------------- driver


def _samples(metric: Any) -> Iterable[Any]:
    for family in metric.collect():
        for sample in family.samples:
            if sample.name.endswith("_total"):
                yield sample


def finished(node: Node, agent: str) -> float:
    """Messages ``Node.consume`` has finished for ``agent``: handled, or dead-lettered."""
    ok = sum(
        s.value
        for s in _samples(node.metrics.messages_handled)
        if s.labels["agent"] == agent and s.labels["outcome"] != "dead_letter"
    )
    # dead_letters is counted after the DLQ send returned (messages_handled before it).
    dead = sum(s.value for s in _samples(node.metrics.dead_letters))
    return ok + dead


@dataclass
class AgentDriver:
    """Feeds one agent under test_context and waits until each message is fully handled."""

    agent: Any  # AgentTestWrapper
    node: Node
    label: str

    async def put_raw(
        self,
        value: bytes | None,
        *,
        key: str | None,
        topic: str,
        headers: list[tuple[str, bytes]] | None = None,
        timeout: float = 5.0,
    ) -> None:
        """Deliver raw bytes as if read from ``topic`` and wait until the agent is done."""
        # The wrapper names the event's topic after its original channel, which is
        # unnamed for a multi-topic subscription; a str makes it the given topic.
        self.agent.original_channel = topic
        before = finished(self.node, self.label)
        await self.agent.put(value=value, key=key, headers=headers or [])
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        for _ in range(1_000_000):
            if self.agent._crash_reason is not None:
                raise AssertionError(f"{self.label} crashed") from self.agent._crash_reason
            if finished(self.node, self.label) > before:
                return
            if loop.time() > deadline:
                break
            await asyncio.sleep(0.001)
        raise AssertionError(f"{self.label} did not finish a message from {topic} in {timeout}s")

    async def put(
        self,
        message: Message,
        *,
        key: str,
        topic: str,
        event_id: str | None = None,
        correlation_id: str | None = None,
    ) -> Encoded:
        """Encode ``message`` with the real codec, deliver it, wait; returns what was fed."""
        encoded = encode(message, key=key, correlation_id=correlation_id or key, event_id=event_id)
        await self.put_raw(
            encoded.value, key=encoded.key.decode(), topic=topic, headers=encoded.headers
        )
        return encoded

    async def put_sent(self, sent: Sent) -> None:
        """Deliver a message another agent sent, exactly as it was produced."""
        await self.put_raw(sent.value, key=sent.key_str, topic=sent.topic, headers=sent.headers)


@pytest.fixture
def drive() -> Callable[[Any, Node], Any]:
    """``async with drive(module.agent, module.node) as d: await d.put(...)``."""

    @asynccontextmanager
    async def run(agent: Any, node: Node) -> AsyncIterator[AgentDriver]:
        async with agent.test_context() as wrapped:
            yield AgentDriver(wrapped, node, agent.name.rsplit(".", 1)[-1])

    return run


# -------------------------------------------------------------------- redis


@pytest.fixture
async def view_store(valkey_port: int) -> AsyncIterator[ViewStore]:
    """The webview's store on an empty database, its client bound to this test's loop."""
    store = ViewStore.from_url(f"redis://127.0.0.1:{valkey_port}/0", finished_ttl_s=60)
    try:
        await store.redis.flushdb()
        webview.desk._store = store
        yield store
    finally:
        webview.desk._store = None
        await store.close()


@pytest.fixture
def store(view_store: ViewStore) -> ViewStore:
    """The webview's view store, for tests that read or arrange Redis themselves."""
    return view_store


@pytest.fixture
def intake(view_store: ViewStore) -> OrderIntake:
    """The webview's intake (accepted orders, Idempotency-Keys), on the test's store."""
    return webview.desk.intake


# ------------------------------------------------------------------- isolation


# Per-worker state kept outside tables, as it was at import.
class _NoBroker(QueueProbe):
    """Agent tests run without a broker: no command is known to wait in a queue.

    The probe itself is tested against a real broker in tests/integration.
    """

    async def refresh(self, places: set[Place]) -> None:
        return None


# Set on the group: its deadline scan reads the probe from there.
orders.default().queue_probe = _NoBroker("")
_GATEWAY = getattr(payments, "gateway", None)
_GATEWAY_BREAKER = getattr(_GATEWAY, "breaker", None)
if _GATEWAY is not None:
    # The agent tests choose the gateway's outcomes with its test tokens (whatever
    # the settings were when the first agent module was imported).
    _GATEWAY.faults = True


@pytest.fixture(autouse=True)
def _fresh_state() -> Iterable[None]:
    """Reset every agent table (memory store) and per-process state around each test.

    The webview keeps no tables: its read model is in Redis (see :func:`view_store`).
    """

    def reset() -> None:
        for module in AGENT_MODULES:
            for table in module.app.tables.values():
                table.data.clear()
        orders.deadlines.clear()
        orders.forgets.clear()
        orders.in_flight.clear()
        orders.memory_ends.clear()
        inventory.totals.clear()
        inventory.changed.clear()
        inventory.low.clear()
        webview.desk.watch = webview.desk.new_watch()
        webview.desk._in_flight = (float("-inf"), 0)
        webview.desk.completions = CompletionRate()
        if _GATEWAY_BREAKER is not None:
            _GATEWAY.breaker = _GATEWAY_BREAKER

    reset()
    yield
    reset()


@pytest.fixture(autouse=True)
async def _gateway_journal(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    """Point the payment gateway's Redis journal, if it keeps one, at the test valkey.

    The journal is per-process state like the breaker; its client is made in each
    test's loop (a redis.asyncio pool is bound to the loop it first connects in).
    """
    if _GATEWAY is None or not hasattr(_GATEWAY, "_redis"):
        yield
        return
    port = request.getfixturevalue("valkey_port")
    client = aioredis.from_url(f"redis://127.0.0.1:{port}/0")
    try:
        await client.flushdb()
        _GATEWAY._redis = client
        yield
    finally:
        _GATEWAY._redis = None
        await client.aclose()


# ----------------------------------------------------------- the webview's HTTP API

JSON = {"Content-Type": "application/json"}


def webview_routes(gatekeeper: Gatekeeper | None = None) -> web.Application:
    """A fresh aiohttp app with the webview app's own middlewares, routes and handlers.

    Fresh per test: an aiohttp app is bound to the first loop that serves it.
    ``gatekeeper`` stands in for the webview's own (other auth or limit settings).
    """
    middlewares = list(webview.app.web.web_app.middlewares)
    if gatekeeper is not None:
        assert any(isinstance(m, Gatekeeper) for m in middlewares)
        middlewares = [gatekeeper if isinstance(m, Gatekeeper) else m for m in middlewares]
    app = web.Application(middlewares=middlewares)
    for route in webview.app.web.web_app.router.routes():
        app.router.add_route(route.method, route.resource.canonical, route.handler)
    return app


@pytest.fixture
async def client(view_store: ViewStore) -> AsyncIterator[TestClient]:
    """A client of the webview's routes, which answer from the test's view store."""
    async with TestClient(TestServer(webview_routes())) as c:
        yield c


def order_body(**changes: Any) -> dict[str, Any]:
    """A valid POST /orders body (one SKU-A), with ``changes`` applied."""
    body: dict[str, Any] = {
        "customer_id": "cust-1",
        "items": [{"sku": "SKU-A", "quantity": 1}],
        "payment_token": "tok_ok",
        "shipping_address": ADDRESS.model_dump(),
    }
    body.update(changes)
    return body


async def post_order(
    client: TestClient, body: dict[str, Any], key: str | None = None
) -> ClientResponse:
    """POST /orders with exactly these body bytes (the idempotency fingerprint is of bytes)."""
    headers = dict(JSON)
    if key is not None:
        headers["Idempotency-Key"] = key
    return await client.post("/orders", data=orjson.dumps(body), headers=headers)


def stock_changed(sku: str = "SKU-A", version: int = 1, available: int = 10) -> StockChanged:
    """A StockChanged as the inventory group publishes it."""
    return StockChanged(
        sku=sku,
        version=version,
        unit_price=500,
        put_in=10,
        available=available,
        reserved=10 - available,
        committed=0,
    )


async def stock(drive: Callable[[Any, Node], Any], *skus: str) -> None:
    """Project one StockChanged per SKU, so the routes know them."""
    async with drive(webview.project_stock, webview.node) as d:
        for sku in skus:
            await d.put(stock_changed(sku), key=sku, topic=INVENTORY_EVENTS)
