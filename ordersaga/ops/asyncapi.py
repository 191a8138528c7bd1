"""The message contract as an AsyncAPI 3.0 document, generated from the topology and models.

Every topic a participant sends to is a channel; every message type routed there
is a message of it, its payload the envelope around the type's own schema, both
from the pydantic models the codec validates with, so the document and the wire
cannot disagree. Each participant's sends and receives are operations. The
document is committed as docs/asyncapi.json (``ordersaga schemas --out``), and a
test holds it equal to what this module generates.
"""

from __future__ import annotations

from typing import Any

from ordersaga import __version__
from ordersaga.schemas.messages import Envelope, Message
from ordersaga.shell.codec import (
    HEADER_CORRELATION,
    HEADER_EVENT_ID,
    HEADER_TYPE,
    HEADER_VERSION,
)
from ordersaga.topology import TOPOLOGY

_REF = "#/components/schemas/{model}"


def _inline(model: type[Any], schemas: dict[str, Any]) -> dict[str, Any]:
    """``model``'s JSON schema, the models it refers to moved into ``schemas``."""
    schema = model.model_json_schema(ref_template=_REF)
    for name, part in schema.pop("$defs", {}).items():
        schemas.setdefault(name, part)
    return schema


def _schema(model: type[Any], schemas: dict[str, Any]) -> dict[str, Any]:
    """``model``'s JSON schema as a reference; it and its parts land in ``schemas``."""
    schemas.setdefault(model.__name__, _inline(model, schemas))
    return {"$ref": _REF.format(model=model.__name__)}


def _headers() -> dict[str, Any]:
    text = {"type": "string"}
    return {
        "type": "object",
        "description": "Mirrors of envelope fields, so console tools can filter without "
        "parsing values",
        "properties": {
            HEADER_TYPE: {**text, "description": "the message type (the envelope's type)"},
            HEADER_VERSION: {**text, "description": "the payload's shape version"},
            HEADER_CORRELATION: {**text, "description": "the request it all started from"},
            HEADER_EVENT_ID: {**text, "description": "this message's id, for deduplication"},
        },
        "required": [HEADER_TYPE, HEADER_EVENT_ID],
    }


def _message(message_type: type[Message], schemas: dict[str, Any]) -> dict[str, Any]:
    envelope = _inline(Envelope, schemas)
    envelope["title"] = f"{message_type.TYPE} envelope"
    envelope["properties"]["type"] = {"const": message_type.TYPE}
    envelope["properties"]["payload"] = _schema(message_type, schemas)
    return {
        "name": message_type.TYPE,
        "title": message_type.TYPE,
        "summary": (message_type.__doc__ or "").strip().splitlines()[0],
        "contentType": "application/json",
        "headers": _headers(),
        "payload": envelope,
        "bindings": {
            "kafka": {
                "key": {
                    "type": "string",
                    "description": f"the message's {message_type.ROUTING_FIELD}",
                }
            }
        },
    }


def asyncapi_document() -> dict[str, Any]:
    """The AsyncAPI 3.0 document of every topic, message type and participant."""
    schemas: dict[str, Any] = {}
    by_topic: dict[str, list[type[Message]]] = {}
    for message_type, topic in TOPOLOGY.routes.items():
        by_topic.setdefault(topic, []).append(message_type)
    messages = {t.TYPE: _message(t, schemas) for t in sorted(TOPOLOGY.routes, key=lambda t: t.TYPE)}
    channels = {
        topic: {
            "address": topic,
            "messages": {
                t.TYPE: {"$ref": f"#/components/messages/{t.TYPE}"}
                for t in sorted(types, key=lambda t: t.TYPE)
            },
        }
        for topic, types in sorted(by_topic.items())
    }
    operations: dict[str, Any] = {}
    for p in TOPOLOGY.participants:
        received = {
            topic: {t.TYPE for t in TOPOLOGY.answered(p.name, topic)} for topic in p.consumes
        }
        sent: dict[str, set[str]] = {}
        for topic, types in p.publishes.items():
            sent.setdefault(topic, set()).update(t.TYPE for t in types)
        if p.reply_topic is not None:
            sent.setdefault(p.reply_topic, set()).update(t.TYPE for t in p.replies)
        if p.name == TOPOLOGY.orchestrator:
            # The saga's commands and undos (a one-SKU order's direct stock command too).
            for step in TOPOLOGY.steps:
                commands = [step.command]
                if step.undo is not None:
                    commands += [step.undo.command, *filter(None, [step.undo.direct])]
                for command in commands:
                    sent.setdefault(TOPOLOGY.topic_of(command), set()).add(command.TYPE)
        for action, per_topic in (("receive", received), ("send", sent)):
            for topic, names in sorted(per_topic.items()):
                known = {n for n in names if n in channels.get(topic, {}).get("messages", {})}
                if not known:
                    continue
                operations[f"{p.name}.{action}.{topic}"] = {
                    "action": action,
                    "summary": f"{p.name}: {p.summary}",
                    "channel": {"$ref": f"#/channels/{topic}"},
                    "messages": [
                        {"$ref": f"#/channels/{topic}/messages/{name}"} for name in sorted(known)
                    ],
                }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "ordersaga messages",
            "version": __version__,
            "description": "Every Kafka topic the agent groups send to, the message types "
            "on each (JSON envelopes, keyed by entity, typed in headers), and who sends "
            "and receives them. Generated from ordersaga.topology and the pydantic "
            "models (`ordersaga schemas`).",
        },
        "defaultContentType": "application/json",
        "servers": {
            "local": {
                "host": "127.0.0.1:9092",
                "protocol": "kafka",
                "description": "the broker `make run` starts",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": dict(sorted(schemas.items()))},
    }
