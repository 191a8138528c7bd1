"""Each agent group's Kafka ACLs, derived from the declarations: least privilege per group.

A group runs as the Kafka user named like its consumer group (``ordersaga-orders``)
and may, on a broker that enforces ACLs:

- read (and describe) the topics it consumes, and join its own consumer group;
- write the topics its declaration says it sends to: its replies, its publications,
  the commands of the saga's steps (the orchestrator), ``also_sends``; the
  dead-letter topics of what it consumes; its tables' changelogs; the registry;
- create those topics, because Faust declares every topic it uses when it starts
  (CreateTopics on an existing topic changes nothing; the topics are made
  beforehand by ``ordersaga topics --create`` or by Strimzi);
- describe what its probes look at: the orchestrator the step participants' groups
  and command topics, the web view the dead-letter topics.

Nothing else: a group cannot write another's topics, read another's changelog or
commit another's offsets. Pure: the broker is told these by ``ordersaga.runtime``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from ordersaga.topology.model import Topology
from ordersaga.topology.topics import SERVICES, dlq_topic


class Resource(IntEnum):
    """Kafka's AclResourceType codes."""

    TOPIC = 2
    GROUP = 3


class Operation(IntEnum):
    """Kafka's AclOperation codes."""

    READ = 3
    WRITE = 4
    CREATE = 5
    DESCRIBE = 8


@dataclass(frozen=True, order=True)
class Acl:
    """One allow rule: ``principal`` may ``operation`` the resource named exactly ``name``."""

    principal: str
    resource: Resource
    name: str
    operation: Operation


def principal(group: str) -> str:
    """The Kafka principal a group's workers authenticate as."""
    return f"User:ordersaga-{group}"


def written_topics(topology: Topology, group: str) -> tuple[str, ...]:
    """Every topic ``group`` sends to, by its declaration (changelogs aside)."""
    p = topology.participant(group)
    topics = [*p.publishes, *(topology.topic_of(t) for t in p.also_sends)]
    if p.reply_topic:
        topics.append(p.reply_topic)
    if group == topology.orchestrator:
        for step in topology.steps:
            commands = [step.command, step.direct]
            if step.undo is not None:
                commands += [step.undo.command, step.undo.direct]
            topics += [topology.topic_of(c) for c in commands if c is not None]
        topics += topology.forget_topics
    topics += [dlq_topic(t) for t in p.consumes]
    # Every worker heartbeats into the registry (ordersaga.shell.heartbeat).
    topics.append(SERVICES)
    return tuple(dict.fromkeys(topics))


def group_acls(topology: Topology, group: str) -> list[Acl]:
    """The ACLs of one group's user, sorted."""
    p = topology.participant(group)
    who = principal(group)
    rules: set[Acl] = {
        Acl(who, Resource.GROUP, p.app_id, Operation.READ),
        Acl(who, Resource.GROUP, p.app_id, Operation.DESCRIBE),
    }
    readable = set(p.consumes)
    writable = set(written_topics(topology, group))
    changelogs = {t.changelog_topic for t in p.tables}
    described: set[str] = set()
    if group == topology.orchestrator:
        # Its queue probe reads where each participant's group stands on its commands.
        for step in topology.steps:
            participant = topology.participant(step.participant)
            rules.add(Acl(who, Resource.GROUP, participant.app_id, Operation.DESCRIBE))
            readable.add(topology.topic_of(step.command))
    if group == "webview":
        # The page counts each dead-letter topic's messages.
        described |= set(topology.dlq_topics)
    for topic in readable | changelogs:
        rules.add(Acl(who, Resource.TOPIC, topic, Operation.READ))
    for topic in writable | changelogs:
        rules.add(Acl(who, Resource.TOPIC, topic, Operation.WRITE))
    for topic in readable | writable | changelogs:
        rules.add(Acl(who, Resource.TOPIC, topic, Operation.CREATE))
    for topic in readable | writable | changelogs | described:
        rules.add(Acl(who, Resource.TOPIC, topic, Operation.DESCRIBE))
    return sorted(rules)


def all_acls(topology: Topology) -> list[Acl]:
    """Every group's ACLs."""
    return [acl for p in topology.participants for acl in group_acls(topology, p.name)]
