"""``ordersaga dlq``: inspect and re-drive dead letters.

A replay is chosen (``--id`` or ``--since``, never "everything"), refuses a
message older than the retention (the orchestrator may have forgotten its order
and would run it again), and records each dead letter it re-sent in Redis, so
a second run replays nothing (issue 19, finding 5).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ordersaga.adapters.kafka_clients import new_producer
from ordersaga.ops.tail import records
from ordersaga.shell.dead_letters import (
    DLQ_PREFIX,
    HEADER_CUT,
    HEADER_ERROR,
    HEADER_OFFSET,
    HEADER_PARTITION,
    HEADER_TIMESTAMP,
    HEADER_TOPIC,
)
from ordersaga.shell.printable import printable
from ordersaga.shell.topics import dlq_topic
from ordersaga.shell.unreadable import UNREADABLE_HEADER

# One key per dead letter replayed: dlq topic, partition and offset.
REPLAYED_PREFIX = "ordersaga:dlq:replayed:"
# A replay mark outlives the retention by this much: by the time it expires, the
# message it marks is refused as too old anyway.
REPLAYED_MARGIN_S = 60

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _topics(topic: str) -> tuple[str, str]:
    source = topic.removesuffix(".dlq")
    return source, dlq_topic(source)


def parse_since(text: str, now: float | None = None) -> float:
    """``--since`` as a Unix time: a duration ago (``90s``, ``10m``, ``2h``, ``1d``) or ISO-8601."""
    now = time.time() if now is None else now
    found = _DURATION.match(text.strip())
    if found:
        return now - float(found.group(1)) * _UNIT_S[found.group(2)]
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"--since {text!r}: a duration (90s, 10m, 2h, 1d) or an ISO-8601 time"
        ) from None
    if when.tzinfo is None:
        raise ValueError(f"--since {text!r}: give the time zone (2026-01-01T12:00:00+00:00)")
    return when.timestamp()


def _headers(r: Any) -> dict[str, str]:
    return {k: printable(v) for k, v in r.headers or () if k != UNREADABLE_HEADER}


async def list_dead_letters(bootstrap: str, topic: str) -> int:
    """Print each dead letter of ``topic``: where it sat, why, and its key and id.

    Every byte from the record is escaped: a dead letter is what some producer
    wrote, and it reaches the operator's terminal.
    """
    _, dlq = _topics(topic)
    count = 0
    async for r in records(bootstrap, dlq):
        headers = _headers(r)
        count += 1
        key = printable(r.key) if r.key is not None else "-"
        line = (
            f"{r.partition}:{r.offset}  key={key}  "
            f"id={headers.get('event_id', '-')}  type={headers.get('type', '-')}  "
            f"attempts={headers.get('dlq.attempts', '?')}  "
            f"from={headers.get(HEADER_TOPIC, '?')}[{headers.get(HEADER_PARTITION, '?')}]"
            f"@{headers.get(HEADER_OFFSET, '?')}\n    error: {headers.get(HEADER_ERROR, '?')}"
        )
        if HEADER_CUT in headers:
            line += f"\n    cut: a stub for a record of {headers[HEADER_CUT]} bytes, read it there"
        print(line)
    print(f"{count} dead letter(s) on {dlq}")
    return 0


@dataclass(frozen=True)
class Choice:
    """Which dead letters a replay takes: by id (event id or P:OFFSET) or since when."""

    ids: frozenset[str] = frozenset()
    since: float | None = None

    def __post_init__(self) -> None:
        if not self.ids and self.since is None:
            raise ValueError("choose what to replay: --id EVENT_ID, --id P:OFFSET or --since")

    def takes(self, r: Any, event_id: str) -> bool:
        """Whether dead letter ``r`` (whose event id is ``event_id``) is chosen."""
        if self.ids and event_id not in self.ids and f"{r.partition}:{r.offset}" not in self.ids:
            return False
        return self.since is None or r.timestamp / 1000 >= self.since


@dataclass
class Replayed:
    """What a replay did, each line of it for the operator."""

    sent: int = 0
    lines: list[str] = field(default_factory=list)

    def say(self, line: str) -> None:
        self.lines.append(line)


def _age_s(r: Any, headers: dict[str, bytes], now: float) -> float:
    """How old the message is: since the source record was written (or, failing it, parked)."""
    stamps = [r.timestamp]
    try:
        stamps.append(int(headers[HEADER_TIMESTAMP]))
    except (KeyError, ValueError):
        pass
    return now - min(s for s in stamps if s is not None and s >= 0) / 1000


def _marks(dlq: str, r: Any, event_id: str) -> list[str]:
    """The replay marks of a dead letter: where it is parked, and the message's event id.

    The id's mark is what stops a replayed message that was dead-lettered again
    (a new dead letter, elsewhere) from being replayed by the next run too.
    """
    marks = [f"{REPLAYED_PREFIX}{dlq}:{r.partition}:{r.offset}"]
    if event_id:
        marks.append(f"{REPLAYED_PREFIX}{dlq}:event:{event_id}")
    return marks


async def _claim(redis: Any, marks: list[str], now: float, ttl: int) -> bool:
    """Set every mark not set yet; True when none was (SET NX: two runs claim once)."""
    claimed = [bool(await redis.set(m, f"{int(now)}", nx=True, ex=ttl)) for m in marks]
    return all(claimed)


async def replay_dead_letters(
    bootstrap: str,
    redis: Any,
    topic: str,
    choice: Choice,
    *,
    retention_s: float,
    clock: Callable[[], float] = time.time,
) -> Replayed:
    """Re-send the chosen dead letters of ``topic`` that are young enough and not replayed yet.

    ``redis`` keeps marks of what was re-sent (``SET NX``, so two replays at once
    send it once), for the retention and a margin: past that the message is
    refused as too old anyway.
    """
    source, dlq = _topics(topic)
    producer = new_producer(bootstrap, acks="all")
    await producer.start()
    done = Replayed()
    ttl = math.ceil(retention_s) + REPLAYED_MARGIN_S
    try:
        async for r in records(bootstrap, dlq):
            raw = {k: bytes(v or b"") for k, v in r.headers or ()}
            event_id = raw.get("event_id", b"").decode(errors="replace")
            if not choice.takes(r, event_id):
                continue
            where = f"{r.partition}:{r.offset} (id {printable(event_id) or '-'})"
            if HEADER_CUT in raw:
                done.say(f"skipped {where}: a stub, the original is not in the dead letter")
                continue
            age = _age_s(r, raw, clock())
            if age > retention_s:
                done.say(
                    f"refused {where}: {age:.0f} s old, older than the retention "
                    f"({retention_s:.0f} s): its order may be forgotten and would run again"
                )
                continue
            if not await _claim(redis, _marks(dlq, r, event_id), clock(), ttl):
                done.say(f"skipped {where}: replayed before")
                continue
            headers = [
                (k, v)
                for k, v in r.headers or ()
                if not k.startswith(DLQ_PREFIX) and k != UNREADABLE_HEADER
            ]
            try:
                await producer.send_and_wait(source, r.value, key=r.key, headers=headers)
            except BaseException:
                await redis.delete(*_marks(dlq, r, event_id))  # not sent: a later run may
                raise
            done.sent += 1
            done.say(f"replayed {where}")
    finally:
        await producer.stop()
    return done
