"""The hostile fuzzer's headers, paths and query strings."""

from __future__ import annotations

import re
import string
from urllib.parse import quote

from hypothesis import strategies as st

from ordersaga.schemas.bounds import (
    MAX_IDEMPOTENCY_KEY_LENGTH,
)
from tests.integration.fuzz_requests import (
    hostile_text,
    valid_ids,
)

# ------------------------------------------------------------------ headers and paths

_HEADER_BYTES = [b for b in range(1, 256) if b not in b" \t\r\n\x0b\x0c"]


def header_bytes(max_size: int = 140) -> st.SearchStrategy[bytes]:
    """A header value h11 will send: no NUL/CR/LF, no whitespace at either end."""
    inner = st.lists(st.sampled_from([*_HEADER_BYTES, 0x20, 0x09]), max_size=max_size)
    return st.builds(
        lambda a, mid, z: bytes([a, *mid, z]) if mid or a != z else bytes([a]),
        st.sampled_from(_HEADER_BYTES),
        inner,
        st.sampled_from(_HEADER_BYTES),
    )


CONTENT_TYPES: tuple[bytes | None, ...] = (
    None,
    b"application/json",
    b"application/json",
    b"application/json",
    b"application/json; charset=utf-8",
    b"application/json; charset=UTF-8",
    b"application/json;charset=utf8",
    b'application/json; charset="utf-8"',
    b"application/json; charset=latin-1",
    b"application/json; charset=iso-8859-1",
    b"application/json; charset=utf-16",
    b"application/json; charset=",
    b"application/json; foo=bar",
    b"APPLICATION/JSON",
    b"Application/Json",
    b"application/json, text/plain",
    b"application/jsonx",
    b"application/json-patch+json",
    b"application/vnd.api+json",
    b"text/json",
    b"text/plain",
    b"text/plain; charset=utf-8",
    b"application/x-www-form-urlencoded",
    b"multipart/form-data; boundary=xyz",
    b"*/*",
    b"",
    b"application/json\xff",
    b"application/\xc3\xa9json",
)


def content_types() -> st.SearchStrategy[bytes | None]:
    return st.one_of(st.sampled_from(CONTENT_TYPES), header_bytes(40))


def idempotency_keys() -> st.SearchStrategy[bytes | None]:
    visible = st.text(alphabet=[chr(c) for c in range(0x21, 0x7F)], min_size=1, max_size=140).map(
        lambda s: s.encode()
    )
    return st.one_of(
        st.none(),
        st.none(),
        st.none(),
        visible,
        header_bytes(),
        st.sampled_from(
            [
                b"",
                b"k" * MAX_IDEMPOTENCY_KEY_LENGTH,
                b"k" * (MAX_IDEMPOTENCY_KEY_LENGTH + 1),
                "\u043a\u043b\u044e\u0447".encode(),
                b"\xff\xfe",
                b"key with spaces",
                b"tab\tinside",
                b"\x01\x02",
                b"a\x7fb",
            ]
        ),
    )


_RESERVED_HEADERS = {"content-type", "idempotency-key", "content-length", "transfer-encoding"}


def extra_headers() -> st.SearchStrategy[list[tuple[bytes, bytes]]]:
    name = st.one_of(
        st.sampled_from(
            [
                "Origin",
                "Accept",
                "Accept-Encoding",
                "Accept-Charset",
                "X-Forwarded-For",
                "X-Forwarded-Host",
                "X-Request-Id",
                "Cookie",
                "Authorization",
                "Access-Control-Request-Method",
                "Expect",
                "Host",
                "Connection",
                "Range",
            ]
        ),
        st.text(alphabet=string.ascii_letters + string.digits + "-_", min_size=1, max_size=20),
    ).filter(lambda n: n.lower() not in _RESERVED_HEADERS)
    value = st.one_of(
        st.sampled_from(
            [
                b"http://evil.example",
                b"null",
                b"text/html",
                b"*",
                b"POST",
                b"100-continue",
                b"bytes=0-1",
                b"localhost",
                b"close",
                b"h" * 9_000,  # a header line over aiohttp's 8190-byte limit
            ]
        ),
        header_bytes(60),
    )
    # One of each name: h11 refuses to send two Host headers.
    return st.lists(
        st.tuples(name.map(str.encode), value), max_size=3, unique_by=lambda h: h[0].lower()
    )


def path_segments() -> st.SearchStrategy[str]:
    """A path parameter as a hostile client writes it (before percent-encoding)."""
    return st.one_of(
        # Long enough to pass aiohttp's 8190-byte request line, short enough for httpx's
        # 64 KiB URL limit.
        hostile_text().map(lambda s: s[:3_000]),
        valid_ids(),
        st.sampled_from(
            [".", "..", "%2e%2e", "a/b", "a%2Fb", "a?b", "a#b", "x" * 64, "x" * 65, "-x", "_x"]
        ),
    )


def seg(text: str) -> str:
    # Percent-encoded as UTF-8 (lone surrogates as they would come through a proxy).
    return quote(text.encode("utf-8", "surrogatepass"), safe="")


def wait_values() -> st.SearchStrategy[str]:
    return st.one_of(
        st.text(max_size=8),
        st.from_regex(r"[0-9]{1,3}(\.[0-9]{1,4})?", fullmatch=True),
        st.sampled_from(
            [
                "",
                "0",
                "0.0",
                "0.05",
                "-1",
                "1e1",
                "NaN",
                "inf",
                "60",
                "60.0",
                "60.001",
                "61",
                " 1",
                "1 ",
                "1\n",
                "\uff11",
                "\u0663",
                "0x1",
                "1_0",
                "9" * 400,
            ]
        ),
    )


def short_waits() -> st.SearchStrategy[str]:
    """Waits on a real order: valid ones are short, so an in-flight order cannot stall."""
    return st.one_of(
        st.sampled_from(["0", "0.0", "0.05", "0.2", "00", "0.000", "1\n"]),
        wait_values().filter(lambda w: not re.match(r"^[0-9]{1,2}(\.[0-9]{1,3})?$", w)),
    )


def query_pairs() -> st.SearchStrategy[list[tuple[str, str]]]:
    key = st.one_of(
        st.sampled_from(["wait", "limit", "x", "", "wait[]", "__proto__"]), st.text(max_size=8)
    )
    return st.lists(st.tuples(key, st.text(max_size=12)), max_size=3)


def query_string(pairs: list[tuple[str, str]]) -> str:
    if not pairs:
        return ""
    return "?" + "&".join(f"{seg(k)}={seg(v)}" for k, v in pairs)
