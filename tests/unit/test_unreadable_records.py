"""ordersaga.shell.unreadable: what aiokafka's fetcher makes of records it cannot parse.

Each batch is real record-batch bytes (aiokafka's own builder), read by
aiokafka's own ``PartitionRecords`` (the code the consumer runs) over
:class:`SafeMemoryRecords`; the pure-Python record reader is covered too.
"""

from __future__ import annotations

import struct

import pytest
from aiokafka.consumer.fetcher import PartitionRecords
from aiokafka.record.default_records import _DefaultRecordBatchBuilderPy, _DefaultRecordBatchPy
from aiokafka.record.util import calc_crc32c
from aiokafka.structs import TopicPartition

from ordersaga.shell.unreadable import (
    UNREADABLE_HEADER,
    SafeMemoryRecords,
    _SafeBatch,
    raw_header_key,
    unreadable_reason,
    why_unreadable,
)

TP = TopicPartition("orders.commands", 0)
BAD = b"\xff\x1b[31mk"


class RawKey(str):
    """A header key written as ``raw`` bytes (aiokafka's Python builder calls encode)."""

    raw: bytes

    def __new__(cls, raw: bytes) -> RawKey:
        key = super().__new__(cls, raw.decode("latin-1"))
        key.raw = raw
        return key

    def encode(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        return self.raw


def batch(base: int, records: list[tuple[bytes, list], ...], compression: int = 0) -> bytes:  # type: ignore[type-arg]
    builder = _DefaultRecordBatchBuilderPy(
        magic=2,
        compression_type=compression,
        is_transactional=0,
        producer_id=-1,
        producer_epoch=-1,
        base_sequence=-1,
        batch_size=1 << 20,
    )
    for i, (key, headers) in enumerate(records):
        builder.append(i, None, key, b"value-" + key, headers)
    data = bytearray(builder.build())
    data[0:8] = struct.pack(">q", base)
    return bytes(data)


def read(data: bytes, fetch_offset: int = 0) -> tuple[list, int]:  # type: ignore[type-arg]
    parsed = PartitionRecords(TP, SafeMemoryRecords(data), [], fetch_offset, None, None, True, 0)
    return list(parsed), parsed.next_fetch_offset


def poisoned(compression: int = 0) -> bytes:
    return batch(
        10,
        [(b"a", [("type", b"X")]), (b"b", [(RawKey(BAD), b"v"), ("ok", b"1")]), (b"c", [])],
        compression,
    ) + batch(13, [(b"d", [])])


@pytest.mark.parametrize("compression", [0, 1], ids=["plain", "gzip"])
def test_a_header_key_that_is_not_utf8_comes_as_a_record_that_says_why(compression: int) -> None:
    records, next_offset = read(poisoned(compression), fetch_offset=10)
    assert [(r.offset, r.key) for r in records] == [(10, b"a"), (11, b"b"), (12, b"c"), (13, b"d")]
    assert next_offset == 14
    bad = records[1]
    assert unreadable_reason(bad.headers) == "header key is not UTF-8: \\xff\\x1b[31mk"
    assert bad.value == b"value-b"
    assert [raw_header_key(k) for k, _ in bad.headers[:2]] == [BAD, b"ok"]
    assert why_unreadable(bad.key, list(bad.headers)) == (
        "record",
        "header key is not UTF-8: \\xff\\x1b[31mk",
    )
    assert [unreadable_reason(r.headers) for r in (records[0], records[2], records[3])] == [
        None
    ] * 3


def test_records_before_the_fetch_offset_are_not_handed_on_again() -> None:
    records, next_offset = read(poisoned(), fetch_offset=12)
    assert [r.offset for r in records] == [12, 13]
    assert next_offset == 14


def test_the_pure_python_reader_fails_the_same_and_is_covered_the_same() -> None:
    raw = batch(0, [(b"a", []), (b"b", [(RawKey(BAD), b"v")])])
    with pytest.raises(Exception, match=r"utf-8|Found invalid record"):
        list(_DefaultRecordBatchPy(raw))
    records = list(_SafeBatch(_DefaultRecordBatchPy(raw), raw))
    assert [r.offset for r in records] == [0, 1]
    assert unreadable_reason(records[1].headers) == "header key is not UTF-8: \\xff\\x1b[31mk"


def test_a_batch_failing_its_crc_is_one_unreadable_record_and_the_position_moves_past_it() -> None:
    first = bytearray(batch(0, [(b"a", []), (b"b", [])]))
    first[-2] ^= 0xFF  # inside the last record's value: the CRC no longer matches
    records, next_offset = read(bytes(first) + batch(2, [(b"c", [])]))
    assert [r.offset for r in records] == [1, 2]
    assert records[0].value == bytes(first) and records[0].key is None
    assert unreadable_reason(records[0].headers) == "offsets 0..1: record batch fails its CRC check"
    assert unreadable_reason(records[1].headers) is None
    assert next_offset == 3


def test_a_batch_whose_records_cannot_be_framed_is_one_unreadable_record() -> None:
    raw = bytearray(batch(0, [(b"a", []), (b"b", [])]))
    # The first record's key length (a zigzag varint after the record's length,
    # attributes, timestamp and offset deltas) made larger than the record, with a
    # CRC that matches: a producer's bug, not the network's.
    raw[61 + 4] = 0x7E
    struct.pack_into(">I", raw, 17, calc_crc32c(bytes(raw[21:])))
    records, next_offset = read(bytes(raw) + batch(2, [(b"c", [])]))
    assert [r.offset for r in records] == [1, 2]
    reason = unreadable_reason(records[0].headers)
    assert reason is not None and reason.startswith("offsets 0..1: record batch cannot be parsed")
    assert records[0].value == bytes(raw)
    assert next_offset == 3


def test_the_marker_cannot_come_from_the_wire() -> None:
    # What surrogateescape makes of bytes is U+DC80..U+DCFF; the marker starts with U+D800.
    assert not any(
        ch in bytes(range(256)).decode("utf-8", "surrogateescape") for ch in UNREADABLE_HEADER[:1]
    )
    assert why_unreadable(b"\xfe\xff", []) == ("key", "key is not UTF-8: \\xfe\\xff")
    assert why_unreadable(b"ord-1", [("type", b"PlaceOrder")]) is None
