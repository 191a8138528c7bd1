"""The agent groups: each a Faust app in `ordersaga.agents.<group>`, with its web port."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["GROUPS", "GROUP_NAMES", "AgentGroup", "group"]


@dataclass(frozen=True)
class AgentGroup:
    """An agent group: its module (holding ``app``) and its web port offset."""

    name: str
    module: str
    port_offset: int
    summary: str

    @property
    def app_id(self) -> str:
        """The Faust app id, which is also the group's Kafka consumer group id."""
        return f"ordersaga-{self.name}"

    def web_port(self, base_port: int) -> int:
        """The port this group's first worker serves its web view on."""
        return base_port + self.port_offset


GROUPS: tuple[AgentGroup, ...] = (
    AgentGroup("webview", "ordersaga.agents.webview", 0, "HTTP API and read models"),
    AgentGroup("orders", "ordersaga.agents.orders", 1, "saga orchestrator"),
    AgentGroup("inventory", "ordersaga.agents.inventory", 2, "stock per SKU"),
    AgentGroup("payments", "ordersaga.agents.payments", 3, "payment ledger and gateway"),
    AgentGroup("shipping", "ordersaga.agents.shipping", 4, "shipments and carrier"),
    AgentGroup("notifications", "ordersaga.agents.notifications", 5, "customer notifications"),
    AgentGroup("customers", "ordersaga.agents.customers", 6, "customer accounts"),
)

GROUP_NAMES: frozenset[str] = frozenset(g.name for g in GROUPS)


def group(name: str) -> AgentGroup:
    """The agent group called ``name``."""
    for g in GROUPS:
        if g.name == name:
            return g
    raise KeyError(name)
