"""Text from the wire made safe for a terminal or a log line.

Keys, header keys, values and dead-letter reasons come from whoever produced the
record: printed raw, an ESC sequence in one of them drives the operator's
terminal (recolours, retitles, hides lines; issue 19).
"""

from __future__ import annotations

import unicodedata

# Besides the C0 and C1 controls and DEL (category Cc): line and paragraph
# separators and the format characters (bidi overrides among them) that reorder
# or hide what follows.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"})


def _escape(ch: str) -> str:
    code = ord(ch)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def printable(data: bytes | str | None, *, keep_newlines: bool = False) -> str:
    """``data`` as text with no control character left raw.

    Bytes that are not UTF-8 show as ``\\xNN`` and every control, format or
    separator character as its escape; ``keep_newlines`` leaves ``\\n`` alone.
    """
    if data is None:
        return ""
    if isinstance(data, bytes | bytearray | memoryview):
        text = bytes(data).decode("utf-8", "backslashreplace")
    else:
        text = data.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    if text.isascii() and text.isprintable():
        return text
    return "".join(
        ch
        if (ch == "\n" and keep_newlines)
        or (ch.isprintable() and unicodedata.category(ch) not in _UNSAFE_CATEGORIES)
        else _escape(ch)
        for ch in text
    )
