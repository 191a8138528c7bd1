"""What every client of the web view does with an overload answer: wait, then retry."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any, Protocol

import httpx


class Answer(Protocol):
    """An HTTP answer of any client (httpx's, aiohttp's): its headers are enough here."""

    @property
    def headers(self) -> Mapping[str, str]: ...


def retry_after_s(response: Answer, default_s: float = 1.0) -> float:
    """The seconds a 429's Retry-After asks for (bounded, in case it says too much)."""
    try:
        return min(max(float(response.headers.get("Retry-After", default_s)), 0.0), 60.0)
    except ValueError:
        return default_s


async def post_admitted(
    client: httpx.AsyncClient, url: str, *, give_up_after_s: float = 120.0, **kwargs: Any
) -> httpx.Response:
    """POST, waiting out each 429 for its Retry-After; the first other answer is returned."""
    deadline = time.monotonic() + give_up_after_s
    while True:
        response = await client.post(url, **kwargs)
        if response.status_code != 429 or time.monotonic() > deadline:
            return response
        await asyncio.sleep(retry_after_s(response))
