"""What run_probe.py reads back: broker offsets, the changelogs, the source topic, the
workers' logs."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections import Counter
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

# The probe's source topic and its partitions (run_probe.py creates it).
SRC = "probe-src"
PARTITIONS = 4


async def wait_broker(bootstrap: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        try:
            await admin.start()
            await admin.list_topics()
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)
        finally:
            with contextlib.suppress(Exception):
                await admin.close()


async def create_topics(bootstrap: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(SRC, PARTITIONS, 1)])
    finally:
        await admin.close()


async def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await c.start()
    try:
        parts = c.partitions_for_topic(topic)
        if not parts:
            await c._client.force_metadata_update()
            parts = c.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        if not tps:
            return {}
        ends = await c.end_offsets(tps)
        return {tp.partition: off for tp, off in ends.items()}
    finally:
        await c.stop()


async def committed(bootstrap: str, group: str) -> dict[int, int]:
    """The group's committed offsets on probe-src (OffsetFetch via a consumer that
    never joins the group; aiokafka's admin list_consumer_group_offsets fails
    to decode Tansu's answer)."""
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await c.start()
    try:
        out = {}
        for p in range(PARTITIONS):
            off = await c.committed(TopicPartition(SRC, p))
            out[p] = -1 if off is None else off
        return out
    finally:
        await c.stop()


async def read_table(bootstrap: str, topic: str, integrity: dict | None = None) -> dict:
    """Last value per key of a changelog topic (keys/values JSON).

    If ``integrity`` is given, it receives per partition the end offset, the
    number of records read and the offsets missing below the end offset."""
    ends = await end_offsets(bootstrap, topic)
    table: dict = {}
    seen: dict[int, list[int]] = {p: [] for p in ends}
    if not ends:
        return table
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await c.start()
    try:
        tps = [TopicPartition(topic, p) for p in ends]
        c.assign(tps)
        await c.seek_to_beginning(*tps)
        remaining = {tp for tp in tps if ends[tp.partition] > 0}
        deadline = time.monotonic() + 60
        while remaining and time.monotonic() < deadline:
            batch = await c.getmany(timeout_ms=500)
            for tp, msgs in batch.items():
                for m in msgs:
                    seen[tp.partition].append(m.offset)
                    key = json.loads(m.key)
                    if m.value is None:
                        table.pop(key, None)
                    else:
                        table[key] = json.loads(m.value)
                    if m.offset + 1 >= ends[tp.partition]:
                        remaining.discard(tp)
        if remaining:
            raise RuntimeError(f"could not read {topic} to its end: {remaining}")
        if integrity is not None:
            for p, offs in seen.items():
                missing = sorted(set(range(ends[p])) - set(offs))
                integrity[f"{topic}/{p}"] = {
                    "end": ends[p],
                    "read": len(offs),
                    "dup_offsets": len(offs) - len(set(offs)),
                    "missing": len(missing),
                    "missing_sample": missing[:10],
                }
        return table
    finally:
        await c.stop()


async def read_source(bootstrap: str, seen: Counter, keys: Counter, integrity: dict) -> None:
    """Read probe-src fully: count stored records by global seq ``i`` and by key."""
    ends = await end_offsets(bootstrap, SRC)
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await c.start()
    try:
        tps = [TopicPartition(SRC, p) for p in ends]
        c.assign(tps)
        await c.seek_to_beginning(*tps)
        offs: dict[int, list[int]] = {p: [] for p in ends}
        remaining = {tp for tp in tps if ends[tp.partition] > 0}
        deadline = time.monotonic() + 60
        while remaining and time.monotonic() < deadline:
            for tp, msgs in (await c.getmany(timeout_ms=500)).items():
                for m in msgs:
                    offs[tp.partition].append(m.offset)
                    seen[json.loads(m.value)["i"]] += 1
                    keys[m.key.decode()] += 1
                    if m.offset + 1 >= ends[tp.partition]:
                        remaining.discard(tp)
        for p, o in offs.items():
            integrity[p] = {
                "end": ends[p],
                "read": len(o),
                "missing_below_end": len(set(range(ends[p])) - set(o)),
            }
    finally:
        await c.stop()


def analyze_logs(logdir: Path) -> dict:
    """What the workers' logs say: runtime gap detections, commit exposure,
    position anomalies and crash reasons."""
    lines = []
    for p in sorted(logdir.glob("worker-*.log")):
        lines.extend(p.read_text(errors="replace").splitlines())
    gap_lines = []
    crash_reasons: Counter = Counter()
    commits, exposed = [], []
    # Position anomalies: a partition's processing in one process starting
    # past the committed offset the process knows (FIRST) or not continuing at
    # the next offset (JUMP). FIRST with committed=None is not judged.
    jumps_fwd = jumps_back = first_skips = skipped_offsets = 0
    skip_lines = []
    for line in lines:
        m = re.search(r"PROBE GAP key=(\S+) last_seq=(-?\d+) got_seq=(\d+)", line)
        if m:
            gap_lines.append((m.group(1), int(m.group(2)), int(m.group(3))))
        m = re.search(r"Crashed reason=(\w+)", line)
        if m:
            crash_reasons[m.group(1)] += 1
        m = re.search(r"PROBE COMMIT (?:exposed=(\d+) )?unsent=(-?\d+)", line)
        if m:
            commits.append(int(m.group(2)))
            if m.group(1) is not None:
                exposed.append(int(m.group(1)))
        m = re.search(r"PROBE JUMP p=\d+ prev=(\d+) offset=(\d+)", line)
        if m:
            if int(m.group(2)) > int(m.group(1)) + 1:
                jumps_fwd += 1
                skipped_offsets += int(m.group(2)) - int(m.group(1)) - 1
                skip_lines.append(line.strip())
            else:
                jumps_back += 1
        m = re.search(r"PROBE FIRST p=\d+ prev=None offset=(\d+) committed=(\d+)", line)
        if m and int(m.group(1)) > int(m.group(2)):
            first_skips += 1
            skipped_offsets += int(m.group(1)) - int(m.group(2))
            skip_lines.append(line.strip())
    instrumented = any("PROBE FIRST" in ln or "PROBE JUMP" in ln for ln in lines)
    return dict(
        gap_events_logged=len(gap_lines),
        gap_messages_logged=sum(got - last - 1 for _, last, got in gap_lines),
        gap_lines=gap_lines[:50],
        first_past_committed=first_skips if instrumented else None,
        skipped_offsets=skipped_offsets if instrumented else None,
        skip_lines=skip_lines[:20],
        jumps_forward=jumps_fwd if instrumented else None,
        jumps_back=jumps_back if instrumented else None,
        commits_seen=len(commits) if commits else None,
        commits_with_unsent=sum(1 for u in commits if u > 0) if commits else None,
        max_unsent_at_commit=max(commits, default=0) if commits else None,
        commits_exposed=sum(1 for e in exposed if e > 0) if exposed else None,
        max_exposed_at_commit=max(exposed, default=0) if exposed else None,
        crash_reasons=dict(crash_reasons),
    )
