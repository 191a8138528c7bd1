"""The body limit whatever the framing: raw HTTP on a socket to the webview's routes.

Issue 19 finding 6: one read took what was buffered, so a chunked body's first
chunk passed for the whole body and a body in two TCP writes was cut in half.
These tests write the bytes themselves (aiohttp's client would frame them its
own way) against the routes served by a real aiohttp server on real Redis.
"""

from __future__ import annotations

import asyncio

import orjson
import pytest
from aiohttp.test_utils import TestClient

from ordersaga.agents import webview
from ordersaga.web import inputs
from tests.harness import order_body, stock
from tests.raw_http import chunk, post_head

LIMIT = webview.desk.settings.max_body_bytes


async def exchange(
    client: TestClient, parts: list[bytes], pause_s: float = 0.0, read_s: float = 10.0
) -> tuple[int, dict[str, str], bytes]:
    """Send ``parts`` as separate TCP writes (``pause_s`` apart); the status, headers, body."""
    reader, writer = await asyncio.open_connection(client.host, client.port)
    try:
        for i, part in enumerate(parts):
            try:
                writer.write(part)
                await writer.drain()
            except ConnectionError:
                break  # the server answered and closed before the rest: read its answer
            if pause_s and i < len(parts) - 1:
                await asyncio.sleep(pause_s)
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), read_s)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {
            k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:] if x)
        }
        body = await asyncio.wait_for(reader.readexactly(int(headers["content-length"])), read_s)
        return status, headers, body
    finally:
        writer.close()


@pytest.fixture
async def stocked(client: TestClient, drive, outbox) -> TestClient:
    await stock(drive, "SKU-A")
    return client


async def test_a_chunked_body_whose_first_chunk_is_an_order_and_rest_is_300_kb_is_413(
    stocked, outbox
):
    valid = orjson.dumps(order_body())
    parts = [post_head({"Transfer-Encoding": "chunked"}) + chunk(valid)]
    parts += [chunk(b" " * 30_000) for _ in range(10)] + [b"0\r\n\r\n"]
    status, _, body = await exchange(stocked, parts, pause_s=0.01)
    assert status == 413, body
    assert orjson.loads(body)["error"] == "body_too_large"
    assert outbox.sent == []


async def test_a_chunked_body_under_the_limit_is_read_whole(stocked, outbox):
    valid = orjson.dumps(order_body())
    half = len(valid) // 2
    parts = [
        post_head({"Transfer-Encoding": "chunked"}) + chunk(valid[:half]),
        chunk(valid[half:]) + b"0\r\n\r\n",
    ]
    status, _, body = await exchange(stocked, parts, pause_s=0.2)
    assert status == 202, body
    assert len(outbox.sent) == 1


async def test_a_30_kb_body_in_two_tcp_writes_is_accepted(stocked, outbox):
    # Valid JSON padded inside with whitespace to 30 KB: before, the first write alone
    # was parsed, and it is no JSON (a spurious 400).
    valid = b"{" + b" " * 30_000 + orjson.dumps(order_body())[1:]
    head = post_head({"Content-Length": str(len(valid))})
    status, _, body = await exchange(stocked, [head + valid[:16_000], valid[16_000:]], 0.3)
    assert status == 202, body
    assert len(outbox.sent) == 1


async def test_a_content_length_over_the_limit_is_413_before_any_body(stocked, outbox):
    status, _, body = await exchange(stocked, [post_head({"Content-Length": str(LIMIT + 1)})])
    assert status == 413 and orjson.loads(body)["error"] == "body_too_large"
    assert outbox.sent == []


async def test_a_body_longer_than_its_content_length_is_read_as_declared_not_further(
    stocked, outbox
):
    valid = orjson.dumps(order_body())
    status, _, body = await exchange(stocked, [post_head({"Content-Length": "20"}) + valid])
    # The declared 20 bytes are no JSON, and the rest is no request: 400 either way.
    assert status == 400 and orjson.loads(body)["error"] in {"malformed_json", "bad_request"}
    assert outbox.sent == []


async def test_a_content_length_the_body_never_reaches_is_408_after_the_timeout(
    stocked, outbox, monkeypatch
):
    monkeypatch.setattr(inputs, "BODY_TIMEOUT_S", 0.5)
    valid = orjson.dumps(order_body())
    head = post_head({"Content-Length": str(len(valid) + 100)})
    status, _, body = await exchange(stocked, [head + valid])
    assert status == 408 and orjson.loads(body)["error"] == "body_timeout"
    assert outbox.sent == []


async def test_a_body_of_exactly_the_limit_is_read_and_one_byte_more_is_413(stocked, outbox):
    valid = orjson.dumps(order_body())
    exact = valid + b" " * (LIMIT - len(valid))
    chunked = post_head({"Transfer-Encoding": "chunked"})
    status, _, body = await exchange(stocked, [chunked + chunk(exact) + b"0\r\n\r\n"])
    assert status == 202, body
    over = chunked + chunk(exact) + chunk(b" ") + b"0\r\n\r\n"
    assert (await exchange(stocked, [over]))[0] == 413
