"""One app of the bare-Faust chain (``ordersaga.ops.faustchain``): pass-through agents only.

Started as ``faust -A ordersaga.ops.faustchain_app worker`` by the bench, with
the workers' settings in the environment and three variables of its own:
``ORDERSAGA_CHAIN_GROUP`` (the agent group whose place it takes: its app is
``ordersaga-chain-<group>``, made by ``make_app`` like the group's),
``ORDERSAGA_CHAIN_HOPS`` (the hops it consumes, comma-separated: hop ``i``
reads ``<prefix>i`` and sends each message on to ``<prefix>i+1``, same key and
value) and ``ORDERSAGA_CHAIN_PREFIX``. With ``ORDERSAGA_CHAIN_SINK`` it also
reads the last topic and does nothing with it, as the web view and the
notifications read the events of every saga. No tables, no decoding, no Node:
what is left is Faust's own cost per message.
"""

from __future__ import annotations

import functools
import os
from typing import Any

import faust
from faust.types import StreamT

from ordersaga.config.settings import get_settings
from ordersaga.shell.direct_delivery import deliver_directly
from ordersaga.shell.faust_app import make_app
from ordersaga.shell.groups import group
from ordersaga.topology import Participant

GROUP_ENV = "ORDERSAGA_CHAIN_GROUP"
HOPS_ENV = "ORDERSAGA_CHAIN_HOPS"
PREFIX_ENV = "ORDERSAGA_CHAIN_PREFIX"
SINK_ENV = "ORDERSAGA_CHAIN_SINK"
LAST_ENV = "ORDERSAGA_CHAIN_LAST"


def chain_group(name: str) -> Participant:
    """The chain's stand-in for group ``name``: its own app id (consumer group), same port."""
    real = group(name)
    return Participant(
        name=f"chain-{real.name}",
        module=__name__,
        port_offset=real.port_offset,
        summary=f"bare-Faust chain in {real.name}'s place",
    )


def build(group_name: str, hops: list[int], prefix: str, last: int, sink: bool) -> faust.App:
    """The app of one chain process: an agent per hop it consumes (and the sink reader)."""
    settings = get_settings()
    app = make_app(chain_group(group_name), settings)

    def topic(index: int) -> Any:
        return app.topic(
            f"{prefix}{index}",
            key_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
            partitions=settings.partitions,
        )

    for hop in hops:
        out = topic(hop + 1)

        async def forward(stream: StreamT, out: Any = out, hop: int = hop) -> None:
            async def handle(event: Any) -> None:
                await out.send(key=event.key, value=event.value)

            # As the ordersaga agents do (Node.consume): the same path per record.
            deliver_directly(app, f"hop-{hop}", stream.channel, handle)
            async for event in stream.events():
                await handle(event)

        app.agent(topic(hop), name=f"hop-{hop}")(forward)
    if sink:

        async def read(stream: StreamT) -> None:
            async def handle(event: Any) -> None:
                return None

            deliver_directly(app, "sink", stream.channel, handle)
            async for event in stream.events():
                await handle(event)

        app.agent(topic(last), name="sink")(read)
    return app


@functools.cache
def from_environment() -> faust.App:
    """The app the environment describes (what ``faust -A`` runs)."""
    return build(
        os.environ.get(GROUP_ENV, "orders"),
        [int(h) for h in os.environ.get(HOPS_ENV, "").split(",") if h],
        os.environ.get(PREFIX_ENV, "fchain."),
        int(os.environ.get(LAST_ENV, "13")),
        bool(os.environ.get(SINK_ENV)),
    )


def __getattr__(name: str) -> Any:
    # ``faust -A`` looks up ``app``; built on first use, so importing this module
    # for its names (the bench does) makes no app and no data dir.
    if name == "app":
        return from_environment()
    raise AttributeError(name)
