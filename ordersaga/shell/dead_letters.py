"""What a dead letter carries, and the stub that stands in for one too large to send.

A dead letter is the original record, raw (key, value, headers), plus ``dlq.*``
headers saying why and where it came from. Two things could once lose it:

* a header key that is not UTF-8 (read by ``ordersaga.shell.unreadable`` with its
  bytes kept as surrogate escapes) cannot be written by any producer: it is
  written as printable text, its bytes escaped;
* a record close to the broker's size limit no longer fits the producer's once
  the ``dlq.*`` headers are added, and the send failed (the message was lost
  and the agent restarted). Such a dead letter is cut to a stub naming where
  the original is (topic, partition, offset, size, reason).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import orjson

from ordersaga.shell.printable import printable
from ordersaga.shell.unreadable import UNREADABLE_HEADER, printable_header_key

DLQ_PREFIX = "dlq."
HEADER_ERROR = "dlq.error"
HEADER_TOPIC = "dlq.topic"
HEADER_PARTITION = "dlq.partition"
HEADER_OFFSET = "dlq.offset"
# The source record's timestamp (ms): how old the message is, whenever it is replayed.
HEADER_TIMESTAMP = "dlq.timestamp"
# Set on a stub: the size of the original record it stands in for.
HEADER_CUT = "dlq.cut"
MAX_REASON_BYTES = 1000
# Per record and per header, what a record batch adds around the bytes (varints,
# attributes, timestamps), over-estimated so that an estimate that fits does fit.
RECORD_OVERHEAD = 128
HEADER_OVERHEAD = 16
# Kept below the producer's max_request_size for the batch around the record.
PRODUCER_MARGIN = 16 * 1024


@dataclass(frozen=True)
class DeadLetter:
    """One record ready for the dead-letter topic."""

    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]
    cut: bool
    size: int


def record_size(key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]]) -> int:
    """An upper bound of a record's size in a batch, as a producer counts it."""
    return (
        RECORD_OVERHEAD
        + len(key or b"")
        + len(value or b"")
        + sum(HEADER_OVERHEAD + len(k.encode()) + len(v) for k, v in headers)
    )


def _writable(headers: Iterable[tuple[str, bytes | None]]) -> list[tuple[str, bytes]]:
    """The original headers, as a producer can write them back."""
    kept: list[tuple[str, bytes]] = []
    for key, value in headers:
        if key == UNREADABLE_HEADER:
            continue
        try:
            key.encode()
        except UnicodeEncodeError:  # bytes that were not UTF-8, kept as surrogate escapes
            key = printable_header_key(key)
        kept.append((key, bytes(value) if value is not None else b""))
    return kept


def dead_letter(
    *,
    topic: str,
    partition: int,
    offset: int,
    timestamp_ms: int | None,
    key: bytes | None,
    value: bytes | None,
    headers: Iterable[tuple[str, bytes | None]],
    reason: str,
    attempts: int,
    group: str,
    max_bytes: int,
) -> DeadLetter:
    """The dead letter of one record, or its stub when it would exceed ``max_bytes``."""
    where = [
        (HEADER_ERROR, printable(reason).encode()[:MAX_REASON_BYTES]),
        ("dlq.attempts", str(attempts).encode()),
        (HEADER_TOPIC, topic.encode()),
        (HEADER_PARTITION, str(partition).encode()),
        (HEADER_OFFSET, str(offset).encode()),
        ("dlq.group", group.encode()),
    ]
    if timestamp_ms is not None and timestamp_ms >= 0:
        where.append((HEADER_TIMESTAMP, str(timestamp_ms).encode()))
    original = _writable(headers)
    full = [*original, *where]
    size = record_size(key, value, full)
    if size <= max_bytes:
        return DeadLetter(key=key, value=value, headers=full, cut=False, size=size)
    original_size = record_size(key, value, original)
    stub = {
        "cut": "the original record is too large to dead-letter; read it where it is",
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "size": original_size,
        "reason": printable(reason)[:MAX_REASON_BYTES],
    }
    # The key only if small: a huge key is as likely as a huge value.
    stub_key = key if key is not None and len(key) <= 1024 else None
    stub_headers = [*where, (HEADER_CUT, str(original_size).encode())]
    value = orjson.dumps(stub)
    return DeadLetter(
        key=stub_key,
        value=value,
        headers=stub_headers,
        cut=True,
        size=record_size(stub_key, value, stub_headers),
    )
