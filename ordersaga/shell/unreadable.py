"""Records aiokafka cannot parse become records a consumer can dead-letter.

aiokafka decodes every header key as strict UTF-8 while it parses a fetched
batch, in its C extension and in its Python fallback alike: one record with a
header key that is not UTF-8 raised out of the fetch, before any handler saw
it, so the worker exited, restarted at the same uncommitted offset and exited
again, and its other partitions stopped with it (issue 19, finding 3).

:func:`read_unreadable_records` swaps the ``MemoryRecords`` the fetcher builds
for one that keeps each batch's bytes. A batch that parses is read by aiokafka
as before (its C extension, untouched); one that raises is read again here:

* a record whose header keys are not UTF-8 keeps them, decoded with
  ``surrogateescape`` (so the original bytes come back with ``raw_header_key``),
  and gains an :data:`UNREADABLE_HEADER` naming why;
* what cannot be parsed at all (a bad CRC, a broken structure, an unknown
  format) becomes one record at the first offset not yet read, carrying the
  rest of the batch's bytes as its value and the reason in the same header,
  and the fetch position moves past the batch.

Either way the consumer gets a record at that offset, so the offset is acked
and committed like any other, and ``Node.consume`` dead-letters it.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ordersaga.shell.printable import printable

# A key strict UTF-8 decoding never yields (a lone high surrogate) and that
# ``surrogateescape`` never yields either (it maps bytes to U+DC80..U+DCFF):
# no record on the wire can carry it, only one this module rewrote.
UNREADABLE_HEADER = "\ud800ordersaga.unreadable"

# A batch: base offset (int64), length (int32), then ``length`` bytes.
_LOG_OVERHEAD = 12
_MAGIC_OFFSET = 16
_LAST_OFFSET_DELTA_OFFSET = 23
_REASON_LIMIT = 500


@dataclass(frozen=True)
class RewrittenRecord:
    """A record as aiokafka's own record objects expose it, read leniently."""

    offset: int
    timestamp: int
    timestamp_type: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]]
    checksum: None = None


def unreadable_reason(headers: Iterable[tuple[str, Any]] | None) -> str | None:
    """Why this record could not be read as it came, or None when it could."""
    for key, value in headers or ():
        if key == UNREADABLE_HEADER:
            return bytes(value or b"").decode("utf-8", "replace")
    return None


def raw_headers(headers: Any) -> list[tuple[str, bytes | None]]:
    """An event's headers as pairs, values as they came (None stays None)."""
    if not headers:
        return []
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    return [(k, bytes(v) if v is not None else None) for k, v in pairs]


def why_unreadable(key: Any, headers: list[tuple[str, bytes | None]]) -> tuple[str, str] | None:
    """Which layer could not read a record and why, before its envelope is even tried.

    ``record``: aiokafka could not parse it (the marker header says why);
    ``key``: the key is not UTF-8, which every key of ours is (Faust, told the
    keys are str, raised KeyDecodeError in its own loop and restarted the agent).
    """
    reason = unreadable_reason(headers)
    if reason is not None:
        return "record", reason
    if isinstance(key, bytes | bytearray):
        try:
            bytes(key).decode("utf-8")
        except UnicodeDecodeError:
            return "key", f"key is not UTF-8: {printable(bytes(key)[:100])}"
    return None


def raw_header_key(key: str) -> bytes:
    """A header key's bytes as they were on the wire (surrogate escapes undone)."""
    return key.encode("utf-8", "surrogateescape")


def printable_header_key(key: str) -> str:
    """A header key any producer can write back: bytes not UTF-8 and controls as escapes."""
    return printable(raw_header_key(key))


def _reason(text: str) -> bytes:
    return printable(text[:_REASON_LIMIT]).encode()


def _read_records(batch: Any, first: int) -> Iterator[RewrittenRecord]:
    """The records of a v2 batch from offset ``first`` on, header keys kept as bytes.

    ``batch`` is aiokafka's pure-Python batch (it decompresses); its record
    framing is read here because its own reader decodes header keys strictly.
    """
    # The pure-Python decoder: the C one reads past the buffer's end, and these are
    # exactly the bytes that may end early (a segfault, seen in the unit tests).
    from aiokafka.record.util import decode_varint_py as decode_varint

    batch._maybe_uncompress()
    buffer, pos = batch._buffer, batch._pos
    base, first_ts = batch.base_offset, batch.first_timestamp
    log_append = batch.timestamp_type == batch.LOG_APPEND_TIME
    for _ in range(batch._num_records):
        length, pos = decode_varint(buffer, pos)
        end = pos + length
        _, pos = decode_varint(buffer, pos)  # attributes: unused in v2 records
        ts_delta, pos = decode_varint(buffer, pos)
        offset_delta, pos = decode_varint(buffer, pos)
        fields: list[bytes | None] = []
        for _field in ("key", "value"):
            size, pos = decode_varint(buffer, pos)
            fields.append(bytes(buffer[pos : pos + size]) if size >= 0 else None)
            pos += max(size, 0)
        count, pos = decode_varint(buffer, pos)
        headers: list[tuple[str, bytes | None]] = []
        bad_keys: list[str] = []
        for _header in range(count):
            size, pos = decode_varint(buffer, pos)
            if size < 0:
                raise ValueError(f"negative header key size {size}")
            key_bytes = bytes(buffer[pos : pos + size])
            pos += size
            try:
                key = key_bytes.decode("utf-8")
            except UnicodeDecodeError:
                key = key_bytes.decode("utf-8", "surrogateescape")
                bad_keys.append(printable_header_key(key))
            size, pos = decode_varint(buffer, pos)
            headers.append((key, bytes(buffer[pos : pos + size]) if size >= 0 else None))
            pos += max(size, 0)
        if pos != end:
            raise ValueError(f"record of {length} bytes read as {length + pos - end}")
        offset = base + offset_delta
        if offset < first:
            continue
        if bad_keys:
            reason = f"header key is not UTF-8: {', '.join(bad_keys)}"
            headers.append((UNREADABLE_HEADER, _reason(reason)))
        yield RewrittenRecord(
            offset=offset,
            timestamp=batch.max_timestamp if log_append else first_ts + ts_delta,
            timestamp_type=batch.timestamp_type,
            key=fields[0],
            value=fields[1],
            headers=headers,
        )


class _SafeBatch:
    """One fetched batch: aiokafka's own reading, and this module's where it fails."""

    def __init__(self, inner: Any, raw: memoryview | bytes) -> None:
        self._inner = inner
        # A view: copied only in the rare case it is read again.
        self._raw = raw
        self._crc_ok: bool | None = None
        self._iterator: Iterator[Any] | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def validate_crc(self) -> bool:
        # A bad CRC is reported as an unreadable record (below), not raised: raised,
        # it is fetched and raised again for ever.
        self._crc_ok = bool(self._inner.validate_crc())
        return True

    def __iter__(self) -> _SafeBatch:
        self._iterator = self._records()
        return self

    def __next__(self) -> Any:
        if self._iterator is None:
            self._iterator = self._records()
        return next(self._iterator)

    def _records(self) -> Iterator[Any]:
        next_offset = self._inner.base_offset
        if self._crc_ok is False:
            yield self._unreadable(next_offset, "record batch fails its CRC check")
            return
        try:
            for record in self._inner:
                next_offset = record.offset + 1
                yield record
            return
        except Exception as exc:
            failure = f"{type(exc).__name__}: {exc}"
        try:
            from aiokafka.record.default_records import _DefaultRecordBatchPy

            if self._inner.magic != 2:
                raise ValueError(f"message format v{self._inner.magic}")
            rest = list(_read_records(_DefaultRecordBatchPy(self._raw), next_offset))
        except Exception as exc:
            yield self._unreadable(
                next_offset, f"record batch cannot be parsed: {failure}; {exc}".strip()
            )
            return
        yield from rest

    def _unreadable(self, first: int, reason: str) -> RewrittenRecord:
        # At the batch's last offset: the fetcher drops a record below the offset it
        # fetched from, and it fetched from somewhere inside this batch. The value is
        # the whole batch's bytes: what an operator needs to see what was sent.
        last = self._inner.next_offset - 1
        return RewrittenRecord(
            offset=last,
            timestamp=_field(self._inner, "max_timestamp", -1),
            timestamp_type=_field(self._inner, "timestamp_type", 0),
            key=None,
            value=bytes(self._raw),
            headers=[(UNREADABLE_HEADER, _reason(f"offsets {first}..{last}: {reason}"))],
        )


def _field(batch: Any, name: str, default: int) -> int:
    try:
        return int(getattr(batch, name))
    except Exception:
        return default


class SafeMemoryRecords:
    """aiokafka's ``MemoryRecords``, keeping each batch's bytes for a second reading."""

    def __init__(self, data: bytes) -> None:
        from aiokafka.record.memory_records import MemoryRecords

        self._factory = MemoryRecords
        self._data = bytes(data)
        self._inner = MemoryRecords(self._data)
        self._pos = 0

    def size_in_bytes(self) -> int:
        return len(self._data)

    def has_next(self) -> bool:
        return bool(self._inner.has_next())

    def next_batch(self) -> Any:
        start = self._pos
        if len(self._data) - start < _LOG_OVERHEAD:
            return self._inner.next_batch()
        (length,) = struct.unpack_from(">i", self._data, 8 + start)
        end = start + _LOG_OVERHEAD + length
        try:
            inner = self._inner.next_batch()
        except Exception as exc:
            # aiokafka's reader is past repair; the next batches get a fresh one.
            self._pos = end
            self._inner = self._factory(self._data[end:])
            return _BrokenBatch(self._data[start:end], f"{type(exc).__name__}: {exc}")
        if inner is None:
            return None
        self._pos = end
        return _SafeBatch(inner, memoryview(self._data)[start:end])


class _BrokenBatch:
    """A batch aiokafka would not even open: one unreadable record for all of it."""

    is_control_batch = False
    is_transactional = False
    producer_id = None

    def __init__(self, raw: bytes, reason: str) -> None:
        self._raw = raw
        self.base_offset: int = struct.unpack_from(">q", raw, 0)[0]
        last_delta = 0
        if len(raw) >= _LAST_OFFSET_DELTA_OFFSET + 4 and raw[_MAGIC_OFFSET] == 2:
            (last_delta,) = struct.unpack_from(">i", raw, _LAST_OFFSET_DELTA_OFFSET)
        self.next_offset = self.base_offset + max(last_delta, 0) + 1
        self._reason = reason
        self._done = False

    def validate_crc(self) -> bool:
        return True

    def __iter__(self) -> _BrokenBatch:
        return self

    def __next__(self) -> RewrittenRecord:
        if self._done:
            raise StopIteration
        self._done = True
        last = self.next_offset - 1
        reason = f"offsets {self.base_offset}..{last}: batch cannot be opened: {self._reason}"
        return RewrittenRecord(
            offset=last,
            timestamp=-1,
            timestamp_type=0,
            key=None,
            value=self._raw,
            headers=[(UNREADABLE_HEADER, _reason(reason))],
        )
