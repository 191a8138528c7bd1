"""The compiled protocol codecs write and read exactly what aiokafka's own code does.

Every struct aiokafka declares gets generated values; each is encoded by both,
and the bytes (the whole, a prefix and a buffer with bytes around it) decoded
by both. Any difference, in bytes, values, position or failure, fails.
"""

from __future__ import annotations

import importlib
import inspect
import io
import pkgutil
import struct
from typing import Any

import aiokafka.protocol
import pytest
from aiokafka.protocol import types as t
from aiokafka.protocol.struct import Struct
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ordersaga.shell import wire_codec

ORIGINAL_DECODE, ORIGINAL_ENCODE = wire_codec.original_codecs()


def _structs() -> list[type[Struct]]:
    found: dict[str, type[Struct]] = {}
    for module in pkgutil.iter_modules(aiokafka.protocol.__path__):
        loaded = importlib.import_module(f"aiokafka.protocol.{module.name}")
        for value in vars(loaded).values():
            if (
                isinstance(value, type)
                and issubclass(value, Struct)
                and value is not Struct
                and not inspect.isabstract(value)
                # Their own codecs (the legacy message format): not patched.
                and "decode" not in vars(value)
                and "encode" not in vars(value)
            ):
                found[f"{value.__module__}.{value.__name__}"] = value
    return [found[name] for name in sorted(found)]


STRUCTS = _structs()
_INTS = {
    t.Int8: 7,
    t.Int16: 15,
    t.Int32: 31,
    t.Int64: 63,
}


def _values(field: Any) -> st.SearchStrategy[Any]:
    if field in _INTS:
        bits = _INTS[field]
        return st.integers(-(2**bits), 2**bits - 1)
    if field is t.UInt32:
        return st.integers(0, 2**32 - 1)
    if field is t.Float64:
        return st.floats(allow_nan=False)
    if field is t.Boolean:
        return st.booleans()
    if field is t.UnsignedVarInt32:
        return st.integers(0, 2**31 - 1)
    if field is t.VarInt32:
        return st.integers(-(2**31), 2**31 - 1)
    if field is t.VarInt64:
        # aiokafka's own VarInt64.encode garbles values past 7 bits.
        return st.integers(-64, 63)
    if field is t.TaggedFields:
        # aiokafka writes tagged fields without their sizes: only empty ones round-trip.
        return st.just({})
    if type(field) in (t.String, t.CompactString):
        return st.none() | st.text(max_size=12)
    if field in (t.Bytes, t.CompactBytes):
        return st.none() | st.binary(max_size=12)
    if type(field) in (t.Array, t.CompactArray):
        return st.none() | st.lists(_values(field.array_of), max_size=3)
    if type(field) is t.Schema:
        return st.tuples(*(_values(f) for f in field.fields))
    raise wire_codec.Unsupported(repr(field))


def _outcome(decode: Any, cls: type[Struct], data: bytes, start: int = 0) -> Any:
    buffer = io.BytesIO(data)
    buffer.seek(start)
    try:
        decoded = decode(cls, buffer)
    except (ValueError, struct.error, IndexError, TypeError) as exc:
        # Request headers have their own __init__: neither side decodes them.
        return ("error", type(exc) is TypeError)
    return ("ok", decoded.__dict__, buffer.tell())


def test_every_struct_aiokafka_uses_on_the_hot_path_compiles() -> None:
    names = {cls.__name__ for cls in STRUCTS}
    for hot in ("FetchResponse_v11", "FetchRequest_v11", "ProduceRequest_v8", "ProduceResponse_v8"):
        assert hot in names
    unsupported = []
    for cls in STRUCTS:
        try:
            wire_codec.compile_decoder(cls.SCHEMA)
            wire_codec.compile_encoder(cls.SCHEMA)
        except wire_codec.Unsupported:
            unsupported.append(cls.__name__)
    assert unsupported == []


@pytest.mark.parametrize("cls", STRUCTS, ids=lambda cls: f"{cls.__module__[18:]}.{cls.__name__}")
@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_compiled_codecs_match_aiokafka(cls: type[Struct], data: st.DataObject) -> None:
    values = data.draw(st.tuples(*(_values(f) for f in cls.SCHEMA.fields)))
    instance = cls.__new__(cls)
    instance.__dict__.update(zip(cls.SCHEMA.names, values, strict=True))
    try:
        expected = ORIGINAL_ENCODE(instance)
    except ValueError:
        with pytest.raises(ValueError):
            wire_codec.compile_encoder(cls.SCHEMA)(instance.__dict__)
        return
    encoder = wire_codec.compile_encoder(cls.SCHEMA)
    assert encoder(instance.__dict__) == expected

    wire_codec.compile_protocol_codecs()
    compiled_decode = Struct.decode.__func__  # type: ignore[attr-defined]
    assert _outcome(compiled_decode, cls, expected) == _outcome(ORIGINAL_DECODE, cls, expected)
    # Read from the middle of a buffer, as a response is after its header.
    padded = b"\x07" * 3 + expected + b"\x09" * 2
    assert _outcome(compiled_decode, cls, padded, 3) == _outcome(ORIGINAL_DECODE, cls, padded, 3)
    # A truncated buffer fails in both (or, for a prefix that happens to parse, reads the same).
    cut = data.draw(st.integers(0, max(0, len(expected) - 1)))
    short = expected[:cut]
    assert _outcome(compiled_decode, cls, short) == _outcome(ORIGINAL_DECODE, cls, short)
    # Bytes given directly, not in a BytesIO.
    if _outcome(ORIGINAL_DECODE, cls, expected)[0] == "ok":
        assert compiled_decode(cls, expected) == ORIGINAL_DECODE(cls, expected)


def test_the_patch_is_what_aiokafka_calls() -> None:
    from aiokafka.protocol.fetch import FetchResponse_v11
    from aiokafka.protocol.produce import ProduceRequest_v8

    wire_codec.compile_protocol_codecs()
    request = ProduceRequest_v8.__new__(ProduceRequest_v8)
    request.__dict__.update(
        transactional_id=None, required_acks=-1, timeout=30000, topics=[("t", [(0, b"x")])]
    )
    assert request.encode() == ORIGINAL_ENCODE(request)
    assert FetchResponse_v11.decode(b"\x00" * 14).__dict__ == {
        "throttle_time_ms": 0,
        "error_code": 0,
        "session_id": 0,
        "topics": [],
    }
