"""The registry views: every worker of every group, and one group's health."""

from __future__ import annotations

from collections import Counter
from typing import Any, Literal

from faust.web import Request, Response

from ordersaga.edge.http import invalid
from ordersaga.edge.operations import Operation, Reply, documented, error, errors, param
from ordersaga.schemas.responses import (
    ErrorResponse,
    GroupDown,
    GroupHealthResponse,
    Problem,
    ServiceCounts,
    ServiceEntry,
    ServiceList,
    ServiceState,
)
from ordersaga.shell.groups import GROUP_NAMES
from ordersaga.web.desk import DeskView
from ordersaga.web.errors import answers
from ordersaga.web.service_registry import health_of

STATES: tuple[ServiceState, ...] = ("up", "stale", "gone")
LIST_SERVICES = Operation(
    summary="Every worker of every group, from its heartbeats",
    description="up within two heartbeat periods, stale within three, gone after; gone ones "
    "are listed for 10 minutes.",
    tag="services",
    replies=(Reply(200, "the workers", (ServiceList,)), *errors(422, 503)),
)
GROUP_HEALTH = Operation(
    summary="One group's health",
    tag="services",
    params=(param("group", "path", Literal[tuple(sorted(GROUP_NAMES))], "the agent group"),),
    replies=(
        Reply(200, "some worker is up (ok or degraded)", (GroupHealthResponse,)),
        *errors(404, 422),
        error(
            503,
            "no worker of the group is up (group_down), or Redis does not answer",
            GroupDown,
            ErrorResponse,
        ),
    ),
)


def service_entry(service: dict[str, Any]) -> ServiceEntry:
    """What is served of a kept heartbeat: the fields the answer documents, no others."""
    return ServiceEntry.model_validate({k: service[k] for k in ServiceEntry.model_fields})


class Services(DeskView):
    """``GET /services``."""

    @documented(LIST_SERVICES)
    @answers
    async def get(self, request: Request) -> Response:
        """Every worker instance: group, host and port, pid, partitions, lag, state."""
        services = [service_entry(s) for s in await self.desk.registry.services()]
        states = Counter(s.state for s in services)
        return self.answer(
            ServiceList(
                services=services,
                counts=ServiceCounts(**{state: states.get(state, 0) for state in STATES}),
                heartbeat_s=self.desk.settings.heartbeat_s,
            )
        )


class GroupHealth(DeskView):
    """``GET /services/{group}/health``."""

    @documented(GROUP_HEALTH)
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
        instances = [
            service_entry(s) for s in await self.desk.registry.services() if s["group"] == group
        ]
        states = [s.state for s in instances]
        status = health_of(states)
        fields: dict[str, Any] = {
            "group": group,
            "status": status,
            **{state: states.count(state) for state in STATES},
            "instances": instances,
        }
        if status == "down":
            down = f"no live worker of {group}"
            return self.answer(
                GroupDown(
                    **fields,
                    error="group_down",
                    message=down,
                    problems=[Problem(field="group", message=down)],
                ),
                status=503,
                headers={"Retry-After": "1"},
            )
        return self.answer(GroupHealthResponse(**fields))
