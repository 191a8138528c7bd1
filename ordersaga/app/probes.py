"""Every worker's probes, ``/health``, ``/ready`` and ``/metrics``: open, and bindable apart.

They never ask for a token: load balancers and Prometheus call them. By default
they are served on the worker's web port, beside the web view's API. With
``ORDERSAGA_PROBES_PORT`` they move to a listener of their own on
``ORDERSAGA_PROBES_HOST`` (the worker's web port offset by the same amount from
``ORDERSAGA_WEB_PORT``), so the API port can face clients while the probes stay
on an internal interface; the web port then serves no probe.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, cast

import orjson
from aiohttp import web
from faust.web import Request, Response

from ordersaga.app.http import ApiView, json_errors

if TYPE_CHECKING:
    from ordersaga.app.node import Node

ProbeHandler = Callable[[], Awaitable[web.Response]]
PATHS = ("/health", "/ready", "/metrics")


def _json(body: dict[str, Any], status: int = 200, **headers: str) -> web.Response:
    return web.Response(
        body=orjson.dumps(body), status=status, headers=headers, content_type="application/json"
    )


def probe_handlers(node: Node) -> dict[str, ProbeHandler]:
    """The three probes of ``node``, each answering a complete response."""

    async def health() -> web.Response:
        """200 when every dependency answers; 503 naming the ones that do not."""
        checks = await node.health()
        body: dict[str, Any] = {
            "status": "ok",
            "group": node.group.name,
            "app": node.app.conf.id,
            "checks": checks,
        }
        down = {name: state for name, state in checks.items() if state != "ok"}
        if not down:
            return _json(body)
        body |= {
            "status": "unavailable",
            "error": "dependency_down",
            "message": ", ".join(f"{n} {s}" for n, s in down.items()),
            "problems": [{"field": n, "message": s} for n, s in down.items()],
        }
        return _json(body, 503, **{"Retry-After": "1"})

    async def ready() -> web.Response:
        """200 once this worker has its partitions and restored tables; 503 before."""
        reasons = node.readiness()
        assigned = sorted(
            f"{tp.topic}[{tp.partition}]" for tp in node.app.assignor.assigned_actives()
        )
        body: dict[str, Any] = {"ready": not reasons, "group": node.group.name}
        body["assigned"] = assigned
        if not reasons:
            return _json(body)
        body |= {
            "error": "not_ready",
            "message": "; ".join(reasons),
            "problems": [{"field": "worker", "message": r} for r in reasons],
        }
        return _json(body, 503, **{"Retry-After": "1"})

    async def metrics() -> web.Response:
        # Prometheus' text format names its version in the content type.
        return web.Response(
            body=node.metrics.render(), headers={"Content-Type": "text/plain; version=0.0.4"}
        )

    return {"/health": health, "/ready": ready, "/metrics": metrics}


def serve_probes(node: Node) -> None:
    """Serve the probes on the worker's web port, or on a listener of their own."""
    handlers = probe_handlers(node)
    settings = node.settings
    if settings.probes_port is None:
        for path, handler in handlers.items():
            node.app.page(path)(_page(handler))
        return
    app = cast(Any, node.app)

    @app.task
    async def listen_for_probes() -> None:
        web_port = int(app.conf.web_port)
        port = cast(int, settings.probes_port) + (web_port - settings.web_port)
        probes = web.Application(middlewares=[json_errors])
        for path, handler in handlers.items():
            probes.router.add_get(path, _plain(handler))
        runner = web.AppRunner(probes, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, settings.probes_host, port).start()
        node.probes_runner = runner


def _page(handler: ProbeHandler) -> type[ApiView]:
    class Probe(ApiView):
        async def get(self, request: Request) -> Response:
            return cast(Response, await handler())

    Probe.__doc__ = handler.__doc__
    return Probe


def _plain(handler: ProbeHandler) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def probe(request: web.Request) -> web.Response:
        return await handler()

    return probe
