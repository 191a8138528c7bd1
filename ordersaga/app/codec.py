"""The wire format: JSON envelopes in Kafka values, type and ids mirrored in headers."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import orjson
from pydantic import ValidationError

from ordersaga.schemas.messages import MESSAGE_TYPES, Envelope, Message

HEADER_TYPE = "type"
HEADER_VERSION = "version"
HEADER_CORRELATION = "correlation_id"
HEADER_EVENT_ID = "event_id"

Headers = list[tuple[str, bytes]]


class DecodeError(ValueError):
    """A message that cannot be read; its text is the reason written to the DLQ.

    ``envelope`` is set when the envelope was valid but its payload was not, so the
    sender can still be told which order the refused message was about.
    """

    def __init__(self, reason: str, envelope: Envelope | None = None) -> None:
        super().__init__(reason)
        self.envelope = envelope


@dataclass(frozen=True)
class Encoded:
    """One message ready for a producer."""

    key: bytes
    value: bytes
    headers: Headers


def new_id() -> str:
    """A fresh random id (hex UUID4)."""
    return uuid.uuid4().hex


def encode(
    message: Message,
    *,
    key: str,
    correlation_id: str,
    causation_id: str | None = None,
    event_id: str | None = None,
) -> Encoded:
    """Wrap ``message`` in an envelope and serialise it with its headers."""
    envelope = Envelope(
        event_id=event_id or new_id(),
        type=message.TYPE,
        version=message.VERSION,
        order_id=message.order_ref(),
        correlation_id=correlation_id,
        causation_id=causation_id,
        payload=message.model_dump(mode="json"),
    )
    return Encoded(
        key=key.encode(),
        value=orjson.dumps(envelope.model_dump(mode="json")),
        headers=[
            (HEADER_TYPE, message.TYPE.encode()),
            (HEADER_VERSION, str(message.VERSION).encode()),
            (HEADER_CORRELATION, correlation_id.encode()),
            (HEADER_EVENT_ID, envelope.event_id.encode()),
        ],
    )


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "(root)"
    return f"{where}: {err['msg']}"


def decode(value: bytes | None) -> tuple[Envelope, Message]:
    """Parse and validate an envelope and its typed payload; DecodeError says why not."""
    if value is None:
        raise DecodeError("empty value")
    try:
        raw = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(f"not JSON: {exc}") from None
    try:
        envelope = Envelope.model_validate(raw)
    except ValidationError as exc:
        raise DecodeError(f"bad envelope: {_first_error(exc)}") from None
    payload_type = MESSAGE_TYPES.get(envelope.type)
    if payload_type is None:
        raise DecodeError(f"unknown message type {envelope.type!r}", envelope)
    try:
        message = payload_type.model_validate(envelope.payload)
    except ValidationError as exc:
        raise DecodeError(f"bad {envelope.type} payload: {_first_error(exc)}", envelope) from None
    return envelope, message


def header_pairs(headers: Mapping[str, bytes] | Iterable[tuple[str, bytes]] | None) -> Headers:
    """Headers as a list of pairs, whatever shape the client handed them in."""
    if headers is None:
        return []
    if isinstance(headers, Mapping):
        return [(k, bytes(v)) for k, v in headers.items()]
    return [(k, bytes(v) if v is not None else b"") for k, v in headers]
