"""What `ordersaga topics --check` calls drift: the pure comparison."""

from __future__ import annotations

from ordersaga.runtime.topic_admin import TopicShape, declared_topics, topic_drift
from ordersaga.shell.topics import CHANGELOG_TOPICS

WANT = {"a": TopicShape(4, 3, {"cleanup.policy": "compact", "min.insync.replicas": "2"})}


def test_a_topic_as_declared_is_no_drift() -> None:
    found = {"a": TopicShape(4, 3, {"cleanup.policy": "compact", "min.insync.replicas": "2"})}
    assert topic_drift(WANT, found) == []


def test_other_topics_and_undeclared_configs_are_not_drift() -> None:
    found = {
        "a": TopicShape(4, 3, {"cleanup.policy": "compact", "min.insync.replicas": "2", "x": "1"}),
        "someone-elses": TopicShape(1, 1),
    }
    assert topic_drift(WANT, found) == []


def test_each_difference_is_one_line() -> None:
    found = {"a": TopicShape(2, 1, {"cleanup.policy": "delete"})}
    assert topic_drift(WANT, found) == [
        "a: 2 partitions, declared 4",
        "a: replication factor 1, declared 3",
        "a: cleanup.policy=delete, declared compact",
        "a: min.insync.replicas=None, declared 2",
    ]


def test_more_partitions_than_declared_is_drift_too() -> None:
    found = {"a": TopicShape(8, 3, dict(WANT["a"].configs))}
    assert topic_drift(WANT, found) == ["a: 8 partitions, declared 4"]


def test_a_missing_topic_is_one_line() -> None:
    assert topic_drift(WANT, {}) == ["a: missing"]


def test_the_declarations_follow_the_settings() -> None:
    declared = declared_topics(6, replication=3, retention_ms=1000)
    assert {shape.partitions for shape in declared.values()} == {6}
    assert {shape.replication for shape in declared.values()} == {3}
    assert all(declared[t].configs["cleanup.policy"] == "compact" for t in CHANGELOG_TOPICS)
    assert all(shape.configs["min.insync.replicas"] == "2" for shape in declared.values())
    assert declared["orders.commands"].configs["retention.ms"] == "1000"
