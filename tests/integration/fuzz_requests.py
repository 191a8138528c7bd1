"""The hostile fuzzer's bodies: raw JSON text, hostile values, near-valid orders."""

from __future__ import annotations

import json
import string
from copy import deepcopy
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from ordersaga.schemas.bounds import (
    MAX_LINE_QUANTITY,
    MAX_LINES,
    MAX_RESTOCK_QUANTITY,
    MAX_UNIT_PRICE,
    Id,
    Sku,
)
from tests.integration.support import ADDRESS, order_body

# Every example is a real request, so the examples are bounded and there is no
# deadline (a POST /orders waits for the broker's ack). No example database: the
# system under test is new each session, a replayed example would mean little.
# No shrinking: against a live server it took minutes per failure, and each
# failure's message already shows the exact request; the explicit examples of
# test_fuzz_methods_and_paths are the minimal ones.
FUZZ = settings(
    max_examples=200,
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
        HealthCheck.large_base_example,
    ],
)
MAX_BODY_BYTES = 64 * 1024
# The other agent groups' workers answer /health, /ready and /metrics here too.
WORKER_OFFSETS = range(1, 6)
METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE")
SPECIAL_TOKENS = frozenset({"tok_timeout", "tok_gateway_error"})
_ID = TypeAdapter(Id)
_SKU = TypeAdapter(Sku)


# ------------------------------------------------------------------ raw JSON text


@dataclass(frozen=True)
class Raw:
    """JSON text written as is: NaN, 1e400, a lone surrogate escape, deep nesting."""

    text: str


@dataclass(frozen=True)
class Obj:
    """A JSON object as ordered pairs, so a key can be written twice."""

    pairs: tuple[tuple[str, Any], ...]


def dump(value: Any) -> str:
    """JSON text of ``value``; Raw and Obj nodes are written as they are."""
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, Obj):
        return "{" + ",".join(f"{dump_str(k)}:{dump(v)}" for k, v in value.pairs) + "}"
    if isinstance(value, dict):
        return dump(Obj(tuple(value.items())))
    if isinstance(value, list | tuple):
        return "[" + ",".join(dump(v) for v in value) + "]"
    if isinstance(value, str):
        return dump_str(value)
    # json.dumps writes NaN and Infinity for those floats: hostile on purpose.
    return json.dumps(value)


def dump_str(text: str) -> str:
    # Raw UTF-8 where it can be encoded; a lone surrogate can only travel escaped.
    if any(0xD800 <= ord(c) <= 0xDFFF for c in text):
        return json.dumps(text)
    return json.dumps(text, ensure_ascii=False)


def encode(value: Any) -> bytes:
    return dump(value).encode("utf-8")


class _Duplicate(ValueError):
    pass


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _Duplicate(key)
        out[key] = value
    return out


def _no_constant(name: str) -> Any:
    raise ValueError(name)


def strict_json_problem(raw: bytes) -> str | None:
    """Why ``raw`` is not strict JSON (UTF-8, no duplicate keys, no NaN), or None.

    pydantic's JSON parser keeps the last of two equal keys, so it is not enough on
    its own to say a body with a duplicate key must be refused.
    """
    try:
        json.loads(raw.decode("utf-8"), object_pairs_hook=_pairs, parse_constant=_no_constant)
    except _Duplicate as exc:
        return f"duplicate key {exc}"
    except (ValueError, RecursionError) as exc:
        return f"not strict JSON: {type(exc).__name__}: {str(exc)[:120]}"
    return None


# ------------------------------------------------------------------ hostile values

SPECIAL_INTS = (
    10**23,
    -(10**23),
    2**64 - 1,
    2**64,
    2**63,
    2**63 - 1,
    -(2**63),
    2**53 + 1,
    2**31,
    -1,
    0,
    1,
    MAX_LINE_QUANTITY,
    MAX_LINE_QUANTITY + 1,
    MAX_RESTOCK_QUANTITY,
    MAX_RESTOCK_QUANTITY + 1,
    MAX_UNIT_PRICE,
    MAX_UNIT_PRICE + 1,
)
RAW_LITERALS = (
    "NaN",
    "-NaN",
    "Infinity",
    "-Infinity",
    "1e400",
    "-1e400",
    "-0",
    "0.0",
    "1.0",
    "1E2",
    "1e0",
    "01",
    "+1",
    "0x10",
    ".5",
    "1.",
    "1_000",
    "100000000000000000000000000000000000000000",
    "true1",
    "nul",
    "undefined",
    "'single'",
    '"\\ud800"',
    '"\\udfff\\ud800"',
    '"\\u0000"',
    '"\\u202e"',
    '"a\\u0000b"',
    '"\\x41"',
    "[" * 100 + "]" * 100,
    "[" * 25_000 + "]" * 25_000,
    '{"a":' * 3_000 + "1" + "}" * 3_000,
    "[1,]",
    "{,}",
    "// comment\n1",
)
SPECIAL_TEXT = (
    "",
    " ",
    "   ",
    "\t",
    "\n",
    "\r\n",
    "\u00a0",
    "\u3000",
    "\u200b",
    "\ufeff",
    "\x00",
    "a\x00b",
    "\x1b[31mred",
    "\x7f",
    "\x85",
    "\x9f",
    "\u2028",
    "\u2029",
    "\u202e",
    "abc\u202edcba",
    "\u2066x\u2069",
    "\ud800",
    "x\udfff",
    "\U0001f600",
    "e\u0301",
    "../../etc/passwd",
    "%00",
    "<script>alert(1)</script>",
    "'; DROP TABLE orders; --",
    "${jndi:ldap://127.0.0.1/x}",
    "tok_visa",
    "US",
    "us",
    "USA",
    "\u00dcS",
    "\uff35\uff33",
    "XX",
)


def overlong_text() -> st.SearchStrategy[str]:
    # Built by repetition: hypothesis need not draw 70,000 characters one by one.
    return st.builds(
        lambda c, n: c * n,
        st.sampled_from(["a", "\u00e9", "\u20ac", "\U0001f600", " ", "0"]),
        st.sampled_from([2, 3, 20, 21, 64, 65, 100, 101, 128, 129, 200, 201, 1_000, 70_000]),
    )


def hostile_text() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(SPECIAL_TEXT),
        st.text(max_size=30),
        st.text(alphabet=st.characters(codec="ascii"), max_size=30),
        overlong_text(),
    )


def json_junk() -> st.SearchStrategy[Any]:
    leaves = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(),
        st.text(max_size=10),
    )
    return st.recursive(
        leaves,
        lambda children: st.one_of(
            st.lists(children, max_size=3),
            st.dictionaries(st.text(max_size=8), children, max_size=3),
        ),
        max_leaves=10,
    )


def hostile_value() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.sampled_from(SPECIAL_INTS),
        st.integers(),
        st.integers(-3, 2 * MAX_LINE_QUANTITY),
        st.floats(),
        st.sampled_from([1.0, 0.5, -0.0, 1e308, 2.0**64]),
        st.booleans(),
        st.none(),
        hostile_text(),
        st.builds(Raw, st.sampled_from(RAW_LITERALS)),
        json_junk(),
    )


# ------------------------------------------------------------------ valid parts

_ID_FIRST = string.ascii_letters + string.digits
_ID_REST = _ID_FIRST + "_.:@-"
_TOKEN_REST = _ID_FIRST + "_-"


def valid_ids(rest: str = _ID_REST) -> st.SearchStrategy[str]:
    return st.builds(
        lambda a, b: a + b,
        st.sampled_from(_ID_FIRST),
        st.text(alphabet=rest, max_size=63),
    )


def valid_text(max_size: int) -> st.SearchStrategy[str]:
    # Free text: any printable characters, not blank (Name, City, PostalCode).
    printable = st.characters(blacklist_categories=["Cc", "Cs", "Zl", "Zp"]).filter(
        lambda c: not ("\u202a" <= c <= "\u202e" or "\u2066" <= c <= "\u2069")
    )
    return st.text(alphabet=printable, min_size=1, max_size=max_size).filter(
        lambda s: s.strip() != ""
    )


@st.composite
def valid_orders(draw: st.DrawFn, sku: str) -> dict[str, Any]:
    """A body the server should accept (unless stock or randomness says otherwise)."""
    body = order_body([(sku, 1)])
    if draw(st.booleans()):
        body["customer_id"] = draw(valid_ids())
    if draw(st.booleans()):
        body["payment_token"] = draw(
            st.one_of(st.just("tok_decline"), valid_ids(_TOKEN_REST)).filter(
                lambda t: t not in SPECIAL_TOKENS
            )
        )
    body["items"][0]["quantity"] = draw(
        st.one_of(st.integers(1, 3), st.integers(1, MAX_LINE_QUANTITY))
    )
    address = body["shipping_address"]
    for name, size in (("name", 200), ("line1", 200), ("city", 100), ("postal_code", 20)):
        if draw(st.integers(0, 3)) == 0:
            address[name] = draw(valid_text(size))
    if draw(st.integers(0, 3)) == 0:
        address["country"] = draw(st.text(alphabet=string.ascii_uppercase, min_size=2, max_size=2))
    return body


# ------------------------------------------------------------------ body mutation

Path = tuple[str | int, ...]


def _parent(body: Any, path: Path) -> Any:
    node = body
    for part in path[:-1]:
        node = node[part]
    return node


@st.composite
def mutated(draw: st.DrawFn, base: dict[str, Any], paths: tuple[Path, ...]) -> tuple[bytes, str]:
    """``base`` with one thing wrong (or nothing): the bytes to send and what was done."""
    body = deepcopy(base)
    kind = draw(
        st.sampled_from(
            [
                "valid",
                "valid",
                "replace",
                "replace",
                "replace",
                "delete",
                "extra",
                "duplicate",
                "literal",
                "whole",
                "corrupt",
                "oversize",
            ]
        )
    )
    if kind == "valid":
        return encode(body), kind
    if kind == "whole":
        whole = draw(st.one_of(hostile_value(), st.just([body]), st.just(Raw(dump(body) * 2))))
        return encode(whole), kind
    path = draw(st.sampled_from(paths))
    parent = _parent(body, path)
    last = path[-1]
    if kind == "replace":
        parent[last] = draw(hostile_value())
    elif kind == "literal":
        parent[last] = Raw(draw(st.sampled_from(RAW_LITERALS)))
    elif kind == "oversize":
        parent[last] = "x" * draw(st.sampled_from([MAX_BODY_BYTES - 400, MAX_BODY_BYTES + 1]))
    elif kind == "delete" and isinstance(parent, dict):
        parent.pop(last, None)
    elif kind == "delete" and isinstance(parent, list):
        parent.clear()
    elif kind == "extra":
        target = parent if isinstance(parent, dict) else body
        target[draw(st.one_of(st.text(max_size=12), st.sampled_from(SPECIAL_TEXT)))] = draw(
            hostile_value()
        )
    elif kind == "duplicate" and isinstance(parent, dict) and isinstance(last, str):
        # The same key twice: which copy is the valid one is drawn too.
        pairs = list(parent.items())
        twin = (last, draw(st.one_of(st.just(parent.get(last)), hostile_value())))
        pairs.insert(draw(st.integers(0, len(pairs))), twin)
        grand = _parent(body, path[:-1]) if len(path) > 1 else None
        if grand is None:
            return encode(Obj(tuple(pairs))), kind
        grand[path[-2]] = Obj(tuple(pairs))
    elif kind == "corrupt":
        # Valid JSON bytes with a few bytes changed: invalid UTF-8, a cut, a stray byte.
        raw = bytearray(encode(body))
        at = draw(st.integers(0, len(raw)))
        cut = draw(st.integers(0, 4))
        raw[at : at + cut] = draw(
            st.one_of(st.binary(max_size=4), st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80"]))
        )
        return bytes(raw), kind
    return encode(body), kind


ORDER_PATHS: tuple[Path, ...] = (
    ("customer_id",),
    ("items",),
    ("items", 0),
    ("items", 0, "sku"),
    ("items", 0, "quantity"),
    ("payment_token",),
    ("shipping_address",),
    *(("shipping_address", name) for name in ADDRESS),
)
RESTOCK_PATHS: tuple[Path, ...] = (("quantity",), ("unit_price",))


@st.composite
def order_lines(draw: st.DrawFn, skus: list[str]) -> list[dict[str, Any]]:
    """Many lines: same-SKU lines whose merged quantity may overflow, too many lines."""
    sku = st.one_of(
        st.sampled_from(skus),
        st.sampled_from([s.upper() for s in skus]),
        valid_ids("_.-"),
        hostile_text(),
    )
    quantity = st.one_of(
        st.integers(1, 3),
        st.integers(MAX_LINE_QUANTITY // 2 - 1, MAX_LINE_QUANTITY),
        st.sampled_from(SPECIAL_INTS),
    )
    size = draw(st.one_of(st.integers(1, 4), st.sampled_from([MAX_LINES, MAX_LINES + 1])))
    first = draw(st.sampled_from(skus))
    lines = [{"sku": first, "quantity": draw(quantity)}]
    while len(lines) < size:
        # Beyond a few drawn lines, repeat: a 101-line order needs no 101 draws.
        if len(lines) >= 4:
            lines.append(dict(lines[len(lines) % 4]))
        else:
            lines.append({"sku": draw(sku), "quantity": draw(quantity)})
    return lines
