"""The registry views: every worker of every group, and one group's health."""

from __future__ import annotations

from collections import Counter

from faust.web import Request, Response

from ordersaga.app.groups import GROUP_NAMES
from ordersaga.app.http import invalid
from ordersaga.web.desk import DeskView
from ordersaga.web.errors import answers
from ordersaga.web.service_registry import health_of


class Services(DeskView):
    """``GET /services``."""

    @answers
    async def get(self, request: Request) -> Response:
        """Every worker instance: group, host and port, pid, partitions, lag, state."""
        services = await self.desk.registry.services()
        states = Counter(s["state"] for s in services)
        return self.json(
            {
                "services": services,
                "counts": {state: states.get(state, 0) for state in ("up", "stale", "gone")},
                "heartbeat_s": self.desk.settings.heartbeat_s,
            }
        )


class GroupHealth(DeskView):
    """``GET /services/{group}/health``."""

    @answers
    async def get(self, request: Request, group: str) -> Response:
        """200 while the group has a live worker (ok or degraded); 503 when none is up."""
        if group not in GROUP_NAMES:
            raise invalid(
                "group",
                f"must be one of {', '.join(sorted(GROUP_NAMES))}",
                status=404,
                error="not_found",
            )
        instances = [s for s in await self.desk.registry.services() if s["group"] == group]
        states = [s["state"] for s in instances]
        status = health_of(states)
        body = {
            "group": group,
            "status": status,
            **{state: states.count(state) for state in ("up", "stale", "gone")},
            "instances": instances,
        }
        if status == "down":
            return self.json(
                {
                    **body,
                    "error": "group_down",
                    "message": f"no live worker of {group}",
                    "problems": [{"field": "group", "message": f"no live worker of {group}"}],
                },
                status=503,
                headers={"Retry-After": "1"},
            )
        return self.json(body)
