"""A worker of one agent group: its :class:`Node` with the worker pages and heartbeat attached.

The node knows nothing of its pages or its heartbeat; they attach to it here, so the
shell's imports point one way (pages and heartbeat import the node, never back).
"""

from __future__ import annotations

from ordersaga.config.settings import Settings
from ordersaga.shell.groups import AgentGroup
from ordersaga.shell.heartbeat import Announcer
from ordersaga.shell.node import Node
from ordersaga.shell.pages import register_worker_pages
from ordersaga.topology import TOPOLOGY, Topology


class Worker(Node):
    """A :class:`Node` serving /health, /ready and /metrics and announcing itself."""

    def __init__(
        self,
        group_name: str | AgentGroup,
        settings: Settings | None = None,
        topology: Topology = TOPOLOGY,
    ) -> None:
        super().__init__(group_name, settings, topology)
        self.pages = register_worker_pages(self)
        self.announcer = Announcer(self)
        self.timer(interval=self.settings.heartbeat_s)(self.announcer.announce)
