"""docs/asyncapi.json: generated from the topology and models, and true to the wire."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import jsonschema_rs
import orjson
import pytest

from ordersaga.ops.asyncapi import asyncapi_document
from ordersaga.schemas.messages import ValidateCustomer
from ordersaga.shell.codec import encode
from ordersaga.topology import TOPOLOGY

DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "asyncapi.json"


def test_the_committed_document_is_what_the_code_generates() -> None:
    committed = orjson.loads(DOCUMENT.read_bytes())
    assert committed == asyncapi_document(), "run `ordersaga schemas --out docs/asyncapi.json`"


def test_every_routed_type_is_a_message_of_the_one_channel_it_is_sent_to() -> None:
    document = asyncapi_document()
    messages = document["components"]["messages"]
    assert set(messages) == {t.TYPE for t in TOPOLOGY.routes}
    for topic, channel in document["channels"].items():
        assert channel["address"] == topic
        assert topic in TOPOLOGY.all_topics
        for name in channel["messages"]:
            assert TOPOLOGY.carries(topic, name), (topic, name)
    routed = {(topic, t.TYPE) for t, topic in TOPOLOGY.routes.items()}
    listed = {(topic, n) for topic, c in document["channels"].items() for n in c["messages"]}
    assert listed == routed


def payload_validator(document: dict[str, Any], name: str) -> Any:
    schema = document["components"]["messages"][name]["payload"]
    return jsonschema_rs.validator_for({**schema, "components": document["components"]})


def test_an_encoded_message_is_valid_against_its_schema_and_a_wrong_one_is_not() -> None:
    document = asyncapi_document()
    validator = payload_validator(document, "ValidateCustomer")
    sent = encode(
        ValidateCustomer(order_id="ord-1", customer_id="cust-ada"),
        key="cust-ada",
        correlation_id="cor-1",
    )
    value = orjson.loads(sent.value)
    assert validator.is_valid(value)
    headers = {name: raw.decode() for name, raw in sent.headers}
    assert set(
        document["components"]["messages"]["ValidateCustomer"]["headers"]["required"]
    ) <= set(headers)
    assert not validator.is_valid({**value, "type": "PlaceOrder"})
    assert not validator.is_valid({**value, "payload": {"order_id": "ord-1"}})
    assert not payload_validator(document, "PlaceOrder").is_valid(value)


def test_each_operation_names_messages_of_its_channel() -> None:
    document = asyncapi_document()
    for name, operation in document["operations"].items():
        channel = operation["channel"]["$ref"].removeprefix("#/channels/")
        assert operation["action"] in ("send", "receive"), name
        for message in operation["messages"]:
            assert message["$ref"].startswith(f"#/channels/{channel}/messages/"), name
    assert "orders.send.payments.commands" in document["operations"]
    assert "payments.receive.payments.commands" in document["operations"]


@pytest.mark.needs_k8s_tools
def test_the_asyncapi_parser_reads_the_document_without_a_warning(tmp_path: Path) -> None:
    checks = Path(__file__).resolve().parents[2] / "deploy" / "checks"
    assert (checks / "node_modules").is_dir(), "`make test` installs the npm checks"
    done = subprocess.run(
        ["node", str(checks / "asyncapi-check.mjs"), str(DOCUMENT)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    document = asyncapi_document()
    assert done.stdout.strip() == (
        f"parsed: {len(document['channels'])} channels, "
        f"{len(document['components']['messages'])} messages"
    )
    # And it refuses a broken one.
    broken = {**document, "asyncapi": "3.0.0", "channels": {"x": {"address": 5}}}
    (tmp_path / "broken.json").write_bytes(orjson.dumps(broken))
    refused = subprocess.run(
        ["node", str(checks / "asyncapi-check.mjs"), str(tmp_path / "broken.json")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert refused.returncode == 1 and "error" in refused.stdout
