"""What the web views answer from: the Redis view store, the watcher, the command topics."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, ClassVar, cast

from ordersaga.edge.http import ApiView, HttpError
from ordersaga.edge.sealing import OrderSealing
from ordersaga.schemas.messages import Message
from ordersaga.schemas.responses import OpenApiDocument
from ordersaga.schemas.status import TERMINAL
from ordersaga.shell.node import Node
from ordersaga.web.accept import KeyClaim, KeyUse, claim_outcome
from ordersaga.web.admission import CompletionRate, admission_limit
from ordersaga.web.client_share import ClientShare
from ordersaga.web.customer_store import CustomerStore
from ordersaga.web.intake import OrderIntake
from ordersaga.web.order_index import OrderIndex
from ordersaga.web.rate_limit import RateLimiter
from ordersaga.web.read_model import ViewStore
from ordersaga.web.service_registry import ServiceRegistry
from ordersaga.web.watch import OrderWatch

# How often the long-poll watcher re-reads the watched orders: another worker may
# have projected the change.
POLL_INTERVAL_S = 0.1
# How long one worker reuses the count of sagas in flight: a burst of POSTs costs
# one Redis round trip, and overshoots the limit by at most what arrives meanwhile.
IN_FLIGHT_CACHE_S = 0.05


log = logging.getLogger(__name__)


class Desk:
    """What the HTTP routes read and write: the Redis view store and the command topics."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.settings = node.settings
        # What PlaceOrder carries sealed for payments and shipping alone (when keyed).
        self.sealing = OrderSealing.from_keys(
            self.settings.payment_token_keys, self.settings.address_keys
        )
        self._store: ViewStore | None = None
        self._intake: OrderIntake | None = None
        self._customers: CustomerStore | None = None
        self._registry: ServiceRegistry | None = None
        self._index: OrderIndex | None = None
        self._limiter: RateLimiter | None = None
        self._share: ClientShare | None = None
        # What each dead-letter topic holds, as this worker last read it.
        self.dead_letters: dict[str, int] = {}
        self._in_flight: tuple[float, int] = (float("-inf"), 0)
        self.completions = CompletionRate()
        self.watch = self.new_watch()
        # The API's document, set once the routes are registered (ordersaga.web.routes).
        self.openapi = OpenApiDocument(openapi="3.1.0", info={}, paths={})
        node.health.checks["redis"] = self._redis_answers
        # The API answers from Redis: that, not a rebalance of the group, says if it can serve.
        node.health.serves_from = ("redis",)

    def new_watch(self) -> OrderWatch:
        """The one long-poll watcher of this worker."""

        async def statuses(order_ids: list[str]) -> dict[str, str | None]:
            return await self.store.order_statuses(order_ids)

        return OrderWatch(
            statuses,
            TERMINAL,
            limit=self.settings.max_long_polls,
            interval_s=POLL_INTERVAL_S,
            per_client=self.settings.max_long_polls_per_client,
        )

    @property
    def store(self) -> ViewStore:
        """The view store (its Redis pool connects on first use, in the worker's loop)."""
        if self._store is None:
            self._store = ViewStore.from_url(
                self.settings.redis_url_or_default,
                finished_ttl_s=self.settings.finished_view_ttl_s,
                refresh_after_s=self.settings.view_refresh_after_s,
                max_connections=self.settings.redis_max_connections,
                pool_timeout_s=self.settings.redis_pool_timeout_s,
                max_orders_per_customer=self.settings.max_orders_per_customer_view,
                max_listed_orders=self.settings.max_listed_orders,
            )
        return self._store

    @property
    def intake(self) -> OrderIntake:
        """Accepted orders, Idempotency-Keys and PlaceOrders awaiting confirmation."""
        # On the view store's pool, rebuilt when the store is (tests give each test its own).
        if self._intake is None or self._intake.redis is not self.store.redis:
            self._intake = OrderIntake(self.store.redis)
        return self._intake

    @property
    def customers(self) -> CustomerStore:
        """Accounts and each customer's orders (on the view store's Redis pool)."""
        # Rebuilt when the store is (tests give each test its own).
        if self._customers is None or self._customers.redis is not self.store.redis:
            self._customers = CustomerStore(self.store.redis)
        return self._customers

    @property
    def order_index(self) -> OrderIndex:
        """Orders newest first, by status, customer and time (on the view store's pool)."""
        if self._index is None or self._index.redis is not self.store.redis:
            self._index = OrderIndex(self.store.redis, self.settings.max_listing_scan)
        return self._index

    @property
    def registry(self) -> ServiceRegistry:
        """Every worker's last heartbeat (on the view store's Redis pool)."""
        if self._registry is None or self._registry.redis is not self.store.redis:
            self._registry = ServiceRegistry(
                self.store.redis,
                max_services=self.settings.max_services,
                forget_after_s=self.settings.forget_gone_services_after_s,
            )
        return self._registry

    @property
    def rate_limiter(self) -> RateLimiter:
        """Every client's request bucket (on the view store's pool, shared by all workers)."""
        if self._limiter is None or self._limiter.redis is not self.store.redis:
            self._limiter = RateLimiter(
                self.store.redis, self.settings.rate_limit_per_s, self.settings.rate_limit_burst
            )
        return self._limiter

    async def _redis_answers(self) -> None:
        await self.store.redis.ping()

    async def admit_order(self) -> None:
        """Refuse a new order (429) while the system has as many in flight as it may take."""
        settings = self.settings
        now = time.monotonic()
        read_at, count = self._in_flight
        if now - read_at > IN_FLIGHT_CACHE_S:
            (count, ended), read_at = await self.store.flow(), now
            self.completions.sample(now, ended)
        limit = admission_limit(
            self.completions,
            settings.target_latency_s,
            floor=settings.min_sagas_in_flight,
            cap=settings.max_sagas_in_flight,
        )
        if count >= limit:
            self.node.metrics.orders_refused.inc()
            retry = str(settings.overload_retry_after_s)
            raise HttpError(
                429,
                "overloaded",
                f"{count} orders in flight, the limit is {limit} now "
                f"({self.completions.rate:.0f} ending per second, "
                f"{self.completions.best:.0f} lately at best): retry after {retry} s",
                headers={"Retry-After": retry},
            )
        # Counted at once, so this worker's next POSTs within the cache see it.
        self._in_flight = (read_at, count + 1)

    @property
    def client_share(self) -> ClientShare:
        """Each client's orders in flight (on the view store's pool, shared by all workers)."""
        if self._share is None or self._share.redis is not self.store.redis:
            self._share = ClientShare(
                self.store.redis,
                self.settings.max_sagas_in_flight_per_client,
                limit=self.settings.max_sagas_in_flight,
            )
        return self._share

    async def admit_client_order(self, client: str, order_id: str) -> None:
        """Refuse (429) an order of a client that has its share of the in-flight limit."""
        held = await self.client_share.admit(client, order_id, time.time())
        if held is not None:
            self.node.metrics.orders_refused.inc()
            retry = str(self.settings.overload_retry_after_s)
            raise HttpError(
                429,
                "client_in_flight",
                f"this client has {held} orders in flight, its most at once: retry after "
                f"{retry} s, or once one of them ended",
                headers={"Retry-After": retry},
            )

    async def send(self, message: Message, *, key: str, correlation_id: str) -> bool:
        """Send a command from the HTTP edge; True once the broker has it.

        False when the broker has not acknowledged it within
        ``ORDERSAGA_BROKER_ANSWER_WITHIN_S`` (a leader election, a broker gone): the
        send goes on in the background, and the caller answers without waiting for it.
        """
        sending = asyncio.ensure_future(
            self.node.send(message, key=key, correlation_id=correlation_id, acked=True)
        )
        try:
            await asyncio.wait_for(
                asyncio.shield(sending), timeout=self.settings.broker_answer_within_s
            )
        except TimeoutError:
            sending.add_done_callback(_late_send_done)
            self.node.metrics.slow_broker_answers.labels(message.TYPE).inc()
            log.warning(
                "%s not acknowledged within %.1f s: answering without it",
                message.TYPE,
                self.settings.broker_answer_within_s,
            )
            return False
        return True

    async def use_key(self, kind: str, key: str, minted: KeyUse) -> KeyClaim:
        """Claim an Idempotency-Key of ``kind`` (order, restock) for ``minted``, unless used."""
        first = await self.intake.claim_key(
            kind, key, minted.record(), self.settings.idempotency_ttl_s
        )
        return claim_outcome(minted, KeyUse.from_record(first))


class DeskView(ApiView):
    """A view of the web API, answering from its desk.

    Faust makes each view from its class with nothing but the app, so a view is
    registered as a subclass carrying the desk (:meth:`on`).
    """

    desk: ClassVar[Desk]

    @classmethod
    def on(cls, desk: Desk) -> type[DeskView]:
        """This view, answering from ``desk``."""
        attrs = {"desk": desk, "__doc__": cls.__doc__, "__module__": cls.__module__}
        return cast(type[DeskView], type(cls.__name__, (cls,), attrs))


def _late_send_done(sending: asyncio.Future[Any]) -> None:
    """Log how a send the answer did not wait for ended (its exception is consumed here)."""
    if sending.cancelled():
        return
    exc = sending.exception()
    if exc is None:
        log.info("a command answered without its ack reached the broker after all")
    else:
        log.warning("a command answered without its ack was not sent: %s", exc)
