"""The wire format: JSON envelopes in Kafka values, type and ids mirrored in headers."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import orjson
from pydantic import ValidationError, create_model

from ordersaga.schemas.bounds import EVENT_ID_PATTERN, ID_PATTERN
from ordersaga.schemas.messages import Envelope, Message
from ordersaga.shell.printable import printable
from ordersaga.topology import TOPOLOGY

HEADER_TYPE = "type"
HEADER_VERSION = "version"
HEADER_CORRELATION = "correlation_id"
HEADER_EVENT_ID = "event_id"

Headers = list[tuple[str, bytes]]

_EVENT_ID_MATCH = re.compile(EVENT_ID_PATTERN).fullmatch
_ID_MATCH = re.compile(ID_PATTERN).fullmatch

# Type name -> payload model: every type some participant declares (ordersaga.topology).
MESSAGE_TYPES: Mapping[str, type[Message]] = TOPOLOGY.message_types


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
    """Wrap ``message`` in an envelope and serialise it with its headers.

    The payload is a model the rules built, valid already, so it is serialised
    once by its own pydantic serializer and the envelope around it is written
    directly: building and re-validating an ``Envelope`` model per send was a
    tenth of the orchestrator's CPU (issue 21). The ids, which come from
    elsewhere, are still checked against the envelope's patterns; one that fails
    goes through ``Envelope`` and raises as validation always did.
    """
    event_id = event_id or new_id()
    order_id = message.order_ref()
    if not (
        _EVENT_ID_MATCH(event_id)
        and _EVENT_ID_MATCH(correlation_id)
        and (causation_id is None or _EVENT_ID_MATCH(causation_id))
        and (order_id is None or _ID_MATCH(order_id))
    ):
        return _encode_validated(message, key, correlation_id, causation_id, event_id)
    value = orjson.dumps(
        {
            "event_id": event_id,
            "type": message.TYPE,
            "version": message.VERSION,
            "order_id": order_id,
            "correlation_id": correlation_id,
            "causation_id": causation_id,
            "occurred_at": datetime.now(UTC),
            "payload": orjson.Fragment(message.model_dump_json()),
        },
        option=orjson.OPT_UTC_Z,
    )
    return Encoded(
        key=key.encode(), value=value, headers=_headers(message, correlation_id, event_id)
    )


def _encode_validated(
    message: Message, key: str, correlation_id: str, causation_id: str | None, event_id: str
) -> Encoded:
    envelope = Envelope(
        event_id=event_id,
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
        headers=_headers(message, correlation_id, envelope.event_id),
    )


def _headers(message: Message, correlation_id: str, event_id: str) -> Headers:
    return [
        (HEADER_TYPE, message.TYPE.encode()),
        (HEADER_VERSION, str(message.VERSION).encode()),
        (HEADER_CORRELATION, correlation_id.encode()),
        (HEADER_EVENT_ID, event_id.encode()),
    ]


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "(root)"
    return f"{where}: {err['msg']}"


def decode(
    value: bytes | None,
    headers: Iterable[tuple[str, bytes | None]] | None = None,
    *,
    types: Mapping[str, type[Message]] = MESSAGE_TYPES,
) -> tuple[Envelope, Message]:
    """Parse and validate an envelope and its typed payload; DecodeError says why not.

    Strict, as another producer's message deserves: JSON types are not coerced
    (``"5"`` is no int), and a ``type`` or ``version`` header, when present, must
    say what the body says (consumers route and trace by the headers). Fields this
    worker does not know, in the envelope or the payload, are ignored: a newer
    producer may have added them (ARCHITECTURE.md, Message compatibility). By the
    envelope's ``version``, the payload is read as is (this worker's version, or a
    newer one, which must still validate: an additive change), or upgraded first
    (an older one its type's ``upgrade`` still reads).
    """
    if value is None:
        raise DecodeError("empty value")
    read = _read_as_typed(value, headers, types)
    if read is not None:
        return read
    try:
        envelope = Envelope.model_validate_json(value, strict=True, extra="ignore")
    except ValidationError as exc:
        if exc.errors()[0]["type"] == "json_invalid":
            raise DecodeError(f"not JSON: {_first_error(exc)}") from None
        raise DecodeError(f"bad envelope: {_first_error(exc)}") from None
    payload_type = types.get(envelope.type)
    if payload_type is None:
        raise DecodeError(f"unknown message type {envelope.type!r}", envelope)
    _check_headers(envelope, headers)
    payload = _payload_of_this_version(envelope, payload_type)
    try:
        # From JSON again: in strict mode only JSON input may be a list for a tuple
        # or a string for a datetime, and the payload is small (the broker's
        # message size bounds it; ignored fields are parsed, then dropped).
        message = payload_type.model_validate_json(
            orjson.dumps(payload), strict=True, extra="ignore"
        )
    except ValidationError as exc:
        raise DecodeError(_refusal(envelope, payload_type, exc), envelope) from None
    except orjson.JSONEncodeError as exc:  # what an upgrade returned is no JSON object
        raise DecodeError(f"{_upgraded(envelope, payload_type)}: {exc}", envelope) from None
    return envelope, message


def _typed_envelope(payload_type: type[Message]) -> type[Envelope]:
    """``Envelope`` whose payload is ``payload_type``: one message read in one pass."""
    typed = _TYPED_ENVELOPES.get(payload_type)
    if typed is None:
        typed = _TYPED_ENVELOPES[payload_type] = create_model(
            f"{payload_type.__name__}Envelope", __base__=Envelope, payload=(payload_type, ...)
        )
    return typed


_TYPED_ENVELOPES: dict[type[Message], type[Envelope]] = {}


def _read_as_typed(
    value: bytes,
    headers: Iterable[tuple[str, bytes | None]] | None,
    types: Mapping[str, type[Message]],
) -> tuple[Envelope, Message] | None:
    """The usual case in one validation: headers name a known type at this worker's version.

    The envelope and its payload are parsed and validated together, where the
    general path validates the envelope, writes its payload out and parses that
    again (a fifth of decoding). Anything else, or anything that does not
    validate here, takes the general path, which says why.
    """
    said: dict[str, bytes | None] = {}
    for key, raw in headers or ():
        if key in (HEADER_TYPE, HEADER_VERSION):
            if key in said:
                return None  # said twice: the general path checks each
            said[key] = raw
    said_type, said_version = said.get(HEADER_TYPE), said.get(HEADER_VERSION)
    if said_type is None or said_version is None:
        return None
    payload_type = types.get(said_type.decode("ascii", "replace"))
    if payload_type is None or said_version != str(payload_type.VERSION).encode():
        return None
    try:
        envelope = _typed_envelope(payload_type).model_validate_json(
            value, strict=True, extra="ignore"
        )
    except ValidationError:
        return None
    if envelope.type != payload_type.TYPE or envelope.version != payload_type.VERSION:
        return None
    return envelope, cast(Message, envelope.payload)


def _payload_of_this_version(envelope: Envelope, payload_type: type[Message]) -> dict[str, Any]:
    version, known = envelope.version, payload_type.VERSION
    if version >= known:
        return envelope.payload
    try:
        upgraded = payload_type.upgrade(version, dict(envelope.payload))
    except (KeyError, TypeError, ValueError) as exc:
        # The upgrade met a payload its version does not have: the producer's fault.
        raise DecodeError(f"{_upgraded(envelope, payload_type)}: {exc!r}", envelope) from None
    if upgraded is None:
        raise DecodeError(
            f"version {version} of {envelope.type} is no longer read "
            f"(this worker reads version {known})",
            envelope,
        )
    return upgraded


def _upgraded(envelope: Envelope, payload_type: type[Message]) -> str:
    return (
        f"version {envelope.version} of {envelope.type} does not upgrade "
        f"to version {payload_type.VERSION}"
    )


def _refusal(envelope: Envelope, payload_type: type[Message], exc: ValidationError) -> str:
    version, known = envelope.version, payload_type.VERSION
    if version > known:
        # A newer version that does not validate here made a breaking change: a
        # worker this old cannot read it (readers are deployed before writers).
        return (
            f"unknown version {version} of {envelope.type} (this worker reads version "
            f"{known}) does not read as version {known}: {_first_error(exc)}"
        )
    if version < known:
        return f"bad {envelope.type} payload upgraded from version {version}: {_first_error(exc)}"
    return f"bad {envelope.type} payload: {_first_error(exc)}"


def _check_headers(envelope: Envelope, headers: Iterable[tuple[str, bytes | None]] | None) -> None:
    for key, raw in headers or ():
        if key == HEADER_TYPE:
            said, meant = raw, envelope.type
        elif key == HEADER_VERSION:
            said, meant = raw, str(envelope.version)
        else:
            continue
        if said != meant.encode():
            shown = printable(bytes(said or b""))[:100]
            raise DecodeError(
                f"{key} header {shown!r} disagrees with the body's {key} {meant!r}", envelope
            )


def header_pairs(headers: Mapping[str, bytes] | Iterable[tuple[str, bytes]] | None) -> Headers:
    """Headers as a list of pairs, whatever shape the client handed them in."""
    if headers is None:
        return []
    if isinstance(headers, Mapping):
        return [(k, bytes(v) if v is not None else b"") for k, v in headers.items()]
    return [(k, bytes(v) if v is not None else b"") for k, v in headers]
