"""What a participant declares, and the routing derived from all the declarations.

A :class:`Participant` is one agent group, declared once: its Faust module and
port, the topics it consumes and the message types it answers on each, where
its replies go, what it publishes, its tables, and whether it forgets orders or
answers refused commands. A :class:`Topology` puts the saga's steps and the
participants together and derives every map the shell routes by; a type
declared on two topics, or a step whose participant does not take its command,
raises when the topology is built.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from ordersaga.saga.definition import Step, Undo
from ordersaga.schemas.messages import CommandRejected, Message
from ordersaga.tables import TableSpec
from ordersaga.topology.topics import dlq_topic

Types = tuple[type[Message], ...]


class Unrouted(LookupError):
    """A message type that no declaration routes: sending it would reach nobody."""

    def __init__(self, message_type: type[Message]) -> None:
        super().__init__(
            f"no topic for {message_type.__name__}: no participant declares it "
            "(consumed, replied or published); declare it, or send it to an explicit topic"
        )
        self.message_type = message_type


class TopologyError(ValueError):
    """The declarations disagree: a type on two topics, a step nobody takes, and so on."""


@dataclass(frozen=True, eq=False)
class Participant:
    """One agent group: a Faust app in ``module``, and everything it is wired to."""

    name: str
    module: str
    port_offset: int
    summary: str
    # topic -> the message types this group answers there.
    consumes: Mapping[str, Types] = field(default_factory=dict)
    # The replies it sends to the orchestrator (or to whoever consumes ``reply_topic``).
    replies: Types = ()
    reply_topic: str | None = None
    # topic -> the types this group publishes there (events, notifications).
    publishes: Mapping[str, Types] = field(default_factory=dict)
    tables: tuple[TableSpec[Any], ...] = ()
    # The consumed topic its ForgetOrders arrive on: it keeps per-order state to drop.
    forget_on: str | None = None
    # Its saga command topic: a command refused there for its content is answered
    # with CommandRejected, so its saga fails at once instead of timing out.
    reject_on: str | None = None
    # Off the saga's critical path (no step waits for it, nor any reader of a
    # view): its consumer fetches in larger batches (BrokerSettings.off_path_fetch_*).
    off_critical_path: bool = False
    # The types it sends beyond its replies, publications and saga steps: the web
    # view's commands, a group's messages to itself. Its Kafka ACLs are made from
    # these (ordersaga.topology.acls), so a type missing here is refused by a
    # secured broker.
    also_sends: Types = ()

    @property
    def app_id(self) -> str:
        """The Faust app id, which is also the group's Kafka consumer group id."""
        return f"ordersaga-{self.name}"

    def web_port(self, base_port: int) -> int:
        """The port this group's first worker serves its web view on."""
        return base_port + self.port_offset

    def __hash__(self) -> int:
        return hash(self.name)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Participant) and other.name == self.name

    def sends(self) -> Iterator[tuple[str, type[Message]]]:
        """(topic, type) for every type this declaration routes."""
        for topic, types in (*self.consumes.items(), *self.publishes.items()):
            for t in types:
                yield topic, t
        if self.replies and self.reply_topic is None:
            raise TopologyError(f"{self.name} sends replies but names no reply_topic")
        for t in self.replies:
            yield self.reply_topic or "", t


@dataclass(frozen=True, eq=False)
class Topology:
    """The saga's steps and their participants, with the routing derived from them."""

    steps: tuple[Step, ...]
    participants: tuple[Participant, ...]
    orchestrator: str = "orders"

    def __post_init__(self) -> None:
        names = [p.name for p in self.participants]
        if len(set(names)) != len(names):
            raise TopologyError(f"a group is declared twice: {names}")
        self.routes  # noqa: B018 (conflicts raise when built, not when first sent)
        problems = self.problems()
        if problems:
            raise TopologyError("; ".join(problems))

    # ------------------------------------------------------------ participants

    def participant(self, name: str) -> Participant:
        """The participant called ``name``."""
        for p in self.participants:
            if p.name == name:
                return p
        raise KeyError(name)

    @cached_property
    def group_names(self) -> frozenset[str]:
        return frozenset(p.name for p in self.participants)

    def answered(self, group: str, topic: str) -> Types:
        """The types ``group`` answers on ``topic``; the orchestrator also takes every reply."""
        p = self.participant(group)
        types = p.consumes.get(topic, ())
        if group == self.orchestrator and topic in p.consumes:
            types = (
                *types,
                *(t for q in self.participants if q.reply_topic == topic for t in q.replies),
            )
        return types

    # ------------------------------------------------------------------ routes

    @cached_property
    def routes(self) -> Mapping[type[Message], str]:
        """Each message type -> the one topic it is sent to."""
        routes: dict[type[Message], str] = {}
        for p in self.participants:
            for topic, t in p.sends():
                if routes.setdefault(t, topic) != topic:
                    raise TopologyError(
                        f"{t.__name__} is declared on two topics: {routes[t]} and {topic} "
                        f"(the second by {p.name})"
                    )
        return routes

    def topic_of(self, message_type: type[Message]) -> str:
        """The topic messages of this type go to; raises :class:`Unrouted` when none."""
        try:
            return self.routes[message_type]
        except KeyError:
            raise Unrouted(message_type) from None

    def carries(self, topic: str, type_name: str) -> bool:
        """True when messages of ``type_name`` are sent to ``topic`` (not misrouted there)."""
        return self._topic_of_type.get(type_name) == topic

    @cached_property
    def _topic_of_type(self) -> Mapping[str, str]:
        return {t.TYPE: topic for t, topic in self.routes.items()}

    @cached_property
    def message_types(self) -> Mapping[str, type[Message]]:
        """The codec's registry: type name -> payload model, for every routed type."""
        registry: dict[str, type[Message]] = {}
        for t in self.routes:
            if registry.setdefault(t.TYPE, t) is not t:
                raise TopologyError(f"two message types are called {t.TYPE}")
        return registry

    # ------------------------------------------------------------------ topics

    @cached_property
    def consumed_topics(self) -> tuple[str, ...]:
        """Topics some group consumes (their consumers dead-letter what they cannot handle)."""
        return tuple(dict.fromkeys(t for p in self.participants for t in p.consumes))

    @cached_property
    def all_topics(self) -> tuple[str, ...]:
        """Every topic: the consumed ones, then the ones only written (notifications)."""
        return tuple(dict.fromkeys((*self.consumed_topics, *self.routes.values())))

    @cached_property
    def dlq_topics(self) -> tuple[str, ...]:
        return tuple(dlq_topic(t) for t in self.consumed_topics)

    def consumers(self, topic: str) -> tuple[str, ...]:
        """The groups consuming ``topic``."""
        return tuple(p.name for p in self.participants if topic in p.consumes)

    @cached_property
    def consuming_group(self) -> Mapping[str, str]:
        """Each topic one group alone consumes -> that group (every command topic is one)."""
        return {
            topic: groups[0]
            for topic in self.consumed_topics
            if len(groups := self.consumers(topic)) == 1
        }

    @cached_property
    def rejection_reply_topics(self) -> frozenset[str]:
        return frozenset(p.reject_on for p in self.participants if p.reject_on)

    @cached_property
    def forget_topics(self) -> tuple[str, ...]:
        """Where the orchestrator forwards ForgetOrders: every group keeping per-order state."""
        return tuple(dict.fromkeys(p.forget_on for p in self.participants if p.forget_on))

    @cached_property
    def tables(self) -> tuple[TableSpec[Any], ...]:
        return tuple(t for p in self.participants for t in p.tables)

    @cached_property
    def changelog_topics(self) -> tuple[str, ...]:
        """Every table's changelog topic (created before any worker starts)."""
        return tuple(t.changelog_topic for t in self.tables)

    # ------------------------------------------------------------------ checks

    def problems(self) -> list[str]:
        """Every way the steps and the declarations disagree (none in a sound topology)."""
        found: list[str] = []
        for p in self.participants:
            found += [
                f"table {t.name} is declared by {p.name} but owned by {t.group}"
                for t in p.tables
                if t.group != p.name
            ]
            for what, topic in (("forget_on", p.forget_on), ("reject_on", p.reject_on)):
                if topic is not None and topic not in p.consumes:
                    found.append(f"{p.name}'s {what} {topic} is not a topic it consumes")
            if p.reply_topic is not None and not self.consumers(p.reply_topic):
                found.append(f"{p.name}'s replies go to {p.reply_topic}, which nobody consumes")
        if self.orchestrator not in self.group_names:
            found.append(f"no declaration of the orchestrator {self.orchestrator}")
            return found
        answered = [step.success is not None for step in self.steps]
        # The saga starts by awaiting its first step, and passes unanswered ones at its end.
        if answered and (not answered[0] or answered != sorted(answered, reverse=True)):
            found.append("the first step is unanswered, or one comes before an answered step")
        for step in self.steps:
            found += self._step_problems(step.name, step.participant, step.command)
            if step.success is None and (step.failure is not None or step.undo is not None):
                found.append(f"step {step.name} is not answered but may fail or has an undo")
            found += [
                f"step {step.name}: reply {reply.__name__} does not reach the orchestrator"
                for reply in (step.success, step.failure)
                if reply is not None and not self.reaches_orchestrator(reply)
            ]
            if step.undo is not None:
                found += self._undo_problems(step.undo)
        if CommandRejected not in self.routes and self.rejection_reply_topics:
            found.append("CommandRejected is sent but reaches no topic")
        return found

    def _undo_problems(self, undo: Undo) -> list[str]:
        found = self._step_problems(undo.name, undo.participant, undo.command)
        if not self.reaches_orchestrator(undo.done):
            found.append(f"undo {undo.name}: reply {undo.done.__name__} does not reach it")
        return found

    def _step_problems(self, name: str, group: str, command: type[Message]) -> list[str]:
        if group not in self.group_names:
            return [f"step {name} names {group!r}, which is not a declared group"]
        topic = self.routes.get(command)
        if topic is None:
            return [f"step {name}: {command.__name__} has no route"]
        if command not in self.participant(group).consumes.get(topic, ()):
            return [f"step {name}: {group} does not take {command.__name__} on {topic}"]
        if self.consumers(topic) != (group,):
            return [
                f"step {name}: {topic} is consumed by {self.consumers(topic)}, not {group} alone"
            ]
        return []

    def reaches_orchestrator(self, reply: type[Message]) -> bool:
        """True when ``reply`` is routed to a topic the orchestrator answers it on."""
        topic = self.routes.get(reply)
        return topic is not None and reply in self.answered(self.orchestrator, topic)
