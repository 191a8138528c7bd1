"""Paging parameters of the list views: ``limit`` and ``cursor``, within their bounds."""

from __future__ import annotations

import re
from typing import Annotated, Any

from faust.web import Request
from pydantic import Field

from ordersaga.edge.http import invalid
from ordersaga.edge.operations import Param, param
from ordersaga.schemas.responses import Cursor

MAX_PAGE = 100
DEFAULT_PAGE = 20
_LIMIT = re.compile(r"^[0-9]{1,3}$")
# A cursor is the placing time (epoch seconds) of the last order of the page before.
_CURSOR = re.compile(r"^[0-9]{1,12}(\.[0-9]{1,7})?$")

LIMIT = param(
    "limit",
    "query",
    Annotated[int, Field(ge=1, le=MAX_PAGE)],
    f"orders per page, 1-{MAX_PAGE}",
    default=DEFAULT_PAGE,
)
CURSOR = param("cursor", "query", Cursor, "the previous page's next_cursor")
PAGING: tuple[Param, ...] = (LIMIT, CURSOR)


def page_limit(request: Request) -> int:
    """``?limit=``: 1 to MAX_PAGE (DEFAULT_PAGE when absent)."""
    raw = request.query.get("limit")
    if raw is None:
        return DEFAULT_PAGE
    if not _LIMIT.match(raw) or not 1 <= int(raw) <= MAX_PAGE:
        raise invalid("limit", f"must be a whole number from 1 to {MAX_PAGE}")
    return int(raw)


def page_cursor(request: Request) -> float | None:
    """``?cursor=``: the ``next_cursor`` of a previous page."""
    raw = request.query.get("cursor")
    if raw is None:
        return None
    if not _CURSOR.match(raw):
        raise invalid("cursor", "must be the next_cursor of a previous page")
    return float(raw)


def page_response(orders: list[Any], next_cursor: float | None) -> dict[str, Any]:
    """The orders found (a view may have expired since it was filed) and the next cursor."""
    return {
        "orders": [order for order in orders if order is not None],
        "next_cursor": f"{next_cursor:.6f}" if next_cursor is not None else None,
    }
