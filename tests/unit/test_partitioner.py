"""The remembering partitioner puts every key where aiokafka's default partitioner does."""

from __future__ import annotations

import random

from aiokafka.partitioner import DefaultPartitioner

from ordersaga.shell.faust_app import RememberingPartitioner


def test_same_partition_as_the_default_for_any_key_remembered_or_not() -> None:
    rng = random.Random(21)
    remembering, default = RememberingPartitioner(remembered=16), DefaultPartitioner()
    keys = [rng.randbytes(rng.randrange(0, 40)) for _ in range(500)]
    for key in keys + keys[::-1]:  # the second pass reads hashes back from the cache
        for partitions in ([0], [0, 1, 2, 3], list(range(7))):
            assert remembering(key, partitions, partitions) == default(key, partitions, partitions)


def test_a_keyless_message_goes_to_an_available_partition() -> None:
    assert RememberingPartitioner()(None, [0, 1, 2, 3], [2]) == 2
