"""The OpenAPI document: it names exactly what the web view serves, is valid 3.1, and /docs works.

The served routes are read from the real webview app's aiohttp router, so a
route added to ROUTES (or to every worker's pages) without its documentation,
or documentation of a route that is not served, fails here.
"""

from __future__ import annotations

import json
import re
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
from faust.web import Request, Response
from pydantic import BaseModel
from schemathesis.specs.openapi.definitions import OPENAPI_31_VALIDATOR

from ordersaga.agents import webview
from ordersaga.edge.http import ApiView
from ordersaga.edge.operations import ORDER_ID, Operation, Reply, documented
from ordersaga.schemas.heartbeats import ServiceHeartbeat
from ordersaga.schemas.messages import (
    CustomerChanged,
    OrderSnapshot,
    StockChanged,
)
from ordersaga.schemas.responses import (
    CustomerResponse,
    OrderResponse,
    ServiceEntry,
    StockResponse,
)
from ordersaga.web.auth import Access, access_of
from ordersaga.web.docs import FILES
from ordersaga.web.edge import HOST_EXEMPT
from ordersaga.web.openapi import UndocumentedRoute, build_document, documented_routes
from ordersaga.web.routes import ROUTES

DOCUMENT: dict[str, Any] = webview.desk.openapi.body()


def served() -> set[tuple[str, str]]:
    return {
        (route.method, route.resource.canonical)
        for route in webview.app.web.web_app.router.routes()
    }


def test_every_served_route_is_documented_and_every_documented_route_is_served() -> None:
    routes = served()
    assert {r for r in routes if r[0] != "HEAD"} == documented_routes(DOCUMENT)
    # HEAD is answered by GET wherever GET is (the document's description says so).
    heads = {path for method, path in routes if method == "HEAD"}
    assert heads == {path for method, path in documented_routes(DOCUMENT) if method == "GET"}


def test_the_document_covers_the_route_table_and_every_workers_pages() -> None:
    paths = set(DOCUMENT["paths"])
    assert {path for path, _ in ROUTES} | {"/health", "/live", "/ready", "/metrics"} == paths


def test_the_document_is_valid_openapi_3_1() -> None:
    assert DOCUMENT["openapi"] == "3.1.0"
    errors = [str(e)[:300] for e in OPENAPI_31_VALIDATOR.iter_errors(DOCUMENT)]
    assert errors == []
    # Every schema in it is itself a valid JSON Schema (2020-12, OpenAPI 3.1's dialect).
    schemas = list(DOCUMENT["components"]["schemas"].values())
    for item in DOCUMENT["paths"].values():
        for operation in item.values():
            schemas += [p["schema"] for p in operation["parameters"]]
    for schema in schemas:
        jsonschema_rs.meta.validate(
            {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}
        )


def test_each_operation_documents_its_answers_headers_and_the_error_shape() -> None:
    place = DOCUMENT["paths"]["/orders"]["post"]
    assert set(place["responses"]) == {
        "202", "400", "408", "413", "415", "421", "422", "429", "503"
    }  # fmt: skip
    assert set(place["responses"]["202"]["headers"]) == {"X-Correlation-ID", "Location"}
    assert set(place["responses"]["429"]["headers"]) == {"X-Correlation-ID", "Retry-After"}
    assert place["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/PlaceOrderBody"
    }
    headers = {p["name"] for p in place["parameters"] if p["in"] == "header"}
    assert headers == {"Idempotency-Key", "X-Correlation-ID", "X-Request-ID"}
    for item in DOCUMENT["paths"].values():
        for operation in item.values():
            for status, reply in operation["responses"].items():
                assert "X-Correlation-ID" in reply["headers"]
                if int(status) >= 400:
                    schema = reply["content"]["application/json"]["schema"]
                    refs = [schema] if "$ref" in schema else schema["anyOf"]
                    assert all(r["$ref"].startswith("#/components/schemas/") for r in refs)
    # Every GET of the API draws on the read budget; every route but the probes checks Host.
    for path, item in DOCUMENT["paths"].items():
        for method, operation in item.items():
            public = access_of(method.upper(), path) is Access.PUBLIC
            assert ("429" in operation["responses"]) is (method != "get" or not public), path
            assert ("421" in operation["responses"]) is (path not in HOST_EXEMPT), path
    assert (
        "read rate limit"
        in DOCUMENT["paths"]["/orders/{order_id}"]["get"]["responses"]["429"]["description"]
    )
    error = DOCUMENT["components"]["schemas"]["ErrorResponse"]
    assert set(error["required"]) == {"error", "message", "problems"}


def test_parameters_carry_the_bounds_the_views_check() -> None:
    def parameter(path: str, name: str) -> dict[str, Any]:
        found = [p for p in DOCUMENT["paths"][path]["get"]["parameters"] if p["name"] == name]
        return dict(found[0]["schema"])

    assert parameter("/orders", "limit") == {
        "type": "integer",
        "minimum": 1,
        "maximum": 100,
        "default": 20,
    }
    wait = parameter("/orders/{order_id}", "wait")
    for ok in ("0", "5", "05", "59.999", "60", "60.000", "0.5"):
        assert re.fullmatch(wait["pattern"], ok), ok
    for bad in ("60.001", "61", "100", "0.3333", "-1", "1e3", ".5", "5."):
        assert not re.fullmatch(wait["pattern"], bad), bad
    assert parameter("/orders/{order_id}", "order_id")["pattern"].startswith("^[A-Za-z0-9]")
    assert "COMPENSATION_STUCK" in parameter("/orders", "status")["enum"]
    assert set(parameter("/services/{group}/health", "group")["enum"]) >= {"webview", "orders"}


class _Undocumented(ApiView):
    async def get(self, request: Request) -> Response:
        return self.json({})


class _WrongPath(ApiView):
    @documented(Operation(summary="x", params=(ORDER_ID,), replies=(Reply(200, "ok"),)))
    async def get(self, request: Request) -> Response:
        return self.json({})


def test_a_route_without_its_documentation_cannot_be_registered() -> None:
    with pytest.raises(UndocumentedRoute, match=r"_Undocumented\.get is served but not documented"):
        build_document([("/x", _Undocumented)])
    with pytest.raises(UndocumentedRoute, match="path parameters"):
        build_document([("/x/{sku}", _WrongPath)])


async def test_the_document_is_served_as_json(client) -> None:
    resp = await client.get("/openapi.json")
    assert resp.status == 200
    assert resp.content_type == "application/json"
    assert await resp.json() == DOCUMENT
    assert resp.headers["X-Correlation-ID"].startswith("cor_")


async def test_the_topics_document_is_served_as_committed(client) -> None:
    resp = await client.get("/asyncapi.json")
    assert resp.status == 200
    assert resp.content_type == "application/json"
    committed = json.loads((Path(__file__).parents[2] / "docs" / "asyncapi.json").read_text())
    assert await resp.json() == committed


async def test_the_docs_page_loads_only_files_it_serves_itself(client) -> None:
    page = await client.get("/docs")
    assert page.status == 200
    assert page.content_type == "text/html"
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    html = await page.text()
    loaded = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert loaded and all(url.startswith("/docs/") for url in loaded)
    for url in loaded:
        asset = await client.get(url)
        assert asset.status == 200, url
        assert asset.headers["Content-Security-Policy"] == page.headers["Content-Security-Policy"]
    bundle = await client.get("/docs/swagger-ui-bundle.js")
    assert await bundle.read() == (files("swagger_ui") / "static/swagger-ui-bundle.js").read_bytes()
    assert (await client.get("/docs/swagger-editor.js")).status == 404
    assert (await client.get("/docs/..%2Fdocs.py")).status == 404
    assert set(FILES) == set(
        DOCUMENT["paths"]["/docs/{asset}"]["get"]["parameters"][0]["schema"]["enum"]
    )


def test_the_bundled_swagger_ui_renders_openapi_3_1() -> None:
    # OpenAPI 3.1 documents render from Swagger UI 5.0 on.
    bundle = (files("swagger_ui") / "static/swagger-ui-bundle.js").read_text()
    found = re.search(r'PACKAGE_VERSION:"(\d+)\.(\d+)\.(\d+)"', bundle)
    assert found is not None
    assert int(found.group(1)) >= 5
    script = (files("ordersaga.web") / "static/docs.js").read_text()
    assert 'url: "/openapi.json"' in script
    assert "validatorUrl: null" in script


class _Secured(ApiView):
    @documented(
        Operation(summary="x", replies=(Reply(200, "ok"),), security=({"bearer": ["admin"]},))
    )
    async def get(self, request: Request) -> Response:
        return self.json({})


def test_an_operation_that_names_a_scheme_documents_401_and_403() -> None:
    document = build_document([("/x", _Secured)])
    operation = document["paths"]["/x"]["get"]
    assert operation["security"] == [{"bearer": ["admin"]}]
    assert {"401", "403"} <= set(operation["responses"])
    assert "WWW-Authenticate" in operation["responses"]["401"]["headers"]
    assert [str(e) for e in OPENAPI_31_VALIDATOR.iter_errors(document)] == []


SECURED: dict[str, Any] = build_document([*webview.node.pages, *ROUTES], secured=True)


def test_with_auth_on_every_route_but_the_public_ones_needs_the_bearer_scheme() -> None:
    assert SECURED["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    for path, item in SECURED["paths"].items():
        for method, operation in item.items():
            public = access_of(method.upper(), path) is Access.PUBLIC
            assert ("security" in operation) is not public, (method, path)
            if not public:
                assert operation["security"] == [{"bearer": []}]
                assert {"401", "403"} <= set(operation["responses"]), (method, path)
                challenge = operation["responses"]["401"]["headers"]
                assert "WWW-Authenticate" in challenge
    assert [str(e) for e in OPENAPI_31_VALIDATOR.iter_errors(SECURED)] == []
    # With auth off (these tests' settings) nothing names a scheme.
    assert "securitySchemes" not in DOCUMENT["components"]


def test_every_post_documents_the_rate_limits_429() -> None:
    for path, item in DOCUMENT["paths"].items():
        if "post" in item:
            answer = item["post"]["responses"]["429"]
            assert "Retry-After" in answer["headers"], path
            assert "rate limit" in answer["description"], path


@pytest.mark.parametrize(
    ("projected", "answer"),
    [
        (OrderSnapshot, OrderResponse),
        (StockChanged, StockResponse),
        (CustomerChanged, CustomerResponse),
        (ServiceHeartbeat, ServiceEntry),
    ],
)
def test_every_field_a_view_projects_is_one_its_answer_documents(
    projected: type[BaseModel], answer: type[BaseModel]
) -> None:
    # The views pick the answer's fields from the projected record: a field added to
    # the record must be added to the answer (and so to the document) to be served.
    assert set(projected.model_fields) <= set(answer.model_fields)
