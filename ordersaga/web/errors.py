"""Reading request bodies strictly, and turning what is wrong into 4xx (or 503) answers."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any, TypeVar

from faust.web import Request, Response
from pydantic import BaseModel, ValidationError
from redis.exceptions import RedisError

from ordersaga.edge.http import ApiView, HttpError, invalid
from ordersaga.schemas.bounds import PATTERN_DESCRIPTIONS

__all__ = [
    "HttpError",
    "answers",
    "invalid",
    "key_reused",
    "not_found",
    "parse_body",
    "parse_json",
    "validation_problem",
]

Route = Callable[..., Awaitable[Response]]


def answers(fn: Route) -> Route:
    """A route whose dependency failures answer 503 (with Retry-After), never 500."""

    @wraps(fn)
    async def route(self: ApiView, request: Request, **kwargs: Any) -> Response:
        try:
            return await fn(self, request, **kwargs)
        except RedisError as exc:
            raise HttpError(
                503,
                "dependency_down",
                f"the view store is unavailable ({type(exc).__name__})",
                problems=[{"field": "redis", "message": "unavailable"}],
                headers={"Retry-After": "1"},
            ) from None

    return route


def not_found(what: str) -> HttpError:
    """The 404 of a missing order or SKU."""
    return HttpError(404, "not_found", f"no {what}")


def key_reused() -> HttpError:
    """The 422 of an Idempotency-Key already used with another request."""
    return invalid(
        "Idempotency-Key",
        "was already used with a different request",
        error="idempotency_key_reused",
    )


def _field(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(body)"


def _message(error: Any) -> str:
    if error["type"] == "string_pattern_mismatch":
        pattern = str(error.get("ctx", {}).get("pattern", ""))
        return PATTERN_DESCRIPTIONS.get(pattern, "has characters that are not allowed")
    return str(error["msg"])


def validation_problem(exc: ValidationError) -> HttpError:
    """A 422 listing each invalid field with pydantic's message."""
    problems = [
        {"field": _field(tuple(e["loc"])), "message": _message(e), "type": e["type"]}
        for e in exc.errors(include_url=False, include_input=False)
    ]
    first = problems[0]
    return HttpError(
        422, "validation_error", f"{first['field']}: {first['message']}", problems=problems
    )


class _DuplicateKey(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # The standard parsers keep the last of two equal keys, so a body could show a
    # reviewer one quantity and hand the system another.
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def parse_json(body: bytes) -> Any:
    """The JSON document in ``body``; 400 unless it is strict JSON (no duplicate keys, NaN)."""
    if not body.strip():
        raise HttpError(400, "empty_body", "a JSON body is required")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise HttpError(400, "malformed_json", "body is not UTF-8") from None
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except _DuplicateKey as exc:
        raise invalid(
            str(exc), "appears twice in one object", status=400, error="duplicate_key"
        ) from None
    except RecursionError:
        raise HttpError(400, "malformed_json", "body is nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, NaN/Infinity
        raise HttpError(400, "malformed_json", f"body is not valid JSON: {exc}") from None


M = TypeVar("M", bound=BaseModel)


def parse_body(model: type[M], body: bytes, max_bytes: int) -> M:
    """Validate a JSON request body against ``model`` or raise the HttpError to answer."""
    if len(body) > max_bytes:
        raise HttpError(413, "body_too_large", f"body is over {max_bytes} bytes")
    data = parse_json(body)
    if not isinstance(data, dict):
        raise invalid("(body)", "must be a JSON object")
    try:
        return model.model_validate(data, strict=True)
    except ValidationError as exc:
        raise validation_problem(exc) from None
