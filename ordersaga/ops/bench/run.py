"""One ``ordersaga bench`` run: the system up, each phase in turn, the result written, all stopped.

``run_bench`` runs the phases (``ordersaga.ops.bench.phases``) in the order the
package docstring describes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
from aiokafka.errors import KafkaError
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from ordersaga.config.settings import Settings, get_settings
from ordersaga.ops.bench.config import BenchConfig
from ordersaga.ops.bench.phases import (
    Target,
    audit_phase,
    load_phases,
    rss_phase,
    target_config,
)
from ordersaga.ops.bench.probes import machine_info, partitions_of
from ordersaga.ops.bench.report import default_out_path, format_summary
from ordersaga.runtime.system import Runtime, free_port_block
from ordersaga.shell.groups import GROUPS
from ordersaga.shell.topics import ORDERS_COMMANDS

# What the bench's own consumers ask of a fetch when nothing says otherwise: the
# embedded profile's value, so the closed loop is not held back by fetch waits.
DEFAULT_FETCH_WAIT_MS = 20


# ------------------------------------------------------- the system under test


def _embedded_settings(cfg: BenchConfig, data_dir: str) -> Settings:
    """The settings of a fresh system on free ports in a fresh dir (the workers get them too)."""
    # Group ports base+0..5, +100 per extra worker; then the broker, its KRaft
    # controller (Apache Kafka takes the broker's port + 1) and Redis.
    span = (cfg.workers - 1) * 100 + len(GROUPS)
    base = free_port_block(span + 3)
    settings = get_settings()
    update: dict[str, object] = {
        "data_dir": data_dir,
        "web_port": base,
        "embedded_kafka_port": base + span,
        "embedded_redis_port": base + span + 2,
        "seed_catalog": False,
        # Always a system of its own, whatever the shell points at.
        "kafka_broker": None,
        "redis_url": None,
    }
    if "log_level" not in settings.model_fields_set:
        # Info logging of six workers costs CPU the bench should measure saga work with.
        update["log_level"] = "warn"
    if "rate_limit_per_s" not in settings.model_fields_set:
        # Every bench order comes from one client: a per-client limit would measure itself.
        update["rate_limit_per_s"] = 0.0
    if "max_sagas_in_flight_per_client" not in settings.model_fields_set:
        # Nor a per-client share of the in-flight limit: the global limit is measured.
        update["max_sagas_in_flight_per_client"] = settings.max_sagas_in_flight
    if "read_rate_limit_per_s" not in settings.model_fields_set:
        update["read_rate_limit_per_s"] = 0.0  # and its reads (long-polls) likewise
    if cfg.retention_s is not None:
        update["retention_s"] = cfg.retention_s
    if cfg.broker is not None:
        update["broker"] = cfg.broker
    return settings.model_copy(update=update)


@dataclass
class Embedded:
    """What the bench started and has to stop.

    Filled in step by step as the system starts, so that a start failing half-way
    is stopped and cleaned up all the same.
    """

    data_dir: str | None = None
    runtime: Runtime | None = None
    supervisor: asyncio.Future[None] | None = None

    async def stop(self, console: Console) -> None:
        """Stop supervising, then the workers and servers."""
        if self.supervisor is not None:
            self.supervisor.cancel()
        if self.runtime is not None:
            console.print("stopping the embedded system ...")
            await self.runtime.stop()

    def discard(self, console: Console, keep_logs: bool) -> None:
        """Remove the data dir, or keep it and say where the worker logs are."""
        if self.data_dir is not None:
            if keep_logs:
                console.print(f"worker logs kept in {self.data_dir}/logs")
            else:
                shutil.rmtree(self.data_dir, ignore_errors=True)


def _web_urls(settings: Settings, workers: int) -> list[str]:
    # Every web view worker of ours takes orders (the others are on +100 each).
    return [f"http://{settings.web_host}:{settings.web_port + k * 100}" for k in range(workers)]


def attach(cfg: BenchConfig) -> Target:
    """The running system that ``KAFKA_BROKER`` and ``ORDERSAGA_WEB_PORT`` point at."""
    settings = get_settings()
    if not settings.kafka_broker:
        raise SystemExit("--attach needs KAFKA_BROKER (and ORDERSAGA_WEB_PORT)")
    fetch_wait = cfg.fetch_wait_ms or (
        settings.fetch_max_wait_ms
        if "fetch_max_wait_ms" in settings.model_fields_set
        else DEFAULT_FETCH_WAIT_MS
    )
    web = _web_urls(settings, 1)
    return Target(settings, settings.bootstrap_servers, fetch_wait, web[0], web)


async def start_embedded(cfg: BenchConfig, owned: Embedded, progress: Progress) -> Target:
    """A fresh embedded system of ``--workers`` workers per group, on free ports."""
    owned.data_dir = tempfile.mkdtemp(prefix="ordersaga-bench-")
    settings = _embedded_settings(cfg, owned.data_dir)
    starting = progress.add_task(f"starting {cfg.workers} worker(s) per group", total=None, rate="")
    runtime = owned.runtime = Runtime(
        settings, workers_per_group=cfg.workers, quiet=True, brokers=cfg.brokers
    )
    await runtime.start()
    owned.supervisor = asyncio.ensure_future(runtime.supervise())
    progress.update(starting, total=1, completed=1)
    handed = runtime.worker_settings or settings
    fetch_wait = cfg.fetch_wait_ms or handed.fetch_max_wait_ms
    web = _web_urls(settings, cfg.workers)
    return Target(handed, handed.bootstrap_servers, fetch_wait, web[0], web, runtime)


# ------------------------------------------------------------------------ run


def _progress(console: Console) -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description:<34}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        console=console,
    )


def new_result(cfg: BenchConfig, started_at: datetime, out: Path) -> dict[str, Any]:
    """The result as it stands before the first phase."""
    return {
        "started_at": started_at.isoformat(),
        "machine": machine_info(),
        "config": {**asdict(cfg), "out": str(out)},
        "notes": [],
    }


def write_result(result: dict[str, Any], out: Path) -> None:
    """Stamp the end of the run into ``result`` and write it to ``out`` as JSON."""
    result["machine"]["loadavg_at_end"] = (
        list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    )
    result["finished_at"] = datetime.now(UTC).isoformat()
    result["out"] = str(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))


def exit_status(result: Mapping[str, Any]) -> int:
    """0 when every measured order COMPLETED, none was rejected and no audit failed; else 1."""
    saga = result["saga"]
    clean = (
        saga["not_completed"] == 0
        and saga["unfinished"] == 0
        and saga["rejected"] == 0
        and (result.get("audit") or {}).get("ok", True)
    )
    return 0 if clean else 1


async def run_bench(cfg: BenchConfig, console: Console | None = None) -> tuple[int, dict[str, Any]]:
    """Run the whole benchmark; returns the exit status and the result written as JSON."""
    console = console or Console(stderr=True)
    main_task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    if main_task is not None:
        # SIGTERM ends the run like Ctrl-C does: through the finally blocks below.
        loop.add_signal_handler(signal.SIGTERM, main_task.cancel)
    started_at = datetime.now(UTC)
    out = cfg.out or default_out_path(started_at)
    result = new_result(cfg, started_at, out)
    notes: list[str] = result["notes"]
    owned = Embedded()
    keep_logs = True  # unless the run ends well or is interrupted: then they tell nothing
    try:
        with _progress(console) as progress:
            target = attach(cfg) if cfg.attach else await start_embedded(cfg, owned, progress)
            partitions = (
                await partitions_of(target.bootstrap, ORDERS_COMMANDS) or target.settings.partitions
            )
            result["config"].update(target_config(target, partitions))
            await load_phases(cfg, target, partitions, result, progress)
            if cfg.audit or cfg.join_at is not None:
                result["audit"] = await audit_phase(target, progress)
            killed = (result.get("kills") or {}).get("kills", 0)
            result["rss"] = rss_phase(target.runtime, notes, killed)
        write_result(result, out)
        status = exit_status(result)
        keep_logs = status != 0
        return status, result
    except (asyncio.CancelledError, KeyboardInterrupt):
        keep_logs = False
        raise
    finally:
        await owned.stop(console)
        if main_task is not None:
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(signal.SIGTERM)
        owned.discard(console, keep_logs)


def main(cfg: BenchConfig) -> int:
    """Synchronous entry point for the CLI: run, print the summary, return the exit status."""
    try:
        status, result = asyncio.run(run_bench(cfg))
    except (KeyboardInterrupt, asyncio.CancelledError):
        # CancelledError: SIGTERM cancelled the run (see run_bench).
        print("bench interrupted; everything it started is stopped", file=sys.stderr)
        return 130
    except (httpx.HTTPError, KafkaError, OSError, TimeoutError) as exc:
        # The system or broker is not there or not answering: say so, no traceback.
        print(f"bench failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(format_summary(result))
    return status
