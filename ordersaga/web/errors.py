"""Turning bad requests into 4xx JSON bodies that name the problem."""

from __future__ import annotations

from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError


class HttpError(Exception):
    """An error answer: status code and a JSON body."""

    def __init__(self, status: int, error: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"error": error, "message": message, **extra}


def _field(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(body)"


def validation_problem(exc: ValidationError) -> HttpError:
    """A 422 listing each invalid field with pydantic's message."""
    problems = [
        {"field": _field(tuple(e["loc"])), "message": e["msg"], "type": e["type"]}
        for e in exc.errors(include_url=False, include_input=False)
    ]
    first = problems[0]
    return HttpError(
        422, "validation_error", f"{first['field']}: {first['message']}", problems=problems
    )


M = TypeVar("M", bound=BaseModel)


def parse_body(model: type[M], body: bytes, max_bytes: int) -> M:
    """Validate a JSON request body against ``model`` or raise the HttpError to answer."""
    if len(body) > max_bytes:
        raise HttpError(413, "body_too_large", f"body is over {max_bytes} bytes")
    if not body.strip():
        raise HttpError(400, "empty_body", "a JSON body is required")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise HttpError(400, "malformed_json", f"body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise HttpError(
            422,
            "validation_error",
            "(body): must be a JSON object",
            problems=[{"field": "(body)", "message": "must be a JSON object"}],
        )
    try:
        return model.model_validate_json(body, strict=True)
    except ValidationError as exc:
        raise validation_problem(exc) from None
