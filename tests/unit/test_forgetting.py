"""Which sagas are forgotten, and how the ForgetOrders batches are cut."""

from __future__ import annotations

from datetime import UTC, datetime

from aiokafka.partitioner import DefaultPartitioner

from ordersaga.saga.orchestrator import forget_batches, forgettable
from ordersaga.schemas.status import SagaStatus
from ordersaga.shell.topics import partition_of

ENDED = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)


def saga(status: str) -> dict[str, str]:
    return {"status": status, "updated_at": ENDED.isoformat()}


def test_only_sagas_ended_at_least_the_retention_ago_are_forgettable() -> None:
    t = ENDED.timestamp()
    for status in SagaStatus:
        ended = status.value in {"COMPLETED", "FAILED", "CANCELLED"}
        assert forgettable(saga(status.value), t + 60, 60) is ended
        assert forgettable(saga(status.value), t + 59.9, 60) is False


def test_batches_group_ids_by_partition_and_cap_their_size() -> None:
    ids = [f"ord-{i}" for i in range(25)]
    batches = forget_batches(ids, lambda key: int(key.split("-")[1]) % 3, 4)
    assert all(len(batch) <= 4 for _, batch in batches)
    assert sorted(i for _, batch in batches for i in batch) == sorted(ids)
    for partition, batch in batches:
        assert {int(i.split("-")[1]) % 3 for i in batch} == {partition}
    assert forget_batches([], lambda key: 0, 4) == []


def test_partition_of_matches_the_producers_default_partitioner() -> None:
    partitioner = DefaultPartitioner()
    for n in (1, 4, 7):
        for i in range(200):
            key = f"ord-{i:04d}"
            assert partition_of(key, n) == partitioner(key.encode(), list(range(n)), [])
