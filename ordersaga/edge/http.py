"""The HTTP shell every worker shares: one JSON error shape, one log line per answer.

Every 4xx and 5xx any worker answers, whether a route raised it, aiohttp's router
found no route or method, or something broke, is JSON
``{"error", "message", "problems": [{"field", "message"}]}``. A client's mistake
is logged as one line at INFO (a flood of bad requests must not flood the log
with tracebacks); only an unexpected failure logs its traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

import orjson
from aiohttp import web
from faust.web import Response, View

from ordersaga.schemas.responses import ErrorResponse, ResponseModel

log = logging.getLogger("ordersaga.http")

Problem = dict[str, str]


class HttpError(Exception):
    """An error answer: status, a machine-readable code, a message and the fields at fault."""

    def __init__(
        self,
        status: int,
        error: str,
        message: str,
        *,
        problems: Iterable[Problem] = (),
        headers: Mapping[str, str] | None = None,
        model: type[ErrorResponse] = ErrorResponse,
        fields: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.headers = dict(headers or {})
        # Built through the documented model (or one extending it with ``fields``).
        self.body: dict[str, Any] = model.model_validate(
            {"error": error, "message": message, "problems": list(problems), **(fields or {})}
        ).body()


def invalid(
    field: str, message: str, *, status: int = 422, error: str = "validation_error"
) -> HttpError:
    """A 4xx naming one field (a body field, a path or query parameter, or a header)."""
    return HttpError(
        status, error, f"{field}: {message}", problems=[{"field": field, "message": message}]
    )


def error_response(exc: HttpError) -> web.Response:
    """The JSON answer of an HttpError."""
    return web.Response(
        body=orjson.dumps(exc.body),
        status=exc.status,
        headers=exc.headers,
        content_type="application/json",
    )


def _from_aiohttp(exc: web.HTTPException) -> HttpError:
    status = exc.status
    headers: dict[str, str] = {}
    if isinstance(exc, web.HTTPMethodNotAllowed):
        allowed = sorted(
            m for m in exc.allowed_methods if m != "HEAD" or "GET" in exc.allowed_methods
        )
        headers["Allow"] = ", ".join(allowed)
        return HttpError(
            405,
            "method_not_allowed",
            f"{exc.method} is not allowed here; allowed: {', '.join(allowed)}",
            headers=headers,
        )
    if status == 404:
        return HttpError(404, "not_found", "no such resource")
    if status == 413:
        return HttpError(413, "body_too_large", "the body is too large")
    code = (exc.reason or "error").lower().replace(" ", "_")
    return HttpError(status, code, exc.text or exc.reason or "error")


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# On every answer of every worker: nothing is cached (answers are per caller and
# change), no type is guessed from the bytes, and no software version is told.
HARDENING = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Server": "ordersaga",
}


def route_template(request: web.Request) -> str | None:
    """The matched route's template (``/orders/{order_id}``); None when none matched."""
    info = request.match_info
    if info.http_exception is not None:  # the router answers 404 or 405
        return None
    resource = info.route.resource
    return resource.canonical if resource is not None else None


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer every error in the JSON shape and log each answer that is not a success."""
    try:
        response = await handler(request)
    except HttpError as exc:
        response = error_response(exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = error_response(_from_aiohttp(exc))
    except Exception:
        log.exception("%s %s failed", request.method, request.path)
        response = error_response(HttpError(500, "internal_error", "the server failed to answer"))
    if not response.prepared:
        response.headers.update(HARDENING)
    if response.status >= 400:
        level = logging.WARNING if response.status >= 500 else logging.INFO
        if log.isEnabledFor(level):
            reason = ""
            if isinstance(response, web.Response) and response.body is not None:
                try:
                    reason = str(orjson.loads(bytes(response.body)).get("message", ""))[:300]  # type: ignore[arg-type]
                except (orjson.JSONDecodeError, AttributeError, TypeError):
                    reason = ""
            # Escaped: a path or message quoting the client must not forge log lines.
            log.log(
                level,
                "%s %s -> %d %s",
                request.method,
                printable_text(request.path),
                response.status,
                printable_text(reason, 300),
            )
    return response


class ApiView(View):
    """A Faust view that routes HEAD only where GET exists.

    Faust registers HEAD for every view; on a POST-only view it answered 405 while
    the 405 of any other method listed it as allowed.
    """

    def get_methods(self) -> set[str]:
        methods = set(super().get_methods())
        if "GET" not in methods:
            methods.discard("HEAD")
        return methods

    def answer(
        self,
        model: ResponseModel,
        *,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        """The JSON answer of a documented response model."""
        return self.json(model.body(), status=status, headers=dict(headers or {}))


def require_json(request: web.Request) -> None:
    """Refuse a mutating request whose body is not declared JSON (415).

    Browsers send text/plain and form bodies cross-site without a preflight, so
    accepting them would let any web page place or cancel orders in a user's name.
    """
    if request.content_type != "application/json":
        raise invalid(
            "Content-Type",
            "must be application/json",
            status=415,
            error="unsupported_media_type",
        )
    charset = request.charset
    if charset is not None and charset.lower() not in {"utf-8", "utf8"}:
        raise invalid(
            "Content-Type", "charset must be utf-8", status=415, error="unsupported_media_type"
        )


def printable_text(text: str, limit: int = 200) -> str:
    # Parser messages quote the client's raw bytes; keep the answer valid, short JSON.
    return text[:limit].encode("ascii", "backslashreplace").decode("ascii")
