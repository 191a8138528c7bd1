"""The routing is derived from the declarations, and it reaches everyone the saga needs.

Walked for the real topology and for one extended with a step that exists only in
the tests (``fraud_step``): what holds for the one must hold for the other without
a line of the routing written by hand.
"""

from __future__ import annotations

import inspect
from dataclasses import replace

import pytest

from ordersaga.saga.definition import SAGA, Step, Undo
from ordersaga.schemas import heartbeats, messages
from ordersaga.schemas.heartbeats import ServiceHeartbeat
from ordersaga.schemas.messages import (
    CommandRejected,
    ForgetOrders,
    LowStock,
    Message,
    OrderEnded,
    OrderEvent,
    PlaceOrder,
    StepDeadlineExpired,
    StockReserved,
)
from ordersaga.shell import codec, topics
from ordersaga.tables import TABLES
from ordersaga.topology import PARTICIPANTS, TOPOLOGY, Participant, Topology, TopologyError
from ordersaga.topology.topics import NOTIFICATIONS, ORDERS_REPLIES
from tests.unit.fraud_step import (
    CHECK_FRAUD,
    FRAUD,
    FRAUD_COMMANDS,
    FRAUD_LIMIT,
    FRAUD_SAGA,
    FRAUD_TOPOLOGY,
    CheckFraud,
    FraudCleared,
    FraudSuspected,
    check_fraud,
)
from tests.unit.saga_driver import CUSTOMER_ID, PLACE, Saga

TOPOLOGIES = pytest.mark.parametrize(
    "topology", [TOPOLOGY, FRAUD_TOPOLOGY], ids=["saga", "saga+fraud"]
)


def moves(topology: Topology) -> list[tuple[str, str, type[Message]]]:
    """(name, participant, command) of every step and every undo."""
    found: list[tuple[str, str, type[Message]]] = []
    for step in topology.steps:
        found.append((step.name, step.participant, step.command))
        if step.undo is not None:
            found.append((step.undo.name, step.undo.participant, step.undo.command))
    return found


def replies_of(step: Step) -> list[type[Message]]:
    found = [r for r in (step.success, step.failure) if r is not None]
    return found + ([step.undo.done] if step.undo else [])


@TOPOLOGIES
def test_every_command_reaches_the_participant_its_step_names(topology: Topology) -> None:
    for name, group, command in moves(topology):
        declared = topology.participant(group)
        topic = topology.topic_of(command)
        assert command in declared.consumes.get(topic, ()), f"{name}: {group} misses {topic}"
        # Consumed by that group alone: two groups would both act on the command.
        assert topology.consumers(topic) == (group,), name
        assert topology.consuming_group[topic] == group


@TOPOLOGIES
def test_every_reply_reaches_the_orchestrator(topology: Topology) -> None:
    orchestrator = topology.participant(topology.orchestrator)
    for step in topology.steps:
        for reply in replies_of(step):
            topic = topology.topic_of(reply)
            assert topic in orchestrator.consumes, (step.name, reply)
            assert reply in topology.answered(topology.orchestrator, topic)
            # Sent by the participant the step names, which declares it.
            assert reply in topology.participant(step.participant).replies, (step.name, reply)
    for own in (StepDeadlineExpired, CommandRejected):
        assert topology.topic_of(own) == ORDERS_REPLIES


@TOPOLOGIES
def test_the_declarations_agree_with_each_other(topology: Topology) -> None:
    assert topology.problems() == []
    for p in topology.participants:
        assert all(t.group == p.name for t in p.tables)
        # A step participant answers its refused commands, on a topic it consumes.
        if p.reject_on is not None:
            assert topology.carries(p.reject_on, next(iter(p.consumes[p.reject_on])).TYPE)


def test_unanswered_steps_only_end_the_saga_and_never_fail() -> None:
    commit = SAGA[-1]
    assert commit.success is None
    shipment = next(s for s in SAGA if s.name == "prepare_shipment")
    for steps, problem in (
        ((commit, *SAGA[:-1]), "the first step is unanswered"),
        ((*SAGA[:2], commit, *SAGA[2:-1]), "one comes before an answered step"),
        ((*SAGA[:-1], replace(commit, undo=shipment.undo)), "may fail or has an undo"),
    ):
        with pytest.raises(TopologyError, match=problem):
            replace(TOPOLOGY, steps=steps)


@TOPOLOGIES
def test_every_type_is_routed_to_one_topic_consistent_with_its_consumers(
    topology: Topology,
) -> None:
    for p in topology.participants:
        for topic, types in p.consumes.items():
            for t in types:
                assert topology.topic_of(t) == topic, (p.name, t)
    # Nothing routed lands on a topic nobody reads, except what is only published out.
    published_only = {
        topic for topic in topology.routes.values() if topic not in topology.consumed_topics
    }
    assert published_only == {NOTIFICATIONS}
    assert all(topology.consumers(topic) for topic in topology.consumed_topics)


def schema_message_types() -> list[type[Message]]:
    return [
        cls
        for module in (messages, heartbeats)
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if issubclass(cls, Message) and cls is not Message and cls.__module__ == module.__name__
    ]


def test_every_schema_message_is_in_the_codec_registry_exactly_once() -> None:
    declared = schema_message_types()
    assert len({cls.TYPE for cls in declared}) == len(declared)
    assert dict(codec.MESSAGE_TYPES) == {cls.TYPE: cls for cls in declared}
    assert codec.MESSAGE_TYPES is TOPOLOGY.message_types


def test_the_shell_maps_are_the_topology_derived() -> None:
    # The tables' owners and the declarations agree, and every table is declared.
    assert set(TOPOLOGY.tables) == set(TABLES)
    assert len(TOPOLOGY.tables) == len(TABLES)
    assert set(topics.CHANGELOG_TOPICS) == {t.changelog_topic for t in TABLES}
    assert set(topics.ALL_DLQ_TOPICS) == {topics.dlq_topic(t) for t in topics.CONSUMED_TOPICS}
    assert set(topics.ALL_TOPICS) == {*topics.CONSUMED_TOPICS, NOTIFICATIONS}
    # What the orchestrator forgets and who answers refusals, as they were kept by hand.
    assert set(topics.FORGET_TOPICS) == {
        topics.INVENTORY_COMMANDS,
        topics.PAYMENTS_COMMANDS,
        topics.SHIPPING_COMMANDS,
        topics.ORDERS_OUTCOMES,
    }
    assert topics.REJECTION_REPLY_TOPICS == {
        topics.CUSTOMERS_COMMANDS,
        topics.INVENTORY_COMMANDS,
        topics.PAYMENTS_COMMANDS,
        topics.SHIPPING_COMMANDS,
    }
    assert topics.destination(PLACE) == topics.ORDERS_COMMANDS
    assert topics.topic_of(StockReserved) == ORDERS_REPLIES
    assert topics.topic_of(OrderEvent) == topics.ORDERS_EVENTS
    assert topics.topic_of(OrderEnded) == topics.ORDERS_OUTCOMES
    assert topics.topic_of(LowStock) == topics.INVENTORY_ALERTS
    assert topics.topic_of(ServiceHeartbeat) == topics.SERVICES
    # ForgetOrders goes to the orchestrator; it forwards copies to FORGET_TOPICS by name.
    assert topics.topic_of(ForgetOrders) == topics.ORDERS_COMMANDS
    assert not topics.carries(topics.INVENTORY_COMMANDS, ForgetOrders.TYPE)


class Unheard(Message):
    """A message type no participant declares."""

    TYPE = "Unheard"
    order_id: str


def test_a_type_nobody_declares_has_no_route() -> None:
    with pytest.raises(topics.Unrouted, match="Unheard"):
        topics.topic_of(Unheard)
    with pytest.raises(topics.Unrouted, match="Unheard"):
        topics.destination(Unheard(order_id="o"))
    assert not topics.carries(ORDERS_REPLIES, Unheard.TYPE)
    # The fixture's types are routed in its topology only.
    with pytest.raises(topics.Unrouted, match="FraudCleared"):
        topics.topic_of(FraudCleared)


def test_a_type_declared_on_two_topics_is_refused() -> None:
    twice = Participant("twice", "tests.nowhere", 9, "", consumes={"elsewhere": (PlaceOrder,)})
    with pytest.raises(TopologyError, match="PlaceOrder is declared on two topics"):
        Topology(TOPOLOGY.steps, (*PARTICIPANTS, twice))


def test_a_step_its_participant_does_not_take_is_refused() -> None:
    wrong = Step(**{**vars(CHECK_FRAUD), "participant": "payments"})
    with pytest.raises(TopologyError, match="payments does not take CheckFraud"):
        Topology((*TOPOLOGY.steps, wrong), (*PARTICIPANTS, FRAUD))
    unknown = Undo("undo_it", "nobody", CheckFraud, CHECK_FRAUD.build, FraudCleared)
    with pytest.raises(TopologyError, match="'nobody', which is not a declared group"):
        Topology((Step(**{**vars(CHECK_FRAUD), "undo": unknown}),), (*PARTICIPANTS, FRAUD))
    # A participant whose replies nobody reads is refused as well.
    deaf = Participant("deaf", "tests.nowhere", 9, "", replies=(Unheard,), reply_topic="void")
    with pytest.raises(TopologyError, match="deaf's replies go to void"):
        Topology(TOPOLOGY.steps, (*PARTICIPANTS, deaf))


def test_the_fraud_step_is_routed_with_nothing_written_but_its_step_and_participant() -> None:
    assert FRAUD_TOPOLOGY.topic_of(CheckFraud) == FRAUD_COMMANDS
    assert FRAUD_TOPOLOGY.consuming_group[FRAUD_COMMANDS] == "fraud"
    assert FRAUD_TOPOLOGY.topic_of(FraudSuspected) == ORDERS_REPLIES
    assert FraudCleared in FRAUD_TOPOLOGY.answered("orders", ORDERS_REPLIES)
    assert FRAUD_TOPOLOGY.message_types["CheckFraud"] is CheckFraud
    assert FRAUD_COMMANDS in FRAUD_TOPOLOGY.consumed_topics
    assert f"{FRAUD_COMMANDS}.dlq" in FRAUD_TOPOLOGY.dlq_topics
    assert FRAUD_COMMANDS in FRAUD_TOPOLOGY.rejection_reply_topics
    # Everything the real topology routes, it routes the same.
    assert {t: FRAUD_TOPOLOGY.routes[t] for t in TOPOLOGY.routes} == dict(TOPOLOGY.routes)


def fraud_saga() -> Saga:
    saga = Saga(steps=FRAUD_SAGA)
    saga.deliver(PLACE)
    saga.reply("CustomerValidated")
    saga.reply("StockReserved")
    return saga


def test_an_order_cleared_of_fraud_runs_to_completion() -> None:
    saga = fraud_saga()
    check = saga.commands[-1]
    assert isinstance(check, CheckFraud) and check.customer_id == CUSTOMER_ID
    saga.deliver(check_fraud(check))
    for reply in ("PaymentCharged", "ShipmentPrepared"):
        saga.reply(reply)
    assert [type(c).__name__ for c in saga.commands] == [
        "ValidateCustomer",
        "ReserveStock",
        "CheckFraud",
        "ChargePayment",
        "PrepareShipment",
        "CommitStock",
    ]
    assert "FraudCleared" in saga.event_names
    assert saga.event_names[-1] == "OrderCompleted"
    # Every command the decisions sent has a route in the extended topology.
    assert all(FRAUD_TOPOLOGY.topic_of(type(c)) for c in saga.commands)


def test_a_suspected_order_fails_and_its_stock_is_released() -> None:
    saga = fraud_saga()
    check = saga.commands[-1]
    assert isinstance(check, CheckFraud)
    suspected = check_fraud(check.model_copy(update={"amount": FRAUD_LIMIT + 1}))
    assert isinstance(suspected, FraudSuspected)
    saga.deliver(suspected)
    assert saga.state is not None and saga.state.compensating
    assert type(saga.commands[-1]).__name__ == "ReleaseStock"
    saga.reply("StockReleased")
    assert saga.state.status == "FAILED"
    assert saga.state.failure_reason == "invalid_order"
    assert saga.event_names[-1] == "OrderFailed"


def test_a_fraud_check_that_times_out_is_retried_then_compensated() -> None:
    saga = fraud_saga()
    saga.time_out()
    assert type(saga.commands[-1]) is CheckFraud
    for _ in range(saga.policy.step_max_attempts - 1):
        saga.time_out()
    assert saga.state is not None and saga.state.compensating
    assert saga.state.failure_reason == "step_timeout"
    saga.answer_compensations()
    assert saga.event_names[-1] == "OrderFailed"
