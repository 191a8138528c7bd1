"""The inventory views: every SKU's levels, one SKU's, and restocking a SKU."""

from __future__ import annotations

import re
import time
from typing import Annotated, Any, Literal

from faust.web import Request, Response
from pydantic import Field

from ordersaga.edge.http import invalid
from ordersaga.edge.operations import (
    BODY_ERRORS,
    IDEMPOTENCY_KEY,
    SKU,
    Operation,
    Reply,
    documented,
    error,
    errors,
    param,
)
from ordersaga.observability.correlation import current_correlation_id
from ordersaga.schemas.bounds import MAX_STOCK_LEVEL, Sku
from ordersaga.schemas.http import RestockBody
from ordersaga.schemas.messages import RestockSku
from ordersaga.schemas.responses import InventoryList, RestockAccepted, StockResponse
from ordersaga.shell.codec import new_id
from ordersaga.web.accept import KeyOutcome, KeyUse, restock_fingerprint
from ordersaga.web.desk import DeskView
from ordersaga.web.errors import answers, key_reused, not_found, parse_body
from ordersaga.web.inputs import idempotency_key, json_body, path_sku

MAX_STOCK_PAGE = 1_000
_STOCK_LIMIT = re.compile(r"[0-9]{1,4}")


def stock_limit(request: Request) -> int:
    """``?limit=`` of GET /inventory: 1 to MAX_STOCK_PAGE (the most when absent)."""
    raw = request.query.get("limit")
    if raw is None:
        return MAX_STOCK_PAGE
    if not _STOCK_LIMIT.fullmatch(raw) or not 1 <= int(raw) <= MAX_STOCK_PAGE:
        raise invalid("limit", f"must be a whole number from 1 to {MAX_STOCK_PAGE}")
    return int(raw)


def stock_cursor(request: Request) -> str | None:
    """``?cursor=`` of GET /inventory: the SKU the previous page ended with."""
    raw = request.query.get("cursor")
    return None if raw is None else path_sku(raw, "cursor")


def stock_response(view: dict[str, Any]) -> StockResponse:
    """What GET answers for a SKU's projected levels."""
    return StockResponse(
        sku=view["sku"],
        available=view["available"],
        reserved=view["reserved"],
        committed=view["committed"],
        put_in=view["put_in"],
        unit_price=view["unit_price"],
        version=view["version"],
        low_stock=view.get("low_stock", False),
        low_stock_at=view.get("low_stock_at", 0),
    )


LIST_STOCK = Operation(
    summary="The SKUs' levels, sorted by SKU, a page at a time",
    description=f"At most {MAX_STOCK_PAGE} SKUs are looked at per call; with low_stock a page "
    "may be short (or empty) and still carry a next_cursor to go on.",
    tag="inventory",
    params=(
        param(
            "low_stock",
            "query",
            Literal["true", "false"],
            "true: only the SKUs at or below their threshold; false: the others",
        ),
        param(
            "limit",
            "query",
            Annotated[int, Field(ge=1, le=MAX_STOCK_PAGE)],
            f"SKUs looked at for this page, 1-{MAX_STOCK_PAGE}",
            default=MAX_STOCK_PAGE,
        ),
        param("cursor", "query", Sku, "the previous page's next_cursor"),
    ),
    replies=(Reply(200, "the levels", (InventoryList,)), *errors(422, 503)),
)
READ_STOCK = Operation(
    summary="One SKU's levels",
    tag="inventory",
    params=(SKU,),
    replies=(Reply(200, "its levels", (StockResponse,)), *errors(404, 422, 503)),
)
RESTOCK = Operation(
    summary="Create a SKU or top it up",
    description="unit_price is needed only for a new SKU; low_stock_at is kept when not given.",
    tag="inventory",
    body=RestockBody,
    params=(SKU, IDEMPOTENCY_KEY),
    replies=(
        Reply(202, "the restock is sent", (RestockAccepted,)),
        *BODY_ERRORS,
        error(409, "the catalogue holds ORDERSAGA_MAX_SKUS SKUs (catalogue_full)"),
        error(503),
    ),
)


class Inventory(DeskView):
    """``GET /inventory``."""

    @documented(LIST_STOCK)
    @answers
    async def get(self, request: Request) -> Response:
        """Every SKU's levels; ``?low_stock=true`` keeps only the SKUs at or below threshold."""
        wanted = request.query.get("low_stock")
        if wanted not in (None, "true", "false"):
            raise invalid("low_stock", "must be true or false")
        limit, after = stock_limit(request), stock_cursor(request)
        # A page, not the catalogue: at the SKU cap one answer of everything cost the
        # event loop ~55 ms and 1.9 MB, per call, to anyone signed in.
        levels, next_cursor = await self.desk.store.stock_page(after, limit)
        items = [stock_response(v) for v in levels]
        if wanted is not None:
            items = [i for i in items if i.low_stock == (wanted == "true")]
        return self.answer(InventoryList(items=items, next_cursor=next_cursor))


class InventoryItem(DeskView):
    """``GET /inventory/{sku}``."""

    @documented(READ_STOCK)
    @answers
    async def get(self, request: Request, sku: str) -> Response:
        """One SKU's levels."""
        sku = path_sku(sku)
        view = (await self.desk.store.stock(sku)).get(sku)
        if view is None:
            raise not_found(f"SKU {sku}")
        return self.answer(stock_response(view))


class Restock(DeskView):
    """``POST /inventory/{sku}/restock``."""

    @documented(RESTOCK)
    @answers
    async def post(self, request: Request, sku: str) -> Response:
        """Create a SKU or top it up."""
        desk, settings = self.desk, self.desk.settings
        sku = path_sku(sku)
        raw = await json_body(request, settings.max_body_bytes)
        key = idempotency_key(request)
        body = parse_body(RestockBody, raw, settings.max_body_bytes)
        current = (await desk.store.stock(sku)).get(sku)
        if current is None:
            if body.unit_price is None:
                raise invalid("unit_price", "required for a new SKU")
            if await desk.store.sku_count() >= settings.max_skus:
                raise invalid(
                    "sku",
                    f"the catalogue holds {settings.max_skus} SKUs, its limit",
                    status=409,
                    error="catalogue_full",
                )
        elif int(current["available"]) + body.quantity > MAX_STOCK_LEVEL:
            raise invalid("quantity", f"would bring {sku} over {MAX_STOCK_LEVEL} available")
        restock_id = f"rst_{new_id()[:24]}"
        if key:
            # The key is kept in Redis with a TTL, never in the SKU record: only
            # the fixed-size restock id travels, whatever the client sends.
            minted = KeyUse(restock_fingerprint(sku, raw), restock_id, time.time())
            claim = await desk.use_key("restock", key, minted)
            if claim.outcome is KeyOutcome.REUSED:
                raise key_reused()
            restock_id = claim.id
        # A retry is sent again: the SKU's record ignores a restock id it remembers.
        command = RestockSku(
            restock_id=restock_id,
            sku=sku,
            quantity=body.quantity,
            unit_price=body.unit_price,
            low_stock_at=body.low_stock_at,
        )
        await desk.send(command, key=sku, correlation_id=current_correlation_id(command.restock_id))
        return self.answer(
            RestockAccepted(sku=sku, restock_id=command.restock_id, quantity=body.quantity),
            status=202,
        )
