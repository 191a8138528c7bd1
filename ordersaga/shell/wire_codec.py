"""aiokafka's requests and responses, written and read by code compiled from their schemas.

aiokafka encodes every request and decodes every response through generic
descriptions (``aiokafka.protocol.types``): a Python call per field and per
array element, each reading a few bytes from a ``BytesIO`` or joining a few.
A fetch response of eight partitions is hundreds of such calls, and a profile
of the orders worker under load (``cProfile`` on process time; BENCHMARKS.md,
"Issue 21, eighth steps") put 13% of its CPU in them, more than the saga's
own rules.

Here each struct's schema becomes, on its first use, one straight-line Python
function: one ``struct`` call per run of fixed-width fields, offsets into the
buffer instead of a stream, loops only where the schema has arrays. What it
writes and reads is aiokafka's own wire format, byte for byte and value for
value: ``tests/unit/test_wire_codec.py`` compares both on generated values of
every struct aiokafka declares, truncated buffers included. A schema holding
a type not known here keeps aiokafka's code.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from io import BytesIO
from typing import Any

from aiokafka.protocol import types as t
from aiokafka.protocol.struct import Struct

_FIXED: dict[Any, str] = {
    t.Int8: "b",
    t.Int16: "h",
    t.Int32: "i",
    t.UInt32: "I",
    t.Int64: "q",
    t.Float64: "d",
    t.Boolean: "?",
}
_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")


class Unsupported(Exception):
    """A schema holds a type this module does not compile."""


def _uvarint(buf: Any, pos: int, max_shift: int = 28) -> tuple[int, int]:
    # As aiokafka's UnsignedVarInt32.decode (VarInt64's with max_shift 63).
    value = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        if not byte & 0x80:
            break
        value |= (byte & 0x7F) << shift
        shift += 7
        if shift > max_shift:
            raise ValueError(f"Invalid value {value}")
    return value | (byte << shift), pos


def _varint32(buf: Any, pos: int) -> tuple[int, int]:
    value, pos = _uvarint(buf, pos)
    return (value >> 1) ^ -(value & 1), pos


def _varint64(buf: Any, pos: int) -> tuple[int, int]:
    value, pos = _uvarint(buf, pos, 63)
    return (value >> 1) ^ -(value & 1), pos


def _tagged_fields(buf: Any, pos: int) -> tuple[dict[int, bytes], int]:
    # As aiokafka's TaggedFields.decode.
    count, pos = _uvarint(buf, pos)
    fields: dict[int, bytes] = {}
    previous = -1
    for _ in range(count):
        tag, pos = _uvarint(buf, pos)
        if tag <= previous:
            raise ValueError(f"Invalid or out-of-order tag {tag}")
        previous = tag
        size, pos = _uvarint(buf, pos)
        fields[tag] = bytes(buf[pos : pos + size])
        pos += size
    return fields, pos


class _Source:
    """Python source being generated, with the constants it refers to."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.names: dict[str, Any] = {
            "_uvarint": _uvarint,
            "_varint32": _varint32,
            "_varint64": _varint64,
            "_tagged_fields": _tagged_fields,
            "_i16": _I16.unpack_from,
            "_i32": _I32.unpack_from,
            "_p16": _I16.pack,
            "_p32": _I32.pack,
            "_penc": {
                "u32": t.UnsignedVarInt32.encode,
                "v32": t.VarInt32.encode,
                "v64": t.VarInt64.encode,
                "tags": t.TaggedFields.encode,
            },
        }
        self._count = 0

    def var(self) -> str:
        self._count += 1
        return f"v{self._count}"

    def const(self, value: Any) -> str:
        name = f"_c{len(self.names)}"
        self.names[name] = value
        return name

    def line(self, depth: int, text: str) -> None:
        self.lines.append("    " * depth + text)

    def function(self, name: str, args: str) -> Callable[..., Any]:
        source = f"def {name}({args}):\n" + "\n".join(self.lines) + "\n"
        namespace = dict(self.names)
        exec(compile(source, f"<ordersaga.wire_codec {name}>", "exec"), namespace)
        function: Callable[..., Any] = namespace[name]
        return function


def _is_fixed(field: Any) -> bool:
    return isinstance(field, type) and field in _FIXED


# ------------------------------------------------------------------ decoding


def _decode_fields(src: _Source, fields: tuple[Any, ...], depth: int) -> list[str]:
    """Code reading ``fields`` in order from ``buf`` at ``pos``; the variables holding them."""
    names: list[str] = []
    i = 0
    while i < len(fields):
        if _is_fixed(fields[i]):
            j = i
            while j < len(fields) and _is_fixed(fields[j]):
                j += 1
            layout = struct.Struct(">" + "".join(_FIXED[f] for f in fields[i:j]))
            values = [src.var() for _ in range(i, j)]
            src.line(depth, f"{', '.join(values)}, = {src.const(layout.unpack_from)}(buf, pos)")
            src.line(depth, f"pos += {layout.size}")
            names += values
            i = j
        else:
            names.append(_decode_field(src, fields[i], depth))
            i += 1
    return names


def _decode_sized(src: _Source, depth: int, out: str, length: str | None, what: str) -> None:
    """Code reading a length (``length``'s int, or a compact varint) and, in an ``else``
    block the caller completes, checking that ``end = pos + n`` is within the buffer."""
    if length is not None:
        size = 2 if length == "_i16" else 4
        src.line(depth, f"n, = {length}(buf, pos)")
        src.line(depth, f"pos += {size}")
    else:
        src.line(depth, "n, pos = _uvarint(buf, pos)")
        src.line(depth, "n -= 1")
    src.line(depth, f"if n < 0: {out} = None")
    src.line(depth, "else:")
    src.line(depth + 1, "end = pos + n")
    src.line(depth + 1, f"if end > len(buf): raise ValueError('Buffer underrun decoding {what}')")


def _decode_field(src: _Source, field: Any, depth: int) -> str:
    out = src.var()
    kind = type(field)
    if _is_fixed(field):
        return _decode_fields(src, (field,), depth)[0]
    if kind is t.Schema:
        values = _decode_fields(src, field.fields, depth)
        src.line(depth, f"{out} = ({''.join(v + ', ' for v in values)})")
    elif kind in (t.String, t.CompactString):
        _decode_sized(src, depth, out, "_i16" if kind is t.String else None, "string")
        src.line(depth + 1, f"{out} = str(buf[pos:end], {field.encoding!r})")
        src.line(depth + 1, "pos = end")
    elif field is t.Bytes or field is t.CompactBytes:
        _decode_sized(src, depth, out, "_i32" if field is t.Bytes else None, "Bytes")
        src.line(depth + 1, f"{out} = bytes(buf[pos:end])")
        src.line(depth + 1, "pos = end")
    elif kind in (t.Array, t.CompactArray):
        count = src.var()
        if kind is t.Array:
            src.line(depth, f"{count}, = _i32(buf, pos)")
            src.line(depth, "pos += 4")
        else:
            src.line(depth, f"{count}, pos = _uvarint(buf, pos)")
            src.line(depth, f"{count} -= 1")
        src.line(depth, f"if {count} == -1: {out} = None")
        src.line(depth, "else:")
        src.line(depth + 1, f"{out} = []")
        src.line(depth + 1, f"for _ in range({count}):")
        item = _decode_field(src, field.array_of, depth + 2)
        src.line(depth + 2, f"{out}.append({item})")
    elif field is t.UnsignedVarInt32:
        src.line(depth, f"{out}, pos = _uvarint(buf, pos)")
    elif field is t.VarInt32:
        src.line(depth, f"{out}, pos = _varint32(buf, pos)")
    elif field is t.VarInt64:
        src.line(depth, f"{out}, pos = _varint64(buf, pos)")
    elif field is t.TaggedFields:
        src.line(depth, f"{out}, pos = _tagged_fields(buf, pos)")
    else:
        raise Unsupported(repr(field))
    return out


def compile_decoder(schema: t.Schema) -> Callable[[Any, int], tuple[list[Any], int]]:
    """``(buffer, position) -> (field values, position after)`` for ``schema``."""
    src = _Source()
    values = _decode_fields(src, schema.fields, 1)
    src.line(1, f"return [{', '.join(values)}], pos")
    return src.function("decode", "buf, pos")


# ------------------------------------------------------------------ encoding


def _encode_fields(src: _Source, fields: tuple[Any, ...], values: list[str], depth: int) -> None:
    """Code appending ``values``, encoded as ``fields``, to the parts being joined."""
    i = 0
    while i < len(fields):
        if _is_fixed(fields[i]):
            j = i
            while j < len(fields) and _is_fixed(fields[j]):
                j += 1
            layout = struct.Struct(">" + "".join(_FIXED[f] for f in fields[i:j]))
            src.line(depth, f"add({src.const(layout.pack)}({', '.join(values[i:j])}))")
            i = j
        else:
            _encode_field(src, fields[i], values[i], depth)
            i += 1


def _encode_field(src: _Source, field: Any, value: str, depth: int) -> None:
    kind = type(field)
    if _is_fixed(field):
        _encode_fields(src, (field,), [value], depth)
    elif kind is t.Schema:
        n = len(field.fields)
        src.line(depth, f"if len({value}) != {n}:")
        src.line(depth + 1, "raise ValueError('Item field count does not match Schema')")
        items = [src.var() for _ in range(n)]
        if items:
            src.line(depth, f"{', '.join(items)}, = {value}")
        _encode_fields(src, field.fields, items, depth)
    elif kind in (t.String, t.CompactString):
        null = "_p16(-1)" if kind is t.String else "b'\\x00'"
        encoded = src.var()
        src.line(depth, f"if {value} is None: add({null})")
        src.line(depth, "else:")
        src.line(depth + 1, f"{encoded} = str({value}).encode({field.encoding!r})")
        if kind is t.String:
            src.line(depth + 1, f"add(_p16(len({encoded})))")
        else:
            src.line(depth + 1, f"add(_penc['u32'](len({encoded}) + 1))")
        src.line(depth + 1, f"add({encoded})")
    elif field is t.Bytes or field is t.CompactBytes:
        if field is t.Bytes:
            src.line(depth, f"if {value} is None: add(_p32(-1))")
            src.line(depth, f"else: add(_p32(len({value}))); add({value})")
        else:
            src.line(depth, f"if {value} is None: add(b'\\x00')")
            src.line(depth, f"else: add(_penc['u32'](len({value}) + 1)); add({value})")
    elif kind in (t.Array, t.CompactArray):
        if kind is t.Array:
            src.line(depth, f"if {value} is None: add(_p32(-1))")
            src.line(depth, "else:")
            src.line(depth + 1, f"add(_p32(len({value})))")
        else:
            src.line(depth, f"if {value} is None: add(b'\\x00')")
            src.line(depth, "else:")
            src.line(depth + 1, f"add(_penc['u32'](len({value}) + 1))")
        item = src.var()
        src.line(depth + 1, f"for {item} in {value}:")
        _encode_field(src, field.array_of, item, depth + 2)
    elif field is t.UnsignedVarInt32:
        src.line(depth, f"add(_penc['u32']({value}))")
    elif field is t.VarInt32:
        src.line(depth, f"add(_penc['v32']({value}))")
    elif field is t.VarInt64:
        src.line(depth, f"add(_penc['v64']({value}))")
    elif field is t.TaggedFields:
        src.line(depth, f"add(_penc['tags']({value}))")
    else:
        raise Unsupported(repr(field))


def compile_encoder(schema: t.Schema) -> Callable[[dict[str, Any]], bytes]:
    """``(a struct's __dict__) -> bytes`` for ``schema``, as ``Struct.encode`` writes them."""
    src = _Source()
    values = [src.var() for _ in schema.names]
    for name, value in zip(schema.names, values, strict=True):
        src.line(1, f"{value} = fields[{name!r}]")
    src.line(1, "parts = []")
    src.line(1, "add = parts.append")
    _encode_fields(src, schema.fields, values, 1)
    src.line(1, "return b''.join(parts)")
    return src.function("encode", "fields")


# ------------------------------------------------------------------ the patch

_ORIGINAL_DECODE = Struct.__dict__["decode"]
_ORIGINAL_ENCODE = Struct.__dict__["encode"]
_decoders: dict[type[Struct], Callable[[Any, int], tuple[list[Any], int]] | None] = {}
_encoders: dict[type[Struct], Callable[[dict[str, Any]], bytes] | None] = {}


def _decoder_of(cls: type[Struct]) -> Callable[[Any, int], tuple[list[Any], int]] | None:
    try:
        return _decoders[cls]
    except KeyError:
        pass
    try:
        decoder: Callable[[Any, int], tuple[list[Any], int]] | None = compile_decoder(cls.SCHEMA)
    except Unsupported:
        decoder = None
    _decoders[cls] = decoder
    return decoder


def _encoder_of(cls: type[Struct]) -> Callable[[dict[str, Any]], bytes] | None:
    try:
        return _encoders[cls]
    except KeyError:
        pass
    try:
        encoder: Callable[[dict[str, Any]], bytes] | None = compile_encoder(cls.SCHEMA)
    except Unsupported:
        encoder = None
    _encoders[cls] = encoder
    return encoder


def _decode(cls: type[Struct], data: BytesIO | bytes) -> Any:
    decoder = _decoder_of(cls)
    if decoder is None or not isinstance(data, bytes | BytesIO):
        return _ORIGINAL_DECODE.__func__(cls, data)
    try:
        if isinstance(data, bytes):
            values, _ = decoder(data, 0)
        else:
            with data.getbuffer() as view:
                values, end = decoder(view, data.tell())
            data.seek(end)
    except (struct.error, IndexError) as exc:
        # aiokafka reports a short buffer as ValueError too.
        raise ValueError(f"Buffer underrun decoding {cls.__name__}: {exc}") from exc
    return cls(*values)


def _encode(self: Struct) -> bytes:
    encoder = _encoder_of(type(self))
    if encoder is None:
        encoded: bytes = _ORIGINAL_ENCODE(self)
        return encoded
    try:
        return encoder(self.__dict__)
    except struct.error as exc:
        raise ValueError(f"cannot encode {type(self).__name__}: {exc}") from exc


def compile_protocol_codecs() -> None:
    """Encode and decode every aiokafka struct with code compiled from its schema."""
    if getattr(Struct, "_ordersaga_compiled", False):
        return
    Struct.decode = classmethod(_decode)
    Struct.encode = _encode
    Struct._ordersaga_compiled = True


def original_codecs() -> tuple[Callable[..., Any], Callable[..., Any]]:
    """aiokafka's own ``Struct.decode`` (a function of the class) and ``Struct.encode``."""
    return _ORIGINAL_DECODE.__func__, _ORIGINAL_ENCODE
