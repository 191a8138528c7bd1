"""Every worker announces itself on ``ordersaga.services``: who, where, what it holds, its lag.

Sent by a guarded timer of every Node, so a worker that stops sending is one that
stopped (SIGKILL, a hung loop): the web view reads the heartbeats into its
registry and calls an instance stale after two periods and gone after three.
"""

from __future__ import annotations

import socket
from datetime import UTC, datetime
from typing import Any, cast

from ordersaga import __version__
from ordersaga.schemas.heartbeats import ServiceHeartbeat
from ordersaga.shell.node import Node
from ordersaga.shell.topics import SERVICES


class Announcer:
    """Builds and sends one worker's heartbeat."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.started_at = datetime.now(UTC)
        self.pid = node.pid

    @property
    def instance(self) -> str:
        """Unique per process: a restarted worker is a new instance on the same port."""
        return self.node.instance

    def heartbeat(self) -> ServiceHeartbeat:
        """What this worker says about itself now."""
        app = cast(Any, self.node.app)
        assigned = sorted(app.assignor.assigned_actives(), key=lambda tp: (tp.topic, tp.partition))
        lag = 0
        consumer = app.consumer
        read = getattr(consumer, "_read_offset", {})
        for tp in assigned:
            try:
                high = consumer.highwater(tp)
            except Exception:  # not fetched yet: nothing known about that partition
                continue
            last = read.get(tp)
            if high is not None and last is not None:
                lag += max(0, int(high) - int(last) - 1)
        self.node.metrics.consumer_lag.set(lag)
        host = app.conf.web_host or socket.gethostname()
        return ServiceHeartbeat(
            group=self.node.group.name,
            instance=self.instance,
            host=str(host),
            port=int(app.conf.web_port),
            pid=self.pid,
            started_at=self.started_at,
            sent_at=datetime.now(UTC),
            interval_s=self.node.settings.heartbeat_s,
            partitions=tuple(f"{tp.topic}[{tp.partition}]" for tp in assigned)[:1000],
            lag=lag,
            version=__version__,
        )

    async def announce(self) -> None:
        """Send the heartbeat, keyed by instance."""
        beat = self.heartbeat()
        await self.node.send(
            beat,
            key=beat.instance,
            topic=SERVICES,
            correlation_id=beat.instance,
            event_id=f"hb:{beat.instance}:{beat.sent_at.timestamp():.3f}",
        )
