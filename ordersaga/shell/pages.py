"""The pages every worker serves: ``/health``, ``/live``, ``/ready`` and ``/metrics``, documented.

For an orchestrator's probes: ``/live`` is liveness (the process works: restart it
when this stops answering), ``/ready`` readiness (route to it), ``/health`` the
dependencies (for dashboards and alerts: restarting a worker because Kafka or
Redis is down fixes nothing and restarts every replica at once).

They never ask for a token: load balancers and Prometheus call them. They are
served on the worker's web port unless ``ORDERSAGA_PROBES_PORT`` is set: then on
a listener of their own at ``ORDERSAGA_PROBES_HOST``, so the API's port can face
clients while the probes stay on an internal interface.

Each answer is built through its response model, and each method carries its
:class:`~ordersaga.edge.operations.Operation`, so the web view's OpenAPI document
describes these pages as it describes the API.
"""

from __future__ import annotations

import time
from typing import Any, cast

from aiohttp import web
from faust.web import Request, Response, View

from ordersaga.edge.http import ApiView, json_errors
from ordersaga.edge.operations import Operation, Reply, documented, error
from ordersaga.schemas.responses import (
    HealthDown,
    HealthResponse,
    LiveResponse,
    NotReady,
    ReadyResponse,
)
from ordersaga.shell.node import Node

Page = tuple[str, type[View]]

HEALTH = Operation(
    summary="Whether this worker's dependencies answer",
    description="The broker on every worker; Redis on the web view; the gateway's Redis "
    "on payments. Cached for a second.",
    tag="workers",
    replies=(
        Reply(200, "every dependency answers", (HealthResponse,)),
        error(503, "a dependency does not answer; checks and problems name it", HealthDown),
    ),
)
LIVE = Operation(
    summary="Whether this worker's process works (liveness)",
    description="Answers while the worker's event loop runs, whatever its dependencies "
    "say: a worker whose core service crashed or whose recovery ran past "
    "ORDERSAGA_RECOVERY_LIMIT_S exits instead.",
    tag="workers",
    replies=(Reply(200, "the process works", (LiveResponse,)),),
)
READY = Operation(
    summary="Whether this worker can serve (readiness)",
    description="A worker of a saga group: it has its partitions and restored tables. "
    "The web view: it has started and its Redis answers (the API answers from Redis, "
    "so a rebalance of its group does not take it out of service).",
    tag="workers",
    replies=(
        Reply(200, "ready", (ReadyResponse,)),
        error(503, "not ready yet; problems say why", NotReady),
    ),
)
METRICS = Operation(
    summary="Prometheus metrics of this worker",
    tag="workers",
    replies=(Reply(200, "Prometheus text exposition format", media=("text/plain",)),),
)


def register_worker_pages(node: Node) -> list[Page]:
    """Serve /health, /ready and /metrics on ``node``'s app; return them (path, view)."""

    class Health(ApiView):
        @documented(HEALTH)
        async def get(self, request: Request) -> Response:
            checks = await node.health.states()
            fields = {"group": node.group.name, "app": node.app.conf.id, "checks": checks}
            down = {name: state for name, state in checks.items() if state != "ok"}
            if not down:
                return self.answer(HealthResponse(**fields))
            return self.answer(
                HealthDown(
                    **fields,
                    error="dependency_down",
                    message=", ".join(f"{n} {s}" for n, s in down.items()),
                    problems=[{"field": n, "message": s} for n, s in down.items()],
                ),
                status=503,
                headers={"Retry-After": "1"},
            )

    class Live(ApiView):
        @documented(LIVE)
        async def get(self, request: Request) -> Response:
            return self.answer(
                LiveResponse(
                    group=node.group.name,
                    instance=node.instance,
                    uptime_s=round(time.monotonic() - node.health.started, 3),
                )
            )

    class Ready(ApiView):
        @documented(READY)
        async def get(self, request: Request) -> Response:
            reasons = await node.health.readiness()
            assigned = sorted(
                f"{tp.topic}[{tp.partition}]" for tp in node.app.assignor.assigned_actives()
            )
            fields = {"ready": not reasons, "group": node.group.name, "assigned": assigned}
            if not reasons:
                return self.answer(ReadyResponse(**fields))
            return self.answer(
                NotReady(
                    **fields,
                    error="not_ready",
                    message="; ".join(reasons),
                    problems=[{"field": "worker", "message": r} for r in reasons],
                ),
                status=503,
                headers={"Retry-After": "1"},
            )

    class MetricsPage(ApiView):
        @documented(METRICS)
        async def get(self, request: Request) -> Response:
            return self.bytes(node.metrics.render(), content_type="text/plain; version=0.0.4")

    pages: list[Page] = [
        ("/health", Health),
        ("/live", Live),
        ("/ready", Ready),
        ("/metrics", MetricsPage),
    ]
    if node.settings.probes_port is not None:
        _listen_apart(node, pages)
        return []  # the web port serves none of them
    for path, view in pages:
        node.app.page(path)(view)
    return pages


def _listen_apart(node: Node, pages: list[Page]) -> None:
    """Serve ``pages`` on a listener of their own (ORDERSAGA_PROBES_HOST and _PORT).

    Its port is ORDERSAGA_PROBES_PORT plus this worker's web port's offset from
    ORDERSAGA_WEB_PORT, so every worker of a machine has its own, as web ports do.
    """
    settings = node.settings
    app = cast(Any, node.app)

    @app.task
    async def listen_for_probes() -> None:
        port = cast(int, settings.probes_port) + (int(app.conf.web_port) - settings.web_port)
        probes = web.Application(middlewares=[json_errors])
        for path, view_cls in pages:
            # The same documented views, called as plain aiohttp handlers.
            view = cast(Any, view_cls)(node.app, node.app.web)
            probes.router.add_get(path, view.get, allow_head=True)
        runner = web.AppRunner(probes, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, settings.probes_host, port).start()
        node.probes_runner = runner
