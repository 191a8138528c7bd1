"""Faust probe app for lost table updates under SIGKILL.

Run by run_probe.py as ``python -m faust -A probe_app worker ...``.

Environment:
  PROBE_BROKER   kafka://127.0.0.1:PORT (required)
  PROBE_APP_ID   Faust app id (default "lostprobe")
  PROBE_DATADIR  Faust datadir (default /tmp/lostprobe-data)
  FIX=1          apply ordersaga.shell.patches.drain_producer_buffer_before_commit()
  PROBE_INSTRUMENT=1  (default) at every offset commit print
                 "PROBE COMMIT exposed=<n> unsent=<m> ...": exposed = writes put in
                 the ProducerBuffer before the commit began but not yet handed to
                 the Kafka client when the offsets go to the broker (the window the
                 hypothesis is about); unsent also counts writes put meanwhile by
                 the still-running agent (an upper bound). Also "PROBE FIRST/JUMP"
                 when a partition's processing in this process does not continue
                 at the next offset. Counting only; flush is not changed.

Source topic ``probe-src`` (4 partitions): key ``k<j>`` (raw str),
value JSON ``{"i": <global seq>, "s": <per-key seq>}``.

Tables (all JSON keys/values in their changelogs, written from the source
event's partition):
  counts[key]        += 1 for every processed message (the measured figure)
  last_offset[part]  max source offset processed in that partition
  ledger[key]        {"last": per-key seq last seen, "replays": n, "gaps": n}
                     on each message: s <= last -> replay (duplicate),
                     s > last + 1 -> gap of (s - last - 1) messages whose
                     table updates vanished (lost) although the consumer
                     had moved past them.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import faust

log = logging.getLogger("probe")

FIX = os.environ.get("FIX", "0") == "1"
APPLIED: list[str] = []

if FIX:
    # Fail loudly if the fix is missing: a FIX=1 run without it is meaningless.
    from ordersaga.shell.patches import drain_producer_buffer_before_commit

    drain_producer_buffer_before_commit()
    APPLIED.append("drain_producer_buffer_before_commit")

try:
    from ordersaga.shell.patches import tune_fetch_wait
except ImportError:  # pragma: no cover - optional
    tune_fetch_wait = None
if tune_fetch_wait is not None:
    tune_fetch_wait(20)
    APPLIED.append("tune_fetch_wait(20)")


def _instrument() -> None:
    """Count buffer puts/hand-overs; report the unsent count at each commit."""
    from faust.transport.consumer import ThreadDelegateConsumer
    from faust.transport.producer import ProducerBuffer

    put0, send0 = ProducerBuffer.put, ProducerBuffer._send_pending
    commit0 = ThreadDelegateConsumer._commit

    def put(self, fut):
        self._probe_put = getattr(self, "_probe_put", 0) + 1
        return put0(self, fut)

    async def send_pending(self, fut):
        try:
            return await send0(self, fut)
        finally:
            self._probe_handed = getattr(self, "_probe_handed", 0) + 1

    commit_offsets0 = ThreadDelegateConsumer._commit_offsets

    async def commit_offsets(self, offsets, *args, **kwargs):
        # Every write put before this point belongs to an event at or below the
        # offsets being committed or later; all of those must be handed over
        # before the commit reaches the broker.
        self._probe_put_at_start = getattr(self.app.producer.buffer, "_probe_put", 0)
        return await commit_offsets0(self, offsets, *args, **kwargs)

    async def commit(self, offsets):
        buf = self.app.producer.buffer
        handed = getattr(buf, "_probe_handed", 0)
        unsent = getattr(buf, "_probe_put", 0) - handed
        # exposed: writes put BEFORE this commit started that were still not
        # handed to the Kafka client when the offsets went out -- the window.
        exposed = max(0, getattr(self, "_probe_put_at_start", 0) - handed)
        offs = {f"{tp.topic[-3:]}/{tp.partition}": o for tp, o in offsets.items()}
        print(
            f"PROBE COMMIT exposed={exposed} unsent={unsent} queued={buf.size} offsets={offs}",
            flush=True,
        )
        return await commit0(self, offsets)

    ProducerBuffer.put = put
    ProducerBuffer._send_pending = send_pending
    ThreadDelegateConsumer._commit_offsets = commit_offsets
    ThreadDelegateConsumer._commit = commit
    APPLIED.append("instrument")


if os.environ.get("PROBE_INSTRUMENT", "1") == "1":
    _instrument()

DATADIR = os.environ.get("PROBE_DATADIR", "/tmp/lostprobe-data")
Path(DATADIR).mkdir(parents=True, exist_ok=True)

app = faust.App(
    os.environ.get("PROBE_APP_ID", "lostprobe"),
    broker=os.environ["PROBE_BROKER"],
    store="memory://",
    autodiscover=False,
    topic_partitions=4,
    topic_replication_factor=1,
    topic_allow_declare=True,
    key_serializer="raw",
    value_serializer="raw",
    broker_rebalance_timeout=3,
    broker_session_timeout=6,
    broker_heartbeat_interval=1,
    consumer_auto_offset_reset="earliest",
    producer_acks=-1,
    table_standby_replicas=0,  # as ordersaga's make_app
    web_enabled=True,
    datadir=DATADIR,
)

src = app.topic(
    "probe-src", key_type=str, key_serializer="raw", value_serializer="raw", partitions=4
)

_table_kw = dict(partitions=4, key_type=str)  # tables serialize keys/values as JSON
counts = app.Table("counts", default=int, **_table_kw)
last_offset = app.Table("last_offset", default=lambda: -1, **_table_kw)
ledger = app.Table("ledger", default=dict, **_table_kw)


_last_in_process: dict[int, int] = {}


def _track_position(msg) -> None:
    """Report when this process's processing of a partition does not continue
    at the next offset: FIRST (first message of a partition in this process)
    and JUMP (offset != previous + 1), with the consumer's committed and read
    offsets at that moment. A JUMP forward over unprocessed offsets is a skip."""
    part, off = msg.partition, msg.offset
    prev = _last_in_process.get(part)
    if prev is None or off != prev + 1:
        consumer = app.consumer
        tp = msg.tp
        committed = consumer._committed_offset.get(tp)
        read = consumer._read_offset.get(tp)
        kind = "FIRST" if prev is None else "JUMP"
        print(
            f"PROBE {kind} p={part} prev={prev} offset={off} committed={committed} "
            f"read_offset={read}",
            flush=True,
        )
    _last_in_process[part] = off


@app.agent(src)
async def count(stream):
    async for event in stream.events():
        _track_position(event.message)
        key = event.key if isinstance(event.key, str) else event.key.decode()
        body = json.loads(event.value)
        seq = int(body["s"])
        msg = event.message

        counts[key] += 1

        entry = dict(ledger[key]) or {"last": -1, "replays": 0, "gaps": 0}
        last = entry["last"]
        if seq <= last:
            entry["replays"] += 1
        else:
            if seq > last + 1:
                entry["gaps"] += seq - last - 1
                print(
                    f"PROBE GAP key={key} last_seq={last} got_seq={seq} "
                    f"tp={msg.topic}/{msg.partition} offset={msg.offset}",
                    flush=True,
                )
            entry["last"] = seq
        ledger[key] = entry

        p = str(msg.partition)
        if msg.offset > last_offset[p]:
            last_offset[p] = msg.offset


@app.task
async def announce() -> None:
    from faust.transport.producer import ProducerBuffer

    patched = bool(getattr(ProducerBuffer, "_ordersaga_drains", False))  # set by the fix
    print(
        f"PROBE worker up pid={os.getpid()} FIX={int(FIX)} applied={APPLIED} "
        f"buffer_patched={patched}",
        flush=True,
    )
    if patched != FIX:
        raise SystemExit(f"ProducerBuffer patched={patched} but FIX={int(FIX)}")
