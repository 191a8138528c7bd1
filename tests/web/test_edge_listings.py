"""The costly listings bounded per call (issue 19, finding 8), and the storage bounds
(finding 9) as the code sets them: on the real routes, Redis and valkey-server.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from ordersaga.agents import webview
from ordersaga.config.settings import Settings
from ordersaga.runtime.servers import redis_argv
from ordersaga.runtime.topic_admin import _topic_configs
from ordersaga.shell.topics import ALL_DLQ_TOPICS, ALL_TOPICS, CHANGELOG_TOPICS, SERVICES
from ordersaga.web.inventory import MAX_STOCK_PAGE
from ordersaga.web.order_index import OrderIndex
from ordersaga.web.read_model import ViewStore
from ordersaga.web.redis_keys import SKUS_BY_NAME
from tests.harness import order_event, stock_changed

# ------------------------------------------------------------------ GET /inventory pages


async def put_skus(store: ViewStore, *skus: str, low: frozenset[str] = frozenset()) -> None:
    for sku in skus:
        levels = stock_changed(sku, available=1 if sku in low else 10).model_dump(mode="json")
        levels["low_stock"] = sku in low
        await store.project_stock(sku, 1, levels)


async def walk(client: TestClient, query: str) -> tuple[list[list[str]], list[Any]]:
    pages: list[list[str]] = []
    cursors: list[Any] = []
    cursor = None
    while True:
        url = f"/inventory?{query}" + (f"&cursor={cursor}" if cursor else "")
        r = await client.get(url)
        assert r.status == 200, await r.text()
        body = await r.json()
        pages.append([i["sku"] for i in body["items"]])
        cursor = body["next_cursor"]
        cursors.append(cursor)
        if cursor is None:
            return pages, cursors


async def test_the_catalogue_is_read_a_page_at_a_time_by_name(client: TestClient, store):
    await put_skus(store, "SKU-E", "SKU-C", "SKU-A", "SKU-D", "SKU-B")
    pages, cursors = await walk(client, "limit=2")
    assert pages == [["SKU-A", "SKU-B"], ["SKU-C", "SKU-D"], ["SKU-E"]]
    assert cursors == ["SKU-B", "SKU-D", None]
    whole = await (await client.get("/inventory")).json()
    assert [i["sku"] for i in whole["items"]] == ["SKU-A", "SKU-B", "SKU-C", "SKU-D", "SKU-E"]
    assert whole["next_cursor"] is None


async def test_skus_kept_before_they_were_filed_by_name_are_filed_on_the_first_read(
    client: TestClient, store: ViewStore
):
    # As a Redis kept from before: the SKU sets and levels, no names filed.
    await put_skus(store, "SKU-B", "SKU-A")
    await store.redis.delete(SKUS_BY_NAME)
    pages, _ = await walk(client, "limit=1")
    assert pages == [["SKU-A"], ["SKU-B"]]
    assert await store.redis.zcard(SKUS_BY_NAME) == 2


async def test_a_low_stock_page_may_be_short_and_still_go_on(client: TestClient, store):
    await put_skus(store, "SKU-A", "SKU-B", "SKU-C", "SKU-D", low=frozenset({"SKU-D"}))
    pages, _ = await walk(client, "limit=2&low_stock=true")
    assert pages == [[], ["SKU-D"]]


async def test_a_page_looks_at_no_more_than_its_limit(client: TestClient, store):
    await put_skus(store, *(f"SKU-{i:04d}" for i in range(MAX_STOCK_PAGE + 5)))
    first = await (await client.get("/inventory")).json()
    assert len(first["items"]) == MAX_STOCK_PAGE
    assert first["next_cursor"] == f"SKU-{MAX_STOCK_PAGE - 1:04d}"
    rest = await (await client.get(f"/inventory?cursor={first['next_cursor']}")).json()
    assert len(rest["items"]) == 5 and rest["next_cursor"] is None


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        (f"limit={MAX_STOCK_PAGE + 1}", "limit"),
        ("limit=ten", "limit"),
        ("limit=10%0A", "limit"),
        ("cursor=-bad", "cursor"),
        ("cursor=" + "x" * 65, "cursor"),
    ],
)
async def test_paging_parameters_out_of_bounds_are_422_naming_them(client, store, query, field):
    r = await client.get(f"/inventory?{query}")
    assert r.status == 422
    assert (await r.json())["problems"][0]["field"] == field


# ------------------------------------------------------- GET /orders?status= per call


async def project(store: ViewStore, order_id: str, status: str, placed_at: float) -> None:
    event = order_event("OrderPlaced", 1, status, order_id=order_id)
    entry = {"seq": 1, "type": event.name, "status": status, "detail": None, "at_epoch": 1.0}
    snapshot = event.order.model_dump(mode="json")
    await store.project_order(order_id, 1, snapshot, entry, terminal=False, placed_at=placed_at)


async def test_a_sparse_status_listing_stops_at_its_scan_budget_and_says_where_to_go_on(
    store: ViewStore,
):
    for i in range(25):
        await project(store, f"ord-{i:02d}", "PAYMENT_PENDING" if i == 0 else "PENDING", 1000 + i)
    index = OrderIndex(store.redis, max_scan=10)
    ids, cursor = await index.page(limit=5, status="PAYMENT_PENDING")
    assert (ids, cursor) == ([], 1015.0)  # 10 looked at, none matched: go on from there
    ids, cursor = await index.page(limit=5, status="PAYMENT_PENDING", before=cursor)
    assert (ids, cursor) == ([], 1005.0)
    ids, cursor = await index.page(limit=5, status="PAYMENT_PENDING", before=cursor)
    assert (ids, cursor) == (["ord-00"], None)


def test_the_web_views_listing_budget_is_the_setting():
    assert Settings().max_listing_scan == 500
    assert webview.desk.order_index.max_scan == webview.desk.settings.max_listing_scan
    with pytest.raises(ValueError):
        Settings(max_listing_scan=5_001)


# --------------------------------------------------------------------- storage bounds


def test_every_topic_but_the_compacted_ones_is_bounded_by_bytes_and_time():
    settings = Settings(topic_retention_bytes=64 * 1024 * 1024, topic_retention_hours=2)
    for topic in (*ALL_TOPICS, *ALL_DLQ_TOPICS, *CHANGELOG_TOPICS):
        configs = _topic_configs(
            topic,
            1,
            settings.topic_retention_bytes,
            settings.topic_retention_hours * 3600 * 1000,
        )
        if topic in CHANGELOG_TOPICS or topic == SERVICES:
            # Retention would delete table state a restore needs: compacted instead.
            assert configs["cleanup.policy"] == "compact", topic
            # Rolled often enough for the cleaner to compact what a restore replays.
            assert int(configs["segment.ms"]) <= 60_000, topic
            continue
        assert configs["retention.bytes"] == str(64 * 1024 * 1024), topic
        assert configs["retention.ms"] == str(2 * 3600 * 1000), topic
        assert int(configs["segment.bytes"]) <= 64 * 1024 * 1024 // 4, topic
    assert ALL_DLQ_TOPICS  # the dead letters are among the bounded


async def test_the_redis_ordersaga_starts_is_bounded_and_never_evicts(store: ViewStore):
    argv = redis_argv(6399, Path("/tmp"), max_memory_mb=64)
    assert argv[argv.index("--maxmemory") + 1] == "64mb"
    assert argv[argv.index("--maxmemory-policy") + 1] == "noeviction"
    # The session's valkey-server is started by the same redis_argv.
    config = await store.redis.config_get("maxmemory*")
    policy = config.get("maxmemory-policy") or config.get(b"maxmemory-policy")
    assert policy in ("noeviction", b"noeviction")
    assert int(config.get("maxmemory") or config.get(b"maxmemory")) == 512 * 1024 * 1024
