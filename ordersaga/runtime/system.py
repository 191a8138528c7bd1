"""The runtime of `ordersaga run`: broker, Redis and a supervised worker per agent group.

It starts a broker (Apache Kafka or Tansu, ``ordersaga.runtime.servers``) and a
Redis-protocol server unless KAFKA_BROKER / REDIS_URL point elsewhere, then one
``faust worker`` process per agent group, restarts any that dies (with backoff)
and stops it all on Ctrl-C or SIGTERM. Each process's output is copied into a
size-rotating ``<data_dir>/logs/<name>.log`` (``ordersaga.runtime.logs``) and the
workers' pids, restarts and exits are published in ``<data_dir>/supervisor.json``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from pydantic import SecretStr

from ordersaga.config.sealing import KEY_READERS
from ordersaga.config.settings import Settings
from ordersaga.edge.sealing import new_key
from ordersaga.edge.tokens import operator_headers
from ordersaga.runtime import kafka
from ordersaga.runtime.banner import edge_summary
from ordersaga.runtime.credentials import kept_passwords
from ordersaga.runtime.kafka_security import BrokerSecurity, grant, secure_broker
from ordersaga.runtime.logs import (
    LOG_DRAIN_GRACE_S,
    LOG_LINE_LIMIT,
    copy_lines,
    rotating_log,
    utc_now,
    write_json_atomic,
)
from ordersaga.runtime.redis_users import GROUP_USERS, RULES, RedisUsers, redis_users
from ordersaga.runtime.seed import seed_demo
from ordersaga.runtime.servers import (
    broker_binary,
    choose_broker,
    free_port,
    free_port_block,
    redis_argv,
    wait_for_port,
)
from ordersaga.runtime.supervision import (
    READY_TIMEOUT_S,
    Worker,
    health_check,
    ready_check,
    supervisor_status,
    wait_all,
)
from ordersaga.runtime.topic_admin import ensure_topics
from ordersaga.runtime.worker_env import SETTINGS_ENV, as_env, env_name, with_profile
from ordersaga.shell.groups import GROUPS, group
from ordersaga.topology import TOPOLOGY
from ordersaga.topology.acls import all_acls

# A worker that dies soon after its start waits twice as long as last time before
# the next, up to this: long enough that a crash-looping worker costs little, short
# enough that workers which died while a broker was down are back soon after it.
MAX_RESTART_BACKOFF_S = 8.0


@dataclass
class Runtime:
    """The whole system on one machine."""

    settings: Settings
    workers_per_group: int = 1
    quiet: bool = False
    # The web view is the stateless edge: it may run more workers than the other groups.
    webview_workers: int | None = None
    env: dict[str, str] = field(default_factory=dict)
    # What the workers run with (set by start): the settings plus what was started.
    worker_settings: Settings | None = None
    servers: list[asyncio.subprocess.Process] = field(default_factory=list)
    workers: list[Worker] = field(default_factory=list)
    stopping: bool = False
    restarting: set[asyncio.Future[None]] = field(default_factory=set)
    # One rotating log per path, kept across restarts so a worker's runs share it.
    logs: dict[Path, logging.Logger] = field(default_factory=dict)
    copiers: set[asyncio.Future[None]] = field(default_factory=set)
    state: str = "starting"  # published in supervisor.json: starting, up, stopping, stopped
    # Start the broker's and Redis' data from nothing (`ordersaga run --fresh`).
    fresh: bool = False
    # Apache Kafka nodes to run (`ordersaga run --brokers 3`).
    brokers: int = 1
    kafka_nodes: list[kafka.KafkaNode] = field(default_factory=list)
    broker_procs: list[asyncio.subprocess.Process] = field(default_factory=list)
    broker: str = ""  # what was started: kafka, tansu, or external
    # Apache Kafka with SASL_SSL and per-group ACLs (`ordersaga run --secure`).
    secure: bool = False
    security: BrokerSecurity | None = None
    # The users of the Redis it started (None: REDIS_URL names another).
    redis_users: RedisUsers | None = None

    def __post_init__(self) -> None:
        # `ordersaga run` is the demo and test system: its gateway's test tokens work
        # unless the environment says otherwise; a worker started alone has them off.
        if "gateway_faults" not in self.settings.model_fields_set:
            self.settings = self.settings.model_copy(update={"gateway_faults": True})

    def say(self, text: str) -> None:
        if not self.quiet:
            print(text, flush=True)

    @property
    def data_dir(self) -> Path:
        return Path(self.settings.data_dir).resolve()

    def url(self, w: Worker) -> str:
        return f"http://{self.settings.web_host}:{w.web_port}"

    def probes_url(self, w: Worker) -> str:
        """Where the worker's /health and /ready answer (ORDERSAGA_PROBES_PORT moves them)."""
        settings = self.settings
        if settings.probes_port is None:
            return self.url(w)
        port = settings.probes_port + (w.web_port - settings.web_port)
        return f"http://{settings.probes_host}:{port}"

    def publish(self, state: str = "") -> None:
        """Write supervisor.json; a failed write is reported, never raised."""
        self.state = state or self.state
        try:
            addresses = {
                name: self.env[env]
                for name, env in (
                    ("kafka_broker", "KAFKA_BROKER"),
                    ("redis_url", "REDIS_URL"),
                    ("replication_factor", env_name("replication_factor")),
                )
                if self.env.get(env)
            }
            write_json_atomic(
                self.data_dir / "supervisor.json",
                supervisor_status(self.workers, self.state, addresses),
            )
        except OSError as exc:
            print(f"ordersaga: cannot write supervisor.json: {exc}", file=sys.stderr)

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
        for line in edge_summary(self.settings):
            self.say(line)
        if self.fresh:
            for kept in ("kafka", "kafka-secure", "redis"):
                shutil.rmtree(self.data_dir / kept, ignore_errors=True)
        logs = self.data_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        persistent = False
        fixed: dict[str, object] = {}
        profile = "external"
        if not self.settings.kafka_broker:
            broker, why = choose_broker(self.settings.broker)
            self.broker = profile = broker
            port = free_port(self.settings.embedded_kafka_port)
            if self.brokers > 1 and broker != "kafka":
                raise RuntimeError(f"--brokers {self.brokers} needs Apache Kafka ({why})")
            if self.secure and broker != "kafka":
                raise RuntimeError(f"--secure needs Apache Kafka ({why})")
            if broker == "kafka":
                fixed["kafka_broker"] = await self._start_kafka(port, logs, why)
                fixed["replication_factor"] = min(3, self.brokers)
                if self.security is not None:
                    # The supervisor is the broker's admin; each worker its group's user.
                    fixed.update(self.security.client_settings())
                persistent = True
            else:
                url = f"tcp://127.0.0.1:{port}"
                argv = [broker_binary(), "broker", "--listener-url", url]
                argv += ["--advertised-listener-url", url, "--storage-engine", "memory://tansu/"]
                await self._serve(argv, logs / "broker.log")
                await wait_for_port(port, 15)
                self.say(
                    f"broker    kafka://127.0.0.1:{port} (embedded Tansu, memory storage; {why})"
                )
                fixed["kafka_broker"] = f"127.0.0.1:{port}"
        else:
            self.broker = "external"
            self.say(f"broker    {self.settings.broker_url} (KAFKA_BROKER; none started)")
        if not self.settings.redis_url:
            port = free_port(self.settings.embedded_redis_port)
            redis_dir = self.data_dir / "redis"
            redis_dir.mkdir(exist_ok=True)
            self.redis_users = redis_users(redis_dir, port)
            argv = redis_argv(
                port,
                redis_dir,
                persistent,
                self.settings.redis_max_memory_mb,
                acl_file=self.redis_users.acl_file,
            )
            await self._serve(argv, logs / "redis.log")
            await wait_for_port(port, 15)
            fixed["redis_url"] = self.redis_users.url()
            kept = f"append-only file in {redis_dir}" if persistent else "memory only"
            self.say(
                f"redis     redis://127.0.0.1:{port}/0 (embedded valkey-server, {kept}; "
                f"users {', '.join(RULES)}, passwords in {redis_dir / 'users.json'})"
            )
        else:
            self.say(f"redis     {self.settings.redis_url}")
        endpoint = self.settings.otel_exporter_otlp_endpoint
        traces = (
            f"OTLP/HTTP to {endpoint}" if endpoint else "off (OTEL_EXPORTER_OTLP_ENDPOINT unset)"
        )
        self.say(f"traces    {traces}")
        fixed.update(self._sealing_keys())
        # The one place workers get their settings from: the profile of the broker
        # started, what was started, then the environment for everything else.
        self.worker_settings = with_profile(self.settings, profile, **fixed)
        # Nothing of ours leaks in from the shell beyond what the settings say.
        inherited = {k: v for k, v in os.environ.items() if k not in SETTINGS_ENV}
        self.env = {**inherited, **as_env(self.worker_settings), "PYTHONUNBUFFERED": "1"}
        await ensure_topics(
            self.worker_settings.bootstrap_servers,
            self.settings.partitions,
            replication=self.worker_settings.replication_factor,
            retention_bytes=self.settings.topic_retention_bytes,
            retention_ms=self.settings.topic_retention_hours * 3600 * 1000,
            security=self.worker_settings,
        )
        if self.security is not None:
            granted = await grant(
                self.worker_settings.bootstrap_servers, self.worker_settings, all_acls(TOPOLOGY)
            )
            self.say(
                f"kafka     SASL_SSL (SCRAM-SHA-512 or PLAIN), a user and {granted} ACLs for "
                f"the {len(GROUPS)} groups; `source {self.security.write_admin_env()}` "
                "makes a shell's tools its admin"
            )
        for g in GROUPS:
            count = self.workers_per_group
            if g.name == "webview" and self.webview_workers is not None:
                count = self.webview_workers
            for i in range(count):
                port = g.web_port(self.settings.web_port) + i * 100
                self.workers.append(Worker(g, i, port, logs / f"{g.name}-{i}.log"))
        self.publish("starting")
        for w in self.workers:
            await self._spawn(w)
        await self._wait_healthy(self.workers, 90)
        # Healthy only means the web server answers; a worker still joining its
        # group or restoring its tables would drop or stall the first requests.
        self.say("waiting for every group to be ready...")
        async with httpx.AsyncClient(timeout=2) as client:
            checks = {
                f"worker {w.name}": ready_check(client, w, self.probes_url(w), self.say)
                for w in self.workers
            }
            await wait_all(checks, "not ready", self.say, READY_TIMEOUT_S)
        self.say("every group is ready")
        if self.settings.seed_catalog:
            await self.seed_catalogue()
        self.say("")
        for w in self.workers:
            self.say(
                f"{w.name:<16} {self.url(w)}  (faust -A {w.group.module} worker; log {w.log_path})"
            )
        self.publish("up")
        self.say(
            f"\nordersaga is up: web view http://{self.settings.web_host}:"
            f"{self.settings.web_port}  (Ctrl-C stops everything)"
        )

    def _log(self, path: Path) -> logging.Logger:
        if path not in self.logs:
            self.logs[path] = rotating_log(
                path, self.settings.log_max_bytes, self.settings.log_backups
            )
        return self.logs[path]

    async def _exec(
        self,
        argv: list[str],
        log_path: Path,
        env: Mapping[str, str] | None = None,
        worker: Worker | None = None,
    ) -> asyncio.subprocess.Process:
        """Start ``argv``, its output copied into the rotating log at ``log_path``."""
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=env,
            start_new_session=True,
            limit=LOG_LINE_LIMIT,
        )
        copier = asyncio.ensure_future(self._copy_until_exit(process, self._log(log_path), worker))
        self.copiers.add(copier)
        copier.add_done_callback(self.copiers.discard)
        return process

    async def _copy_until_exit(
        self, process: asyncio.subprocess.Process, log: logging.Logger, w: Worker | None
    ) -> None:
        assert process.stdout is not None
        copy = asyncio.ensure_future(copy_lines(process.stdout, log))
        try:
            # Poll the exit rather than await wait(): wait() also waits for the
            # pipe to close, which a descendant holding it would put off forever.
            while process.returncode is None and not copy.done():
                await asyncio.wait({copy}, timeout=0.5)
            await asyncio.wait({copy}, timeout=LOG_DRAIN_GRACE_S)
        finally:
            copy.cancel()
        # None only if it closed its output but runs on.
        code = process.returncode if process.returncode is not None else await process.wait()
        if w is not None:
            w.exits.append({"code": code, "at": utc_now()})
            self.publish()

    async def _start_kafka(self, port: int, logs: Path, why: str) -> str:
        """Fetch (once), format (once) and start Apache Kafka: one KRaft node, or a cluster.

        Returns the bootstrap servers. With ``brokers`` > 1 every node is broker and
        controller, on loopback, with replication factor 3 (at most the node count).
        """
        await asyncio.to_thread(kafka.fetch_jars, self.say)
        # A secured broker keeps its data apart: its users are set when it is formatted.
        root = self.data_dir / ("kafka-secure" if self.secure else "kafka")
        if self.secure:
            self.security = secure_broker(root / "secrets", [g.app_id for g in GROUPS])
        if self.brokers == 1:
            ports = [(port, free_port(port + 1))]
        else:
            base = free_port_block(2 * self.brokers)
            ports = [(base + 2 * i, base + 2 * i + 1) for i in range(self.brokers)]
        voters = ",".join(f"{i + 1}@127.0.0.1:{c}" for i, (_, c) in enumerate(ports))
        replication = min(3, self.brokers)
        formatted = False
        for i, (broker_port, controller_port) in enumerate(ports):
            node = kafka.KafkaNode(
                data_dir=root if self.brokers == 1 else root / f"node-{i + 1}",
                port=broker_port,
                controller_port=controller_port,
                partitions=self.settings.partitions,
                node_id=i + 1,
                voters=voters,
                replication=replication,
                cluster_id_file=root / "cluster.id",
                security=self.security,
            )
            node.write_config()
            formatted = await asyncio.to_thread(node.format_if_new) or formatted
            self.kafka_nodes.append(node)
        for i, node in enumerate(self.kafka_nodes):
            name = "broker" if self.brokers == 1 else f"broker-{i + 1}"
            self.broker_procs.append(await self._serve(node.argv(), logs / f"{name}.log"))
        for node in self.kafka_nodes:
            await wait_for_port(node.port, 60)
        kept = "formatted now" if formatted else "kept from the last run"
        bootstrap = ",".join(f"127.0.0.1:{n.port}" for n in self.kafka_nodes)
        shape = (
            "KRaft"
            if self.brokers == 1
            else f"{self.brokers} KRaft nodes, replication {replication}"
        )
        self.say(
            f"broker    kafka://{bootstrap} (Apache Kafka {kafka.KAFKA_VERSION}, "
            f"{shape}, data in {root}, {kept}; {why})"
        )
        return bootstrap

    def _sealing_keys(self) -> dict[str, object]:
        """Keys sealing tokens and addresses, made once per data dir unless the env sets them."""
        unset = [n for n in KEY_READERS if getattr(self.settings, n) is None]
        if not unset:
            return {}
        path = self.data_dir / "secrets" / "sealing.json"
        keys = kept_passwords(path, unset, make=new_key)
        self.say(f"sealing   payment tokens for payments, addresses for shipping (keys in {path})")
        return {name: SecretStr(keys[name]) for name in unset}

    async def kill_broker(self, index: int) -> None:
        """SIGKILL one broker of the cluster (for fault tests)."""
        proc = self.broker_procs[index]
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()

    async def restart_broker(self, index: int) -> None:
        """Start a killed broker again on its own data."""
        node = self.kafka_nodes[index]
        old = self.broker_procs[index]
        if old in self.servers:
            self.servers.remove(old)
        log = self.data_dir / "logs" / f"broker-{index + 1}.log"
        self.broker_procs[index] = await self._serve(node.argv(), log)

    async def _serve(self, argv: list[str], log_path: Path) -> asyncio.subprocess.Process:
        process = await self._exec(argv, log_path)
        self.servers.append(process)
        return process

    async def _spawn(self, w: Worker) -> None:
        # `python -m faust` is the `faust` command, found whatever the PATH says.
        argv = [sys.executable, "-m", "faust", "--loop", self.settings.event_loop]
        argv += ["-A", w.group.module, "worker", "-l", self.settings.log_level]
        argv += ["--web-port", str(w.web_port), "--web-host", self.settings.web_host]
        env = {**self.env, env_name("data_dir"): str(self.data_dir / "workers" / w.name)}
        if self.broker != "tansu":
            # The same id across its restarts: a killed worker's partitions come back
            # with it, without waiting out its session (static membership; Tansu
            # has no such thing).
            env[env_name("consumer_instance_id")] = w.name
        if self.redis_users is not None:
            # Only the groups that use Redis get a URL, each its own user's.
            user_of = GROUP_USERS.get(w.group.name)
            if user_of is None:
                env.pop(env_name("redis_url"), None)
            else:
                env[env_name("redis_url")] = self.redis_users.url(user_of)
        for name, readers in KEY_READERS.items():
            if w.group.name not in readers:
                env.pop(env_name(name), None)
        if self.security is not None:
            user = w.group.app_id
            env[env_name("kafka_sasl_username")] = user
            env[env_name("kafka_sasl_password")] = self.security.passwords[user]
        if w.group.name != "webview":
            # Only the web view verifies tokens: the other groups need not hold the secret.
            env.pop(env_name("auth_secret"), None)
        w.process = await self._exec(argv, w.log_path, env, worker=w)
        w.started_at = time.monotonic()
        self.publish()

    async def _wait_healthy(self, workers: list[Worker], timeout: float) -> None:
        async with httpx.AsyncClient(timeout=2) as client:
            checks = {
                f"worker {w.name}": health_check(client, w, self.probes_url(w)) for w in workers
            }
            await wait_all(checks, "not healthy", self.say, timeout)

    async def seed_catalogue(self) -> None:
        """Stock the demo catalogue and register the demo customers (a re-seed is harmless)."""
        url = f"http://{self.settings.web_host}:{self.settings.web_port}"
        headers = operator_headers(self.settings, "ordersaga-runtime")
        if headers is None:
            self.say("catalogue not seeded: tokens are signed by their issuer, not here")
            return
        webview = [str(w.log_path) for w in self.workers if w.group.name == "webview"]
        await seed_demo(url, headers, self.say, where=str(webview))

    async def add_worker(self, group_name: str, healthy_within_s: float = 90) -> Worker:
        """Start one more worker of a group on a running system (it joins the group's rebalance)."""
        g = group(group_name)
        index = sum(1 for w in self.workers if w.group is g)
        port = g.web_port(self.settings.web_port) + index * 100
        w = Worker(g, index, port, self.data_dir / "logs" / f"{g.name}-{index}.log")
        self.workers.append(w)
        await self._spawn(w)
        await self._wait_healthy([w], healthy_within_s)
        return w

    async def supervise(self) -> None:
        """Restart workers that die, with doubling backoff, until stopped.

        The backoff doubles for a worker that exits of itself within a minute of
        its start (a crash loop). One SIGKILLed from outside is restarted after
        the base second however often it happens: the kills were not its doing,
        and every second it is away its group's step stalls (`make bench`'s kills
        phase: stalls of up to 8 s, orders' p50 15 s).
        """
        while not self.stopping:
            await asyncio.sleep(0.5)
            for w in self.workers:
                if self.stopping or w.process is None or w.process.returncode is None:
                    continue
                uptime = time.monotonic() - w.started_at
                crash_loop = uptime <= 60 and w.process.returncode != -signal.SIGKILL
                w.backoff_s = min(w.backoff_s * 2, MAX_RESTART_BACKOFF_S) if crash_loop else 1.0
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
        if self.workers:
            self.publish("stopping")
        procs = [w.process for w in self.workers if w.process is not None]
        await _terminate(procs, grace=15)
        # Apache Kafka's controlled shutdown takes a few seconds; a kill is safe but
        # makes the next start recover its logs.
        await _terminate(self.servers, grace=20)
        # The copiers end once their process has exited; they must be done
        # before the handlers they write to are closed.
        if self.copiers:
            _, late = await asyncio.wait(set(self.copiers), timeout=LOG_DRAIN_GRACE_S + 1)
            for copier in late:
                copier.cancel()
        for log in self.logs.values():
            for handler in list(log.handlers):
                log.removeHandler(handler)
                handler.close()
        self.logs.clear()
        if self.workers:
            self.publish("stopped")
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


async def run(
    settings: Settings,
    workers_per_group: int = 1,
    fresh: bool = False,
    brokers: int = 1,
    webview_workers: int | None = None,
    secure: bool = False,
) -> None:
    """Start everything and keep it running until SIGINT or SIGTERM."""
    runtime = Runtime(
        settings,
        workers_per_group,
        fresh=fresh,
        brokers=brokers,
        webview_workers=webview_workers,
        secure=secure,
    )
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


__all__ = [
    "Runtime",
    "Worker",
    "copy_lines",
    "free_port_block",
    "redis_argv",
    "rotating_log",
    "run",
]
