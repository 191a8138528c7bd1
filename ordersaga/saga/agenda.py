"""Keys by the time they are next due: what a timer reads instead of a whole table.

The orchestrator's timers used to scan every saga it keeps, every second for
deadlines and every five for forgetting: work in proportion to the orders kept
(thousands within the retention period), on every tick, busy or idle. An agenda
is written beside the table (each saga write files the saga under its next
deadline, or under its forgetting time once it ended), so a tick costs what is
due and nothing when nothing is.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

# Stale heap entries (a key filed again later) are dropped by a rebuild once
# they outnumber the live ones by this much.
_SLACK = 1_000


@dataclass
class Agenda:
    """Each key's next due time; ``due`` hands out the keys whose time has come, once."""

    _when: dict[str, float] = field(default_factory=dict)
    _heap: list[tuple[float, str]] = field(default_factory=list)

    def at(self, key: str, when: float) -> None:
        """File ``key`` under ``when``, replacing any earlier filing of it."""
        if self._when.get(key) == when:
            return
        self._when[key] = when
        heapq.heappush(self._heap, (when, key))
        if len(self._heap) > 2 * len(self._when) + _SLACK:
            self._heap = [(w, k) for k, w in self._when.items()]
            heapq.heapify(self._heap)

    def drop(self, key: str) -> None:
        """Forget ``key`` (its heap entry goes stale and is skipped)."""
        self._when.pop(key, None)

    def due(self, now: float) -> list[str]:
        """Every key filed at or before ``now``, in time order; each is then unfiled."""
        out: list[str] = []
        while self._heap and self._heap[0][0] <= now:
            when, key = heapq.heappop(self._heap)
            if self._when.get(key) == when:
                del self._when[key]
                out.append(key)
        return out

    def clear(self) -> None:
        self._when.clear()
        self._heap.clear()

    def __len__(self) -> int:
        return len(self._when)
