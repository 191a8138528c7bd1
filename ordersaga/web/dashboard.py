"""The operators' page: one self-contained page, its script and style, and the figures it shows.

Everything is served from the package (nothing fetched from elsewhere; the
Content-Security-Policy says so to the browser), and the page reads only the
web view's own JSON routes, polling each second.
"""

from __future__ import annotations

from importlib.resources import files
from typing import Any, Literal

from faust.web import Request, Response

from ordersaga.edge.operations import Operation, Reply, documented, errors, param
from ordersaga.schemas.responses import DashboardFigures, DeadLetters, MinuteOutcomes, StepLatency
from ordersaga.web.desk import DeskView
from ordersaga.web.errors import answers, not_found

_STATIC = files("ordersaga.web") / "static"
ASSETS: dict[str, tuple[bytes, str]] = {
    name: ((_STATIC / name).read_bytes(), kind)
    for name, kind in (
        ("dashboard.html", "text/html"),
        ("app.js", "text/javascript"),
        ("style.css", "text/css"),
    )
}
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
STATS_MINUTES = 10
PAGE_HEADERS = tuple(SECURITY_HEADERS)

DASHBOARD = Operation(
    summary="The operators' page (HTML)",
    tag="dashboard",
    replies=(Reply(200, "the page", media=("text/html",), headers=PAGE_HEADERS),),
)
DASHBOARD_ASSET = Operation(
    summary="The operators' page's script and style",
    tag="dashboard",
    params=(param("name", "path", Literal["app.js", "style.css"], "the file"),),
    replies=(
        Reply(
            200,
            "app.js (text/javascript) or style.css (text/css)",
            media=("text/javascript", "text/css"),
            headers=PAGE_HEADERS,
        ),
        *errors(404, 422),
    ),
)
DASHBOARD_STATS = Operation(
    summary="The operators' page's figures over the last 10 minutes",
    tag="dashboard",
    replies=(Reply(200, "the figures", (DashboardFigures,)), *errors(422, 503)),
)


def summarize(stats: list[tuple[str, dict[str, str]]]) -> dict[str, Any]:
    """Outcomes per minute and mean step latency from the per-minute stats hashes."""
    outcomes = []
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    for minute, values in stats:
        per_minute: dict[str, int] = {}
        for field, value in values.items():
            kind, _, rest = field.partition(":")
            if kind == "outcome":
                status, _, reason = rest.partition(":")
                per_minute[f"{status} {reason}".strip()] = int(value)
            elif kind == "step":
                step, _, part = rest.rpartition(":")
                if part == "sum":
                    sums[step] = sums.get(step, 0.0) + float(value)
                else:
                    counts[step] = counts.get(step, 0) + int(value)
        outcomes.append(MinuteOutcomes(minute=minute, counts=per_minute))
    latency = [
        StepLatency(step=step, mean_s=sums.get(step, 0.0) / n, count=n)
        for step, n in sorted(counts.items())
        if n > 0
    ]
    return {"outcomes": outcomes, "step_latency": latency}


class Dashboard(DeskView):
    """``GET /dashboard``."""

    @documented(DASHBOARD)
    async def get(self, request: Request) -> Response:
        """The operators' page."""
        body, kind = ASSETS["dashboard.html"]
        return self.bytes(body, content_type=kind, headers=dict(SECURITY_HEADERS))


class DashboardAsset(DeskView):
    """``GET /dashboard/{name}``: the page's script and style."""

    @documented(DASHBOARD_ASSET)
    @answers
    async def get(self, request: Request, name: str) -> Response:
        """``app.js`` or ``style.css``; nothing else."""
        if name not in ("app.js", "style.css"):
            raise not_found(f"dashboard file {name[:64]}")
        body, kind = ASSETS[name]
        return self.bytes(body, content_type=kind, headers=dict(SECURITY_HEADERS))


class DashboardStats(DeskView):
    """``GET /dashboard/stats``."""

    @documented(DASHBOARD_STATS)
    @answers
    async def get(self, request: Request) -> Response:
        """Sagas in flight by status, outcomes per minute, step latency, dead letters."""
        desk = self.desk
        figures = summarize(await desk.store.stats(STATS_MINUTES))
        return self.answer(
            DashboardFigures(
                in_flight=await desk.store.open_statuses(),
                **figures,
                dead_letters=[
                    DeadLetters(topic=topic, messages=n)
                    for topic, n in sorted(desk.dead_letters.items())
                    if n
                ],
            )
        )
