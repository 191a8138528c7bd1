"""Every bound on what a client or another producer can put into the system.

The HTTP bodies and the Kafka messages share these types, so a value refused at
the edge is refused on the wire too, whoever produced it. The numbers are chosen
so that no product of them overflows: the largest possible order total
(MAX_LINES x MAX_LINE_QUANTITY x MAX_UNIT_PRICE = 10**13 cents) is far inside
both a signed 64-bit integer and the integers a JSON client reads exactly (2**53).
docs/http-api.md ("Bad input and bounds") lists them with what exceeding each answers.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

MAX_ID_LENGTH = 64
MAX_LINES = 100
MAX_LINE_QUANTITY = 10_000
MAX_UNIT_PRICE = 10_000_000  # cents: 100,000.00 a unit
MAX_ORDER_TOTAL = MAX_LINES * MAX_LINE_QUANTITY * MAX_UNIT_PRICE
MAX_RESTOCK_QUANTITY = 1_000_000
# The most a SKU can have on the shelf, so a restock flood cannot grow its levels without bound.
MAX_STOCK_LEVEL = 1_000_000_000
# Counters that only grow (put_in, versions, sequence numbers) stay exact in JSON clients.
MAX_COUNTER = 2**53 - 1
MAX_IDEMPOTENCY_KEY_LENGTH = 128
MAX_EVENT_ID_LENGTH = 256
MAX_REASON_LENGTH = 500

# No control characters (C0, DEL, C1), no line or paragraph separators, no bidi overrides.
_CONTROL = "\\x00-\\x1f\\x7f-\\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069"
_NO_CONTROL = f"[^{_CONTROL}]"
# An identifier: a letter or digit first (so never "." or ".."), then a small safe alphabet.
_ID = rf"^[A-Za-z0-9][A-Za-z0-9_.:@\-]{{0,{MAX_ID_LENGTH - 1}}}$"
ID_PATTERN = _ID

Id = Annotated[str, StringConstraints(pattern=_ID)]
_SKU = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$"
_PAYMENT_TOKEN = r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,63}$"
Sku = Annotated[str, StringConstraints(pattern=_SKU)]
PaymentToken = Annotated[str, StringConstraints(pattern=_PAYMENT_TOKEN)]
# A value sealed for its one reader (ordersaga.edge.sealing): the id of the key, then
# AES-GCM's nonce and ciphertext in base64url. Long enough for a whole Address.
SEALED_PREFIX = "sealed:v1:"
_SEALED = rf"^{SEALED_PREFIX}[0-9a-f]{{8}}:[A-Za-z0-9_\-]{{38,2800}}$"
Sealed = Annotated[str, StringConstraints(pattern=_SEALED)]
_EVENT_ID = rf"^[A-Za-z0-9][A-Za-z0-9_.:@\-]{{0,{MAX_EVENT_ID_LENGTH - 1}}}$"
EVENT_ID_PATTERN = _EVENT_ID
EventId = Annotated[str, StringConstraints(pattern=_EVENT_ID)]
# Message types, statuses and event names.
_TYPE_NAME = r"^[A-Za-z][A-Za-z0-9_]{0,63}$"
_COUNTRY = r"^[A-Z]{2}$"
TypeName = Annotated[str, StringConstraints(pattern=_TYPE_NAME)]
# An address of the usual shape (local@domain.tld, no spaces or controls), at most
# 254 characters (RFC 5321's path limit); whether it reaches anyone is not ours to know.
_EMAIL_CHAR = r"[^@\s\x00-\x1f\x7f]"
_EMAIL_EDGE = r"[^@\s\x00-\x1f\x7f.]"
_EMAIL = rf"^{_EMAIL_CHAR}{{1,64}}@{_EMAIL_EDGE}{_EMAIL_CHAR}*\.{_EMAIL_EDGE}{{2,63}}$"
Email = Annotated[str, StringConstraints(max_length=254, pattern=_EMAIL)]
CountryCode = Annotated[str, StringConstraints(pattern=_COUNTRY)]
# Visible ASCII only: keys end up in logs and Redis key names.
IDEMPOTENCY_KEY_PATTERN = rf"^[\x21-\x7e]{{1,{MAX_IDEMPOTENCY_KEY_LENGTH}}}$"
IdempotencyKey = Annotated[str, StringConstraints(pattern=IDEMPOTENCY_KEY_PATTERN)]


# Free text: not blank, no control characters (length bounds per field, below).
_TEXT = rf"^{_NO_CONTROL}*[^\s{_CONTROL}]{_NO_CONTROL}*$"


def _text(max_length: int) -> StringConstraints:
    return StringConstraints(min_length=1, max_length=max_length, pattern=_TEXT)


Name = Annotated[str, _text(200)]
City = Annotated[str, _text(100)]
PostalCode = Annotated[str, _text(20)]
Reason = Annotated[str, _text(MAX_REASON_LENGTH)]
Quantity = Annotated[int, Field(ge=1, le=MAX_LINE_QUANTITY)]
UnitPrice = Annotated[int, Field(ge=1, le=MAX_UNIT_PRICE)]
Amount = Annotated[int, Field(ge=0, le=MAX_ORDER_TOTAL)]
RestockQuantity = Annotated[int, Field(ge=1, le=MAX_RESTOCK_QUANTITY)]
StockLevel = Annotated[int, Field(ge=0, le=MAX_COUNTER)]
Counter = Annotated[int, Field(ge=0, le=MAX_COUNTER)]


# What each pattern means, for error messages (the patterns themselves are unreadable).
PATTERN_DESCRIPTIONS: dict[str, str] = {
    _ID: f"must be 1-{MAX_ID_LENGTH} of A-Z a-z 0-9 _ . : @ -, a letter or digit first",
    _SKU: "must be 1-64 of A-Z a-z 0-9 _ . -, a letter or digit first",
    _PAYMENT_TOKEN: "must be 1-64 of A-Z a-z 0-9 _ -, a letter or digit first",
    _EVENT_ID: f"must be 1-{MAX_EVENT_ID_LENGTH} of A-Z a-z 0-9 _ . : @ -",
    _TYPE_NAME: "must be a name of letters, digits and _",
    _COUNTRY: "must be two capital letters",
    _EMAIL: "must be an email address (local@domain.tld, at most 254 characters)",
    _TEXT: "must not be blank nor hold control, line-separator or bidi-override characters",
}
