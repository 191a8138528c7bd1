"""Who takes part in the saga and how messages reach them, declared once per group.

Between ``tables`` and ``config`` in the layers: it imports no Faust, so the
runtime, the tests and the shell read the same declarations.
"""

from __future__ import annotations

from ordersaga.topology.model import Participant, Topology, TopologyError, Unrouted
from ordersaga.topology.participants import PARTICIPANTS, TOPOLOGY

__all__ = ["PARTICIPANTS", "TOPOLOGY", "Participant", "Topology", "TopologyError", "Unrouted"]
