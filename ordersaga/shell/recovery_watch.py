"""When a table recovery counts as stuck: no progress for the limit, not a long replay.

A worker's recovery replays its changelogs; a big changelog takes long and is
fine as long as it moves. Judged on the total time, a changelog larger than the
limit allows would make every worker that takes it over exit before it is done,
and its replacement start over: a crash loop no setting but a bigger limit ends.
Judged on progress, only a replay that stops moving (the hangs of faust-streaming
issues 176 and 651) ends the worker.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class RecoveryWatch:
    """Feed it what the recovery has read; it says when nothing moved for ``limit_s``."""

    limit_s: float
    _read: int = -1
    _since: float = 0.0

    def stalled(self, in_recovery: bool, offsets_read: int, now: float) -> str | None:
        """Why the recovery counts as stuck at ``now``, or None while it moves (or is done)."""
        if not in_recovery:
            self._read = -1
            return None
        if offsets_read != self._read:
            self._read, self._since = offsets_read, now
            return None
        if now - self._since > self.limit_s:
            return f"table recovery read nothing for {self.limit_s:.0f} s"
        return None
