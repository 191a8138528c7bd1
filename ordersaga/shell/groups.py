"""The agent groups: each a Faust app in `ordersaga.agents.<group>`, with its web port.

Declared in ``ordersaga.topology`` (a group is a :class:`Participant`); named here
for the runtime, the CLI and the tests that only need names, modules and ports.
"""

from __future__ import annotations

from ordersaga.topology import TOPOLOGY, Participant

__all__ = ["GROUPS", "GROUP_NAMES", "AgentGroup", "group"]

AgentGroup = Participant

GROUPS: tuple[AgentGroup, ...] = TOPOLOGY.participants

GROUP_NAMES: frozenset[str] = TOPOLOGY.group_names


def group(name: str) -> AgentGroup:
    """The agent group called ``name``."""
    return TOPOLOGY.participant(name)
