"""Issue 19, finding 3 (and its parts of 5 and 10): no record stops a group.

Each attack produces one poison record straight to a topic of the running
system, as any client with access to the broker could, then checks that it was
parked on the topic's dead-letter topic with its reason, partition and offset,
that another customer's ordinary order still completes, and that no worker
exited or restarted.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaProducer

from ordersaga.ops.tail import read_topic
from ordersaga.schemas.messages import Address, OrderLine, PlaceOrder
from ordersaga.shell.codec import encode
from ordersaga.shell.topics import ORDERS_COMMANDS, PAYMENTS_COMMANDS, dlq_topic
from tests.integration.conftest import System
from tests.integration.support import (
    ADDRESS,
    final,
    new_sku,
    order_body,
    ordersaga_cli,
    place,
    wait_for,
)

pytestmark = pytest.mark.integration

VICTIM = "cust-abuse-victim"
# The retention the operator tools judge a dead letter's age by: long enough for a
# replay right after the dead letter is parked on a loaded machine, and short
# (SHORT_RETENTION_S) for the refusal of one older than it.
RETENTION_S = 120
SHORT_RETENTION_S = 5

# Another client, with aiokafka's pure-Python record builder (its C one refuses to
# write such a key): one record whose header key is the given bytes, not UTF-8.
RAW_HEADER_PRODUCER = """
import asyncio, json, sys
from aiokafka import AIOKafkaProducer

class RawKey(str):
    def __new__(cls, raw):
        key = super().__new__(cls, raw.decode("latin-1"))
        key.raw = raw
        return key
    def encode(self, *args, **kwargs):
        return self.raw

async def main(bootstrap, topic, key, value, raw_key):
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        meta = await producer.send_and_wait(
            topic, bytes.fromhex(value), key=key.encode(),
            headers=[("type", b"PlaceOrder"), (RawKey(bytes.fromhex(raw_key)), b"x")],
        )
    finally:
        await producer.stop()
    print(json.dumps({"partition": meta.partition, "offset": meta.offset}))

asyncio.run(main(*sys.argv[1:]))
"""


@pytest.fixture(scope="module")
def victim(client: httpx.Client) -> str:
    """A customer of the shop who has nothing to do with the attacks."""
    r = client.post(
        "/customers",
        json={"customer_id": VICTIM, "name": "Innocent Bystander", "email": "v@test.example.com"},
    )
    assert r.status_code in (200, 201), r.text
    return VICTIM


def place_order_command(order_id: str, sku: str = "sku-none") -> PlaceOrder:
    return PlaceOrder(
        order_id=order_id,
        customer_id="cust-1",
        items=(OrderLine(sku=sku, quantity=1),),
        payment_token="tok_visa",
        shipping_address=Address.model_validate(ADDRESS),
    )


def produce(
    system: System,
    topic: str,
    value: bytes,
    *,
    key: bytes,
    headers: list[tuple[str, bytes]],
    max_request_size: int = 1048576,
) -> tuple[int, int]:
    """One record, produced as is; its partition and offset."""

    async def go() -> tuple[int, int]:
        producer = AIOKafkaProducer(
            bootstrap_servers=system.bootstrap, max_request_size=max_request_size
        )
        await producer.start()
        try:
            meta = await producer.send_and_wait(topic, value, key=key, headers=headers)
        finally:
            await producer.stop()
        return meta.partition, meta.offset

    return asyncio.run(go())


def produce_raw_header_key(
    system: System, topic: str, value: bytes, key: str, raw_key: bytes
) -> tuple[int, int]:
    env = {**os.environ, "AIOKAFKA_NO_EXTENSIONS": "1"}
    args = [system.bootstrap, topic, key, value.hex(), raw_key.hex()]
    done = subprocess.run(
        [sys.executable, "-c", RAW_HEADER_PRODUCER, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    where = json.loads(done.stdout)
    return where["partition"], where["offset"]


def dead_letter_of(system: System, topic: str, partition: int, offset: int) -> Any:
    """The dead letter of the record at ``topic[partition]@offset``, once it is parked."""

    def found() -> Any:
        for r in asyncio.run(read_topic(system.bootstrap, dlq_topic(topic))):
            headers = {k: v for k, v in r.headers}
            if (headers.get("dlq.partition"), headers.get("dlq.offset")) == (
                str(partition).encode(),
                str(offset).encode(),
            ):
                return r
        return None

    return wait_for(found, timeout=60, interval=1)


def header(record: Any, name: str) -> str:
    [value] = [v for k, v in record.headers if k == name]
    return bytes(value).decode()


def no_worker_restarted(system: System) -> None:
    status = json.loads((system.data_dir / "supervisor.json").read_text())
    assert status["state"] == "up", status
    assert [
        (w["name"], w["restarts"], w["exits"])
        for w in status["workers"]
        if w["restarts"] or w["exits"]
    ] == []
    assert not [line for line in system.output if "exited with" in line]


def the_shop_goes_on(system: System, client: httpx.Client, customer: str) -> None:
    """Another customer's ordinary order completes, and every worker is the one it was."""
    sku = new_sku(client, 5, 700)
    order = final(client, place(client, order_body([(sku, 1)], customer=customer)))
    assert order["status"] == "COMPLETED", order
    no_worker_restarted(system)


def ordersaga(
    system: System, *args: str, retention_s: float = RETENTION_S
) -> subprocess.CompletedProcess[str]:
    return ordersaga_cli(system, *args, ORDERSAGA_RETENTION_S=str(retention_s))


def escaped(output: str) -> None:
    """Nothing a terminal would act on: no ESC, BEL or other control but newlines."""
    controls = {c for c in output if (ord(c) < 0x20 and c != "\n") or 0x7F <= ord(c) < 0xA0}
    assert not controls, sorted(controls)


# -------------------------------------------------------------- aiokafka's parsing


@pytest.mark.parametrize("topic", [ORDERS_COMMANDS, PAYMENTS_COMMANDS])
def test_a_header_key_that_is_not_utf8_is_parked_and_the_group_goes_on(
    system: System, client: httpx.Client, victim: str, topic: str
) -> None:
    order_id = f"ord_hdr{uuid.uuid4().hex[:10]}"
    value = encode(place_order_command(order_id), key=order_id, correlation_id=order_id).value
    raw_key = b"\xff\x1b]0;pwned\x07\x1b[2J"
    partition, offset = produce_raw_header_key(system, topic, value, order_id, raw_key)

    dead = dead_letter_of(system, topic, partition, offset)
    assert header(dead, "dlq.error") == "header key is not UTF-8: \\xff\\x1b]0;pwned\\x07\\x1b[2J"
    assert header(dead, "dlq.topic") == topic
    assert dead.value == value and dead.key == order_id.encode()
    assert ("\\xff\\x1b]0;pwned\\x07\\x1b[2J", b"x") in [tuple(h) for h in dead.headers]
    the_shop_goes_on(system, client, victim)

    # The operator's tools read the same record and print it escaped.
    tail = ordersaga(system, "tail", topic)
    assert tail.returncode == 0, tail.stderr
    assert f"p{partition}@{offset} " in tail.stdout
    assert "unreadable: header key is not UTF-8: \\xff\\x1b]0;pwned" in tail.stdout
    escaped(tail.stdout)
    listed = ordersaga(system, "dlq", "list", topic)
    assert listed.returncode == 0, listed.stderr
    assert f"from={topic}[{partition}]@{offset}" in listed.stdout
    escaped(listed.stdout)


# ------------------------------------------------------------------- Faust's key


def test_a_key_faust_cannot_decode_is_parked_and_the_group_goes_on(
    system: System, client: httpx.Client, victim: str
) -> None:
    order_id = f"ord_key{uuid.uuid4().hex[:10]}"
    encoded = encode(place_order_command(order_id), key=order_id, correlation_id=order_id)
    key = b"\xfe\xff\x1b[31m"
    partition, offset = produce(
        system, ORDERS_COMMANDS, encoded.value, key=key, headers=encoded.headers
    )

    dead = dead_letter_of(system, ORDERS_COMMANDS, partition, offset)
    assert header(dead, "dlq.error") == "key is not UTF-8: \\xfe\\xff\\x1b[31m"
    assert dead.key == key and dead.value == encoded.value
    the_shop_goes_on(system, client, victim)
    assert client.get(f"/orders/{order_id}").status_code == 404

    tail = ordersaga(system, "dlq", "list", ORDERS_COMMANDS)
    assert tail.returncode == 0, tail.stderr
    assert "key=\\xfe\\xff\\x1b[31m" in tail.stdout
    escaped(tail.stdout)


# ------------------------------------------------------------------ the size limit


def test_a_value_over_the_producers_limit_is_parked_as_a_stub(
    system: System, client: httpx.Client, victim: str
) -> None:
    # Under the broker's limit (1 MiB and a little), over the workers' producer's
    # (1,000,000 bytes): the dead letter of it once failed its own send.
    value = b"\x1b[31m" + b"x" * 1_020_000
    partition, offset = produce(
        system,
        PAYMENTS_COMMANDS,
        value,
        key=b"ord_big",
        headers=[("type", b"ChargePayment")],
        max_request_size=2 * 1024 * 1024,
    )

    dead = dead_letter_of(system, PAYMENTS_COMMANDS, partition, offset)
    stub = orjson.loads(dead.value)
    assert (stub["topic"], stub["partition"], stub["offset"]) == (
        PAYMENTS_COMMANDS,
        partition,
        offset,
    )
    assert stub["size"] >= len(value) and stub["reason"].startswith("not JSON")
    assert int(header(dead, "dlq.cut")) == stub["size"]
    the_shop_goes_on(system, client, victim)

    listed = ordersaga(system, "dlq", "list", PAYMENTS_COMMANDS)
    assert listed.returncode == 0, listed.stderr
    assert f"cut: a stub for a record of {stub['size']} bytes" in listed.stdout
    escaped(listed.stdout)


# -------------------------------------------------------------------- the envelope


def _with(encoded_value: bytes, change: Any) -> bytes:
    raw = orjson.loads(encoded_value)
    change(raw)
    return orjson.dumps(raw)


def _version_2(raw: dict[str, Any]) -> None:
    # A breaking version 2 (a required field renamed): an additive one would be read.
    raw["version"] = 2
    raw["payload"]["token"] = raw["payload"].pop("payment_token")


def _headers_of(value: bytes, headers: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """``headers`` with the ``version`` the body says, as its producer would write it."""
    version = str(orjson.loads(value)["version"]).encode()
    return [(k, version if k == "version" else v) for k, v in headers]


def _quantity_as_text(raw: dict[str, Any]) -> None:
    raw["payload"]["items"][0]["quantity"] = "5"


@pytest.mark.parametrize(
    ("change", "type_header", "reason"),
    [
        (_version_2, b"PlaceOrder", "unknown version 2 of PlaceOrder"),
        (
            None,
            b"CancelOrder",
            "type header 'CancelOrder' disagrees with the body's type 'PlaceOrder'",
        ),
        (
            _quantity_as_text,
            b"PlaceOrder",
            "bad PlaceOrder payload: items.0.quantity: Input should be a valid integer",
        ),
    ],
    ids=["unknown-version", "type-header-disagrees", "string-for-int"],
)
def test_an_envelope_the_strict_decoder_refuses_is_parked_and_never_runs(
    system: System,
    client: httpx.Client,
    victim: str,
    change: Any,
    type_header: bytes,
    reason: str,
) -> None:
    sku = new_sku(client, 5, 700)
    order_id = f"ord_env{uuid.uuid4().hex[:10]}"
    encoded = encode(place_order_command(order_id, sku), key=order_id, correlation_id=order_id)
    value = _with(encoded.value, change) if change else encoded.value
    headers = [
        (k, type_header if k == "type" else v) for k, v in _headers_of(value, encoded.headers)
    ]
    partition, offset = produce(
        system, ORDERS_COMMANDS, value, key=order_id.encode(), headers=headers
    )

    dead = dead_letter_of(system, ORDERS_COMMANDS, partition, offset)
    assert header(dead, "dlq.error").startswith(reason), header(dead, "dlq.error")
    assert dead.value == value
    the_shop_goes_on(system, client, victim)
    # The refused order never ran: nothing reserved, no view of it.
    assert client.get(f"/orders/{order_id}").status_code == 404
    assert client.get(f"/inventory/{sku}").json()["available"] == 5


def test_a_newer_releases_place_order_with_fields_added_runs_to_completion(
    system: System, client: httpx.Client, victim: str
) -> None:
    """A rolling upgrade: a newer producer added fields (and bumped the version); it runs."""
    sku = new_sku(client, 5, 700)
    order_id = f"ord_new{uuid.uuid4().hex[:10]}"
    command = place_order_command(order_id, sku).model_copy(update={"customer_id": victim})
    encoded = encode(command, key=order_id, correlation_id=order_id)

    def newer(raw: dict[str, Any]) -> None:
        raw["version"] = 2
        raw["tenant"] = "eu-1"
        raw["payload"]["gift_note"] = "happy birthday"
        raw["payload"]["items"][0]["gift_wrap"] = True
        raw["payload"]["shipping_address"]["line2"] = "Flat 4"

    value = _with(encoded.value, newer)
    produce(
        system,
        ORDERS_COMMANDS,
        value,
        key=order_id.encode(),
        headers=_headers_of(value, encoded.headers),
    )

    # Produced straight to the topic: the web view knows the order once it ran.
    wait_for(lambda: client.get(f"/orders/{order_id}").status_code == 200, timeout=60)
    order = final(client, order_id)
    assert order["status"] == "COMPLETED", order
    assert order["items"] == [{"sku": sku, "quantity": 1}]
    event_id = dict(encoded.headers)["event_id"].decode()
    assert dead_letters_of(system, event_id, but="") == []
    the_shop_goes_on(system, client, victim)


# ----------------------------------------------------------------- dlq replay


@pytest.fixture
def parked(system: System) -> Iterator[tuple[int, int, float, str]]:
    """A fresh dead letter on orders.commands (a PlaceOrder of an unknown version)."""
    order_id = f"ord_rep{uuid.uuid4().hex[:10]}"
    encoded = encode(place_order_command(order_id), key=order_id, correlation_id=order_id)
    value = _with(encoded.value, _version_2)
    produced_at = time.time()
    partition, offset = produce(
        system,
        ORDERS_COMMANDS,
        value,
        key=order_id.encode(),
        headers=_headers_of(value, encoded.headers),
    )
    dead = dead_letter_of(system, ORDERS_COMMANDS, partition, offset)
    yield dead.partition, dead.offset, produced_at, header(dead, "event_id")


def test_dlq_replay_must_be_chosen_replays_once_and_refuses_what_is_too_old(
    system: System, client: httpx.Client, victim: str, parked: tuple[int, int, float, str]
) -> None:
    dlq_partition, dlq_offset, produced_at, event_id = parked
    everything = ordersaga(system, "dlq", "replay", ORDERS_COMMANDS)
    assert everything.returncode == 2
    assert "--id" in everything.stderr and "--since" in everything.stderr

    chosen = f"{dlq_partition}:{dlq_offset}"
    first = ordersaga(system, "dlq", "replay", ORDERS_COMMANDS, "--id", chosen)
    assert first.returncode == 0, first.stderr
    assert "replayed 1 message(s) onto orders.commands" in first.stdout, first.stdout
    assert f"replayed {chosen}" in first.stdout

    again = ordersaga(system, "dlq", "replay", ORDERS_COMMANDS, "--id", chosen)
    assert again.returncode == 0, again.stderr
    assert "replayed 0 message(s)" in again.stdout, again.stdout
    assert f"skipped {chosen} (id {event_id}): replayed before" in again.stdout
    # Still poison, the replayed copy is parked again: a new dead letter of the same
    # message, which no run replays either.
    [copy] = wait_for(lambda: dead_letters_of(system, event_id, but=chosen), timeout=60)
    recopy = ordersaga(system, "dlq", "replay", ORDERS_COMMANDS, "--id", copy)
    assert "replayed 0 message(s)" in recopy.stdout, recopy.stdout
    assert f"skipped {copy} (id {event_id}): replayed before" in recopy.stdout

    # Once older than the retention, no dead letter is replayed, chosen or not.
    wait_for(lambda: time.time() - produced_at > SHORT_RETENTION_S + 1, timeout=30)
    late = ordersaga(
        system, "dlq", "replay", ORDERS_COMMANDS, "--since", "1h", retention_s=SHORT_RETENTION_S
    )
    assert late.returncode == 0, late.stderr
    assert f"refused {chosen} (id {event_id}): " in late.stdout
    assert "older than the retention (5 s)" in late.stdout
    assert "replayed 0 message(s)" in late.stdout, late.stdout
    the_shop_goes_on(system, client, victim)


def dead_letters_of(system: System, event_id: str, but: str) -> list[str]:
    """Where the dead letters of the message ``event_id`` are, but the one at ``but``."""
    return [
        f"{r.partition}:{r.offset}"
        for r in asyncio.run(read_topic(system.bootstrap, dlq_topic(ORDERS_COMMANDS)))
        if ("event_id", event_id.encode()) in [tuple(h) for h in r.headers]
        and f"{r.partition}:{r.offset}" != but
    ]
