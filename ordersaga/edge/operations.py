"""The declarative description of each HTTP operation, attached to the view method serving it.

Every view method a worker serves carries an :class:`Operation` (``@documented``):
what it reads (path, query and header parameters, the body's model) and every
answer it can give (status, model, headers). ``ordersaga.web.openapi`` turns them
into the OpenAPI document and refuses a served method that has none, so a route
cannot be added without its documentation. The models are the ones the views
validate requests with and build their answers through.

Security (bearer tokens, 401/403) is not described yet: :attr:`Operation.security`
is where an operation will name the schemes it needs, and the generator's
``SECURITY_SCHEMES`` where they are declared.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, TypeAdapter

from ordersaga.schemas.bounds import Id, IdempotencyKey, Sku
from ordersaga.schemas.responses import ErrorResponse

F = TypeVar("F", bound=Callable[..., Any])
ATTRIBUTE = "__operation__"


@dataclass(frozen=True)
class Param:
    """A path, query or header parameter and its bounds (a JSON Schema)."""

    name: str
    where: Literal["path", "query", "header"]
    schema: Mapping[str, Any]
    description: str
    required: bool = False


def param(
    name: str,
    where: Literal["path", "query", "header"],
    kind: Any,
    description: str,
    *,
    required: bool = False,
    **extra: Any,
) -> Param:
    """A parameter whose schema is that of the pydantic type ``kind`` (its bounds included)."""
    schema = {**TypeAdapter(kind).json_schema(), **extra}
    return Param(name, where, schema, description, required=required or where == "path")


@dataclass(frozen=True)
class Reply:
    """One answer an operation can give.

    ``models`` are the JSON bodies it may carry (more than one: any of them);
    ``media`` the types of a non-JSON body instead; ``headers`` the response
    headers it always sets (named as in ``RESPONSE_HEADERS`` of the generator).
    """

    status: int
    description: str
    models: tuple[type[BaseModel], ...] = ()
    media: tuple[str, ...] = ()
    headers: tuple[str, ...] = ()


@dataclass(frozen=True)
class Operation:
    """What one method of one route reads and answers."""

    summary: str
    replies: tuple[Reply, ...]
    description: str = ""
    tag: str = "operations"
    params: tuple[Param, ...] = ()
    body: type[BaseModel] | None = None
    body_required: bool = True
    # Filled by the authentication work: e.g. ({"bearer": ["admin"]},); 401/403 replies with it.
    security: tuple[Mapping[str, list[str]], ...] | None = None
    statuses: frozenset[int] = field(init=False)

    def __post_init__(self) -> None:
        statuses = [r.status for r in self.replies]
        if len(statuses) != len(set(statuses)):
            raise ValueError(f"{self.summary}: a status is described twice")
        object.__setattr__(self, "statuses", frozenset(statuses))


def documented(operation: Operation) -> Callable[[F], F]:
    """Attach ``operation`` to the view method serving it."""

    def attach(fn: F) -> F:
        setattr(fn, ATTRIBUTE, operation)
        return fn

    return attach


def operation_of(fn: Any) -> Operation | None:
    """The operation a view method was documented with, if any."""
    found = getattr(fn, ATTRIBUTE, None)
    return found if isinstance(found, Operation) else None


# ------------------------------------------------------- shared descriptions

_ERRORS = {
    400: "the body is not JSON (malformed, duplicate keys, NaN, not UTF-8)",
    # For the operations that will need a token (Operation.security).
    401: "no valid bearer token; WWW-Authenticate says why",
    403: "the token's subject or role may not do this",
    404: "no such resource",
    408: "the body did not arrive within 10 s of the request",
    409: "conflicts with the current state",
    413: "the body is over ORDERSAGA_MAX_BODY_BYTES",
    415: "Content-Type is not application/json (utf-8)",
    422: "a field, parameter or header is invalid; problems name each",
    429: "too many orders in flight: retry after Retry-After seconds",
    503: "a dependency (Redis) does not answer: retry after Retry-After seconds",
}


def error(status: int, description: str | None = None, *models: type[BaseModel]) -> Reply:
    """An error answer in the one JSON error shape (or a model extending it)."""
    headers = {429: ("Retry-After",), 503: ("Retry-After",), 401: ("WWW-Authenticate",)}
    return Reply(
        status,
        description or _ERRORS[status],
        models or (ErrorResponse,),
        headers=headers.get(status, ()),
    )


def errors(*statuses: int) -> tuple[Reply, ...]:
    return tuple(error(status) for status in statuses)


# What every POST that reads a JSON body can answer before its own checks.
BODY_ERRORS = errors(400, 408, 413, 415, 422)

ORDER_ID = param("order_id", "path", Id, "the order's id (ord_…)")
CUSTOMER_ID = param("customer_id", "path", Id, "the customer's id")
SKU = param("sku", "path", Sku, "the SKU")
IDEMPOTENCY_KEY = param(
    "Idempotency-Key",
    "header",
    IdempotencyKey,
    "makes a retry return the first request's answer (kept a day, hashed); "
    "the same key with another body is 422",
)
