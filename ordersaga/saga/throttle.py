"""At most one send per key per interval: what the shells' timers remember between ticks."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field


@dataclass
class Throttle:
    """Says whether a key is due again; forgets keys ``forget_after_s`` after their send.

    A timer that sends on every tick for every overdue record would repeat each
    message many times while the first is still on its way; memory stays bounded
    because old keys are dropped.
    """

    every_s: float
    forget_after_s: float
    _sent: dict[Hashable, float] = field(default_factory=dict)

    def due(self, key: Hashable, now: float) -> bool:
        """True unless ``key`` was sent within ``every_s``."""
        return now - self._sent.get(key, float("-inf")) >= self.every_s

    def sent(self, key: Hashable, now: float) -> None:
        """Record that ``key`` was sent at ``now``."""
        self._sent[key] = now

    def prune(self, now: float) -> None:
        """Forget keys sent longer than ``forget_after_s`` ago."""
        for key, sent in list(self._sent.items()):
            if now - sent > self.forget_after_s:
                del self._sent[key]

    def clear(self) -> None:
        self._sent.clear()

    def __len__(self) -> int:
        return len(self._sent)
