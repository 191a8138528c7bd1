"""``ordersaga dlq``: inspect and re-drive dead letters."""

from __future__ import annotations

from aiokafka import AIOKafkaProducer

from ordersaga.app.topics import dlq_topic
from ordersaga.ops.tail import records

DLQ_HEADER_PREFIX = "dlq."


def _topics(topic: str) -> tuple[str, str]:
    source = topic.removesuffix(".dlq")
    return source, dlq_topic(source)


async def list_dead_letters(bootstrap: str, topic: str) -> int:
    """Print each dead letter of ``topic``: where it sat, why, and its key and id."""
    _, dlq = _topics(topic)
    count = 0
    async for r in records(bootstrap, dlq):
        headers = {k: v.decode(errors="replace") for k, v in r.headers or ()}
        count += 1
        print(
            f"{r.partition}:{r.offset}  key={(r.key or b'-').decode(errors='replace')}  "
            f"id={headers.get('event_id', '-')}  type={headers.get('type', '-')}  "
            f"attempts={headers.get('dlq.attempts', '?')}  "
            f"from={headers.get('dlq.topic', '?')}[{headers.get('dlq.partition', '?')}]"
            f"@{headers.get('dlq.offset', '?')}\n    error: {headers.get('dlq.error', '?')}"
        )
    print(f"{count} dead letter(s) on {dlq}")
    return 0


async def replay_dead_letters(bootstrap: str, topic: str, ids: set[str]) -> int:
    """Re-send dead letters (all, or those whose event id or P:OFFSET is in ``ids``)."""
    source, dlq = _topics(topic)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    replayed = 0
    try:
        async for r in records(bootstrap, dlq):
            headers = [(k, v) for k, v in r.headers or () if not k.startswith(DLQ_HEADER_PREFIX)]
            event_id = dict(headers).get("event_id", b"").decode(errors="replace")
            if ids and event_id not in ids and f"{r.partition}:{r.offset}" not in ids:
                continue
            await producer.send_and_wait(source, r.value, key=r.key, headers=headers)
            replayed += 1
    finally:
        await producer.stop()
    return replayed
