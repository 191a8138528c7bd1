"""Each agent group's Faust subscriptions are the topics its declaration says it consumes.

Also for the test-only fraud participant (``fraud_agent``): a step added with its
declaration and its agent is routed, consumed and answered with nothing else written.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import pytest

from ordersaga.schemas.messages import Message
from ordersaga.shell.codec import decode, encode
from ordersaga.shell.node import Node
from ordersaga.topology import TOPOLOGY, Participant, Unrouted
from ordersaga.topology.topics import ORDERS_REPLIES
from tests.agents import fraud_agent
from tests.harness import AGENT_MODULES, ORDER_ID, Outbox
from tests.unit.fraud_step import (
    FRAUD_COMMANDS,
    FRAUD_LIMIT,
    FRAUD_TOPOLOGY,
    CheckFraud,
    FraudCleared,
    FraudSuspected,
)


def subscribed(app: Any) -> set[str]:
    """Every topic some agent of ``app`` reads."""
    return {topic for agent in app.agents.values() for topic in agent.channel.topics}


@pytest.mark.parametrize("participant", FRAUD_TOPOLOGY.participants, ids=lambda p: p.name)
def test_an_apps_subscriptions_are_its_declared_topics(participant: Participant) -> None:
    module = importlib.import_module(participant.module)
    assert subscribed(module.app) == set(participant.consumes)
    assert module.node.group is participant
    assert module.app.conf.id == participant.app_id
    # And its tables are the ones it declares.
    assert {t.name for t in participant.tables} == set(module.app.tables)


def test_every_group_module_is_an_agent_module_of_the_harness() -> None:
    assert {m.__name__ for m in AGENT_MODULES} == {p.module for p in TOPOLOGY.participants}


class Unheard(Message):
    """A message type no participant declares."""

    TYPE = "Unheard"
    order_id: str


async def test_sending_a_type_with_no_route_raises(
    capture: Callable[[Node], Outbox],
) -> None:
    node = importlib.import_module("ordersaga.agents.payments").node
    outbox = capture(node)
    with pytest.raises(Unrouted, match="Unheard"):
        await node.send(Unheard(order_id=ORDER_ID), key=ORDER_ID)
    # The fixture's reply has no route outside its own topology either.
    with pytest.raises(Unrouted, match="FraudCleared"):
        await node.send(FraudCleared(order_id=ORDER_ID), key=ORDER_ID)
    assert outbox.sent == []
    # Given a topic, a message goes there: the route is only the default.
    await node.send(Unheard(order_id=ORDER_ID), key=ORDER_ID, topic=ORDERS_REPLIES)
    assert outbox.topics() == [ORDERS_REPLIES]


@pytest.mark.parametrize(
    ("amount", "answer"), [(500, FraudCleared), (FRAUD_LIMIT + 1, FraudSuspected)]
)
async def test_the_fraud_agent_answers_on_the_orchestrators_replies(
    drive: Callable[[Any, Node], Any],
    capture: Callable[[Node], Outbox],
    amount: int,
    answer: type[Message],
) -> None:
    outbox = capture(fraud_agent.node)
    command = CheckFraud(order_id=ORDER_ID, customer_id="cust-1", amount=amount)
    async with drive(fraud_agent.check_orders, fraud_agent.node) as d:
        await d.put(command, key=ORDER_ID, topic=FRAUD_TOPOLOGY.topic_of(CheckFraud))
    [sent] = outbox.sent
    assert sent.topic == ORDERS_REPLIES
    _, reply = decode(sent.value, sent.headers, types=FRAUD_TOPOLOGY.message_types)
    assert type(reply) is answer and reply.order_id == ORDER_ID


async def test_a_refused_fraud_check_is_answered_with_command_rejected(
    drive: Callable[[Any, Node], Any],
    capture: Callable[[Node], Outbox],
) -> None:
    outbox = capture(fraud_agent.node)
    good = encode(
        CheckFraud(order_id=ORDER_ID, customer_id="c", amount=1),
        key=ORDER_ID,
        correlation_id=ORDER_ID,
    )
    # Valid JSON, an invalid payload: refused for its content, so the saga is told.
    bad = good.value.replace(b'"amount":1', b'"amount":-1')
    async with drive(fraud_agent.check_orders, fraud_agent.node) as d:
        await d.put_raw(bad, key=ORDER_ID, topic=FRAUD_COMMANDS, headers=good.headers)
    rejected = [s for s in outbox.sent if s.topic == ORDERS_REPLIES]
    assert [s.message.TYPE for s in rejected] == ["CommandRejected"]
    assert rejected[0].message.command == "CheckFraud"  # type: ignore[attr-defined]
    assert outbox.on(f"{FRAUD_COMMANDS}.dlq")
