"""The API's own description: ``/openapi.json``, the page ``/docs``, and ``/asyncapi.json``.

``/asyncapi.json`` describes the topics instead: every message type the workers
exchange, generated from the same models (ordersaga.ops.asyncapi).

Swagger UI's files come from the installed ``swagger-ui-py`` package and are
served by these routes, with the dashboard's Content-Security-Policy: nothing
is fetched from elsewhere, and the page's only script of ours is a file.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from typing import Literal

import orjson
from faust.web import Request, Response

from ordersaga.edge.operations import Operation, Reply, documented, errors, param
from ordersaga.schemas.responses import AsyncApiDocument, OpenApiDocument
from ordersaga.web.dashboard import PAGE_HEADERS, SECURITY_HEADERS
from ordersaga.web.desk import DeskView
from ordersaga.web.errors import not_found

_OURS = files("ordersaga.web") / "static"
_SWAGGER_UI = files("swagger_ui") / "static"
# What the page loads, and nothing else of the package (its editor, source maps, demo).
FILES = {
    "swagger-ui-bundle.js": (_SWAGGER_UI, "text/javascript"),
    "swagger-ui.css": (_SWAGGER_UI, "text/css"),
    "favicon-32x32.png": (_SWAGGER_UI, "image/png"),
    "docs.js": (_OURS, "text/javascript"),
}
AssetName = Literal["swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png", "docs.js"]


PAGE = (_OURS / "docs.html").read_bytes()


@cache
def read_asset(name: str) -> tuple[bytes, str]:
    """A file of the page, read once (the bundle is 1.5 MB: not read unless asked for)."""
    where, kind = FILES[name]
    return (where / name).read_bytes(), kind


OPENAPI = Operation(
    summary="This document (OpenAPI 3.1)",
    tag="docs",
    replies=(Reply(200, "the document", (OpenApiDocument,)),),
)
ASYNCAPI = Operation(
    summary="The topics and their messages (AsyncAPI 3.0, the committed docs/asyncapi.json)",
    tag="docs",
    replies=(Reply(200, "the document", (AsyncApiDocument,)),),
)
DOCS = Operation(
    summary="The interactive API page (Swagger UI, HTML)",
    tag="docs",
    replies=(Reply(200, "the page", media=("text/html",), headers=PAGE_HEADERS),),
)
DOCS_ASSET = Operation(
    summary="The API page's script, style and icon",
    tag="docs",
    params=(param("asset", "path", AssetName, "the file"),),
    replies=(
        Reply(
            200,
            "the file",
            media=("text/javascript", "text/css", "image/png"),
            headers=PAGE_HEADERS,
        ),
        *errors(404, 422),
    ),
)


class OpenApi(DeskView):
    """``GET /openapi.json``."""

    @documented(OPENAPI)
    async def get(self, request: Request) -> Response:
        """The document the web view was started with."""
        return self.answer(self.desk.openapi)


class AsyncApi(DeskView):
    """``GET /asyncapi.json``."""

    @documented(ASYNCAPI)
    async def get(self, request: Request) -> Response:
        """The document of the topics, generated once at start."""
        return self.bytes(
            asyncapi_bytes(), content_type="application/json", headers=dict(SECURITY_HEADERS)
        )


@cache
def asyncapi_bytes() -> bytes:
    from ordersaga.ops.asyncapi import asyncapi_document

    return orjson.dumps(asyncapi_document())


class Docs(DeskView):
    """``GET /docs``."""

    @documented(DOCS)
    async def get(self, request: Request) -> Response:
        """The page."""
        return self.bytes(PAGE, content_type="text/html", headers=dict(SECURITY_HEADERS))


class DocsAsset(DeskView):
    """``GET /docs/{asset}``: Swagger UI's bundle, style and icon, and the page's script."""

    @documented(DOCS_ASSET)
    async def get(self, request: Request, asset: str) -> Response:
        """One of ``FILES``; nothing else."""
        if asset not in FILES:
            raise not_found(f"docs file {asset[:64]}")
        body, kind = read_asset(asset)
        return self.bytes(body, content_type=kind, headers=dict(SECURITY_HEADERS))
