"""The heartbeat every worker publishes on ``ordersaga.services``, which the web view's
registry of live workers keeps: a message of the platform, not of the saga."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field

from ordersaga.schemas.bounds import Counter, EventId, TypeName
from ordersaga.schemas.messages import Message

# The most partitions one heartbeat names (a worker holds a few dozen at most).
MAX_HEARTBEAT_PARTITIONS = 1_000


class ServiceHeartbeat(Message):
    """A worker says it is alive, every few seconds (keyed by its instance id)."""

    TYPE = "ServiceHeartbeat"
    ROUTING_FIELD = "instance"
    group: TypeName
    instance: EventId
    host: Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[A-Za-z0-9.:\-\[\]]+$")]
    port: Annotated[int, Field(ge=1, le=65_535)]
    pid: Annotated[int, Field(ge=1, le=2**31)]
    started_at: datetime
    sent_at: datetime
    interval_s: Annotated[float, Field(gt=0, le=3_600)]
    partitions: tuple[Annotated[str, Field(max_length=300)], ...] = Field(
        default=(), max_length=MAX_HEARTBEAT_PARTITIONS
    )
    lag: Counter = 0
    version: Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9.+\-]+$")]
