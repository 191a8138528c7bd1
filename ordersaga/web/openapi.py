"""The OpenAPI 3.1 document of everything the web view serves, generated from the views.

Each served view method carries its :class:`~ordersaga.edge.operations.Operation`;
:func:`build_document` walks the (path, view) pairs the web view registers and
refuses a served method without one, a path parameter it does not describe, or
a reply header it does not know, so the web view cannot start with a route the
document lacks. Bodies and answers are the pydantic models the views validate
with and build their answers through.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from faust.web import View
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from ordersaga import __version__
from ordersaga.edge.operations import Operation, Param, Reply, error, operation_of
from ordersaga.observability import correlation
from ordersaga.schemas.responses import ErrorResponse
from ordersaga.web.auth import MUTATING, Access, access_of
from ordersaga.web.edge import HOST_EXEMPT

OPENAPI_VERSION = "3.1.0"
# The methods a Faust view can serve (HEAD is answered wherever GET is, by GET).
METHODS = ("get", "post", "put", "patch", "delete")
_TEMPLATE = re.compile(r"{([^}/]+)}")

_CORRELATION_SCHEMA = {"type": "string", "pattern": correlation.PATTERN}
# Sent with every request, answered on every response.
COMMON_PARAMS = (
    Param(
        correlation.HEADER,
        "header",
        _CORRELATION_SCHEMA,
        "follows the request through every message it causes (made when absent)",
    ),
    Param(
        "X-Request-ID",
        "header",
        _CORRELATION_SCHEMA,
        f"read as {correlation.HEADER} when that is absent (and ignored when it is sent)",
    ),
)
# Every operation may answer this: a bad X-Correlation-ID is refused before any route runs.
COMMON_REPLY = error(422, "a parameter, header or field is invalid; problems name each")

RESPONSE_HEADERS: dict[str, dict[str, Any]] = {
    correlation.HEADER: {
        "description": "the request's correlation id (its own, or the one made for it)",
        "schema": _CORRELATION_SCHEMA,
    },
    "Location": {"description": "where to read what was created", "schema": {"type": "string"}},
    "Retry-After": {
        "description": "seconds to wait before retrying",
        "schema": {"type": "integer", "minimum": 0},
    },
    "Content-Security-Policy": {
        "description": "nothing is loaded from elsewhere",
        "schema": {"type": "string"},
    },
    "X-Content-Type-Options": {"description": "nosniff", "schema": {"type": "string"}},
    "Referrer-Policy": {"description": "no-referrer", "schema": {"type": "string"}},
    "Cache-Control": {"description": "no-store", "schema": {"type": "string"}},
    "WWW-Authenticate": {"description": "the token scheme and why", "schema": {"type": "string"}},
    "RateLimit-Limit": {
        "description": "the client's bucket: requests it may make at once",
        "schema": {"type": "integer", "minimum": 1},
    },
    "RateLimit-Remaining": {
        "description": "requests left in the bucket now",
        "schema": {"type": "integer", "minimum": 0},
    },
    "RateLimit-Reset": {
        "description": "seconds until the bucket is full again",
        "schema": {"type": "integer", "minimum": 0},
    },
    "RateLimit-Policy": {
        "description": "the bucket and the seconds it takes to fill (`40;w=2`)",
        "schema": {"type": "string"},
    },
}

# With auth on, every route that is not public (ordersaga.web.auth.ACCESS) names
# this scheme, and answers 401 and 403 too.
SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "HS256, RS256 or ES256 as configured; claims sub (the customer), "
        "roles (customer, admin), iss, aud, iat and exp. `ordersaga token` mints one.",
    }
}
BEARER: tuple[Mapping[str, list[str]], ...] = ({"bearer": []},)
_ACCESS_WORDS = {
    Access.SIGNED_IN: "Needs a bearer token; a customer's reaches its own data only.",
    Access.ADMIN: "Needs a bearer token with the admin role.",
}
# Every mutating request draws on its client's bucket (ordersaga.web.rate_limit).
RATE_LIMITED = Reply(
    429,
    "past the client's rate limit (or, on POST /orders, too many orders in flight): "
    "retry after Retry-After seconds",
    (ErrorResponse,),
    headers=("Retry-After",),
)
# Every GET of the API draws on its client's read budget (probes, docs and page do not).
READ_LIMITED = Reply(
    429,
    "past the client's read rate limit (ORDERSAGA_READ_RATE_LIMIT_PER_S): retry after "
    "Retry-After seconds",
    (ErrorResponse,),
    headers=("Retry-After",),
)
# Every route but the probes refuses a Host it does not answer to (ORDERSAGA_ALLOWED_HOSTS).
MISDIRECTED = Reply(421, "the Host header names no name this server answers to", (ErrorResponse,))
UNAUTHORIZED = Reply(
    401,
    "no valid bearer token; WWW-Authenticate says why",
    (ErrorResponse,),
    headers=("WWW-Authenticate",),
)
FORBIDDEN = Reply(
    403,
    "the token's role or customer may not do this",
    (ErrorResponse,),
    headers=("WWW-Authenticate",),
)

DESCRIPTION = f"""\
The ordersaga web view's API. Every answer that is not a success is
`{{"error", "message", "problems": [{{"field", "message"}}]}}`. Every request may send
`{correlation.HEADER}` (or `X-Request-ID`); every answer returns it. `HEAD` is
answered wherever `GET` is; a method a route does not have is 405 with an `Allow`
header; an unknown path is 404. `/health`, `/ready` and `/metrics` are served by
every worker, the rest by the web view alone."""


class UndocumentedRoute(ValueError):
    """A served method without its operation, or an operation that does not fit its path."""


def served_operations(view: type[View]) -> dict[str, Operation]:
    """The operation of each method ``view`` serves; every served method must have one."""
    found: dict[str, Operation] = {}
    for method in METHODS:
        fn = getattr(view, method)
        # Faust serves a method only where the view overrides View's (it compares code too).
        if fn.__code__ is getattr(View, method).__code__:
            continue
        operation = operation_of(fn)
        if operation is None:
            raise UndocumentedRoute(f"{view.__name__}.{method} is served but not documented")
        found[method] = operation
    return found


def _parameter(p: Param) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": p.name,
        "in": p.where,
        "description": p.description,
        "required": p.required,
        "schema": dict(p.schema),
    }
    return out


class _Schemas:
    """The component schemas of every model, generated together so names never clash."""

    def __init__(self, pages: list[tuple[str, dict[str, Operation]]]) -> None:
        wanted: set[tuple[type[BaseModel], JsonSchemaMode]] = {(ErrorResponse, "serialization")}
        for _, operations in pages:
            for operation in operations.values():
                if operation.body is not None:
                    wanted.add((operation.body, "validation"))
                for reply in (*operation.replies, COMMON_REPLY):
                    wanted.update((model, "serialization") for model in reply.models)
        ordered = sorted(wanted, key=lambda w: (w[0].__module__, w[0].__qualname__, w[1]))
        refs, defs = models_json_schema(ordered, ref_template="#/components/schemas/{model}")
        self.refs = refs
        self.components: dict[str, Any] = dict(defs.get("$defs", {}))

    def ref(self, model: type[BaseModel], mode: JsonSchemaMode) -> dict[str, Any]:
        return dict(self.refs[(model, mode)])


def _reply(reply: Reply, schemas: _Schemas) -> dict[str, Any]:
    headers = {}
    for name in (correlation.HEADER, *reply.headers):
        if name not in RESPONSE_HEADERS:
            raise UndocumentedRoute(f"reply header {name} is not described")
        headers[name] = {"$ref": f"#/components/headers/{name}"}
    out: dict[str, Any] = {"description": reply.description, "headers": headers}
    if reply.models:
        refs = [schemas.ref(model, "serialization") for model in reply.models]
        schema = refs[0] if len(refs) == 1 else {"anyOf": refs}
        out["content"] = {"application/json": {"schema": schema}}
    elif reply.media:
        out["content"] = {media: {"schema": {"type": "string"}} for media in reply.media}
    return out


def _read_limited(replies: list[Reply]) -> list[Reply]:
    """``replies`` with the read budget's 429 (merged into one the operation has)."""
    own = next((r for r in replies if r.status == 429), None)
    if own is None:
        return [*replies, READ_LIMITED]
    merged = Reply(
        429,
        f"{own.description}; or past the client's read rate limit",
        own.models,
        headers=tuple(dict.fromkeys((*own.headers, "Retry-After"))),
    )
    return [r for r in replies if r.status != 429] + [merged]


def _operation(
    path: str,
    method: str,
    view: type[View],
    operation: Operation,
    schemas: _Schemas,
    secured: bool = False,
) -> dict[str, Any]:
    in_path = set(_TEMPLATE.findall(path))
    described = {p.name for p in operation.params if p.where == "path"}
    if in_path != described:
        raise UndocumentedRoute(
            f"{method.upper()} {path}: path parameters {sorted(in_path)} "
            f"but described {sorted(described)}"
        )
    replies = list(operation.replies)
    if 422 not in operation.statuses:
        replies.append(COMMON_REPLY)
    access = access_of(method.upper(), path)
    security = operation.security
    if security is None and secured and access is not Access.PUBLIC:
        security = BEARER
    if security:
        # An operation that needs a token answers these too, unless it describes them.
        replies += [r for r in (UNAUTHORIZED, FORBIDDEN) if r.status not in operation.statuses]
    if method.upper() in MUTATING:
        replies = [r for r in replies if r.status != 429] + [RATE_LIMITED]
    elif access is not Access.PUBLIC:
        replies = _read_limited(replies)
    if path not in HOST_EXEMPT:
        replies.append(MISDIRECTED)
    out: dict[str, Any] = {
        "operationId": f"{method}{view.__name__}",
        "summary": operation.summary,
        "tags": [operation.tag],
        "parameters": [_parameter(p) for p in (*operation.params, *COMMON_PARAMS)],
        "responses": {
            str(reply.status): _reply(reply, schemas)
            for reply in sorted(replies, key=lambda r: r.status)
        },
    }
    description = operation.description
    if security:
        description = " ".join(filter(None, (description, _ACCESS_WORDS.get(access, ""))))
    if description:
        out["description"] = description
    if operation.body is not None:
        out["requestBody"] = {
            "required": operation.body_required,
            "content": {"application/json": {"schema": schemas.ref(operation.body, "validation")}},
        }
    if security is not None:
        out["security"] = [dict(s) for s in security]
    return out


def build_document(
    pages: Iterable[tuple[str, type[View]]], *, secured: bool = False
) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``pages`` (path, view), in the order given.

    ``secured``: auth is on, so every route that is not public names the bearer
    scheme and answers 401 and 403 too.
    """
    described = [(path, view, served_operations(view)) for path, view in pages]
    schemas = _Schemas([(path, ops) for path, _, ops in described])
    paths: dict[str, dict[str, Any]] = {}
    for path, view, operations in described:
        if path in paths:
            raise UndocumentedRoute(f"{path} is served twice")
        paths[path] = {
            method: _operation(path, method, view, operation, schemas, secured)
            for method, operation in operations.items()
        }
    components: dict[str, Any] = {
        "schemas": schemas.components,
        # A reply lists the headers it always sets: each is required where it is listed.
        "headers": {name: {**h, "required": True} for name, h in RESPONSE_HEADERS.items()},
    }
    if secured:
        components["securitySchemes"] = SECURITY_SCHEMES
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": "ordersaga", "version": __version__, "description": DESCRIPTION},
        "paths": paths,
        "components": components,
    }


def documented_routes(document: Mapping[str, Any]) -> set[tuple[str, str]]:
    """(METHOD, path) of every operation in ``document``."""
    return {(method.upper(), path) for path, item in document["paths"].items() for method in item}
