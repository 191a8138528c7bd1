"""Apache Kafka for `ordersaga run`: its jars fetched with Maven, one KRaft node run.

The version is pinned here and nowhere else (docker-compose's image tag is
checked against it by tests/unit/test_compose.py). The jars come from Maven
Central through ``deploy/kafka/pom.xml`` into a cache outside the work tree, so
a second start, or a second clone, fetches nothing.

Why 4.4: Kafka 4.0 removed the protocol versions older clients used (KIP-896);
aiokafka 0.14 and Faust 0.15.3 were tried against 4.4.0 here (topic creation,
idempotent produce, group join, the whole saga and its tests) before it was pinned.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ordersaga.config.settings import get_settings
from ordersaga.runtime.kafka_security import BrokerSecurity

KAFKA_VERSION = "4.4.0"
POM = Path(__file__).resolve().parents[2] / "deploy" / "kafka" / "pom.xml"
MIN_JAVA = 17
# One JVM on a 2-core, 24 GiB machine beside six workers: enough for the saga's
# traffic, bounded so a load test cannot grow it past what the machine can give.
HEAP = ("-Xms256m", "-Xmx1g")
# C1 only: the embedded broker lives for a dev session or a test run, and C2 spent
# a third of a core compiling through the first minutes of every bench (broker
# 10.8 -> 6.3 ms of CPU per saga; BENCHMARKS.md, "Issue 21, fourth steps"). The
# broker's own Java code is ~5% of a core, so C1's slower code costs little.
JIT = ("-XX:TieredStopAtLevel=1",)
JVM_FLAGS = (
    *HEAP,
    *JIT,
    # G1 with short pauses: the serial collector paused 15-77 ms every few seconds
    # (BENCHMARKS.md, "Issue 21, seventh steps"). The slow POSTs once blamed on it and
    # on fewer broker threads were the bench's own HTTP client (ninth steps).
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    # The heap on huge pages where the kernel offers them (madvise): fewer TLB misses
    # in C1's pointer-chasing code, ~5% of the broker's CPU in alternated quick runs.
    "-XX:+UseTransparentHugePages",
    "-Djava.awt.headless=true",
)

TOOLS = {
    "console-consumer": "org.apache.kafka.tools.consumer.ConsoleConsumer",
    "console-producer": "org.apache.kafka.tools.ConsoleProducer",
    "topics": "org.apache.kafka.tools.TopicCommand",
    "consumer-groups": "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
}

_LOG4J2 = """\
Configuration:
  Appenders:
    Console:
      name: STDOUT
      PatternLayout:
        Pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Root:
      level: WARN
      AppenderRef:
        - ref: STDOUT
    Logger:
      - name: kafka.server.KafkaRaftServer
        level: INFO
"""


def cache_dir() -> Path:
    """Where the jars of this Kafka version are kept (ORDERSAGA_KAFKA_CACHE overrides)."""
    root = get_settings().kafka_cache
    if root:
        return Path(root) / KAFKA_VERSION
    return Path(user_cache_dir()) / "ordersaga" / f"kafka-{KAFKA_VERSION}"


def user_cache_dir() -> str:
    """The user's cache directory (XDG_CACHE_HOME, else ~/.cache)."""
    return os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")


def libs_dir() -> Path:
    """The classpath directory: every jar the broker and its tools need."""
    return cache_dir() / "libs"


def jars_cached() -> bool:
    """True once a complete fetch left the jars in the cache."""
    return (cache_dir() / "complete").exists()


def java_version() -> int | None:
    """The major version of the ``java`` on PATH, if any."""
    java = shutil.which("java")
    if java is None:
        return None
    try:
        out = subprocess.run(
            [java, "-version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if not found:
        return None
    major = int(found.group(1))
    # Java 8 and older call themselves 1.x.
    return int(found.group(2) or 0) if major == 1 else major


@dataclass(frozen=True)
class Availability:
    """Whether Apache Kafka can run here, and why (or why not), in words."""

    ok: bool
    why: str


def availability() -> Availability:
    """Can this machine run Apache Kafka: a JDK 17+, and Maven or the jars already cached."""
    version = java_version()
    if version is None:
        return Availability(False, "no java on PATH")
    if version < MIN_JAVA:
        return Availability(False, f"java {version} on PATH, Kafka needs {MIN_JAVA}+")
    if jars_cached():
        return Availability(True, f"java {version}, Kafka {KAFKA_VERSION} jars cached")
    if shutil.which("mvn") is None:
        return Availability(False, "no Maven on PATH to fetch the Kafka jars")
    return Availability(True, f"java {version} and Maven: Kafka {KAFKA_VERSION} will be fetched")


def fetch_jars(say: Callable[[str], None] = print) -> Path:
    """Fetch the jars into the cache unless they are there; return the classpath directory."""
    if jars_cached():
        return libs_dir()
    target = cache_dir()
    target.mkdir(parents=True, exist_ok=True)
    partial = target / f"libs.partial-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    say(f"fetching Apache Kafka {KAFKA_VERSION} with Maven into {target} (once, ~55 MB)...")
    argv = [
        "mvn",
        "-B",
        "--no-transfer-progress",
        "-f",
        str(POM),
        f"-Dkafka.version={KAFKA_VERSION}",
        "dependency:copy-dependencies",
        "-DincludeScope=runtime",
        f"-DoutputDirectory={partial}",
    ]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        shutil.rmtree(partial, ignore_errors=True)
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-20:])
        raise RuntimeError(f"fetching Kafka {KAFKA_VERSION} with Maven failed:\n{tail}")
    # Renamed into place whole, so an interrupted fetch never looks complete.
    shutil.rmtree(libs_dir(), ignore_errors=True)
    partial.rename(libs_dir())
    (target / "complete").write_text(KAFKA_VERSION + "\n")
    say(f"fetched {len(list(libs_dir().glob('*.jar')))} jars")
    return libs_dir()


def java_command(main: str, *args: str, jvm: tuple[str, ...] = ()) -> list[str]:
    """A ``java`` command line running ``main`` from the cached jars."""
    java = shutil.which("java") or "java"
    return [java, *jvm, "-cp", str(libs_dir() / "*"), main, *args]


def tool_command(tool: str, *args: str) -> list[str]:
    """One of Apache Kafka's console tools, e.g. ``console-consumer --topic orders.events``."""
    quiet = f"-Dlog4j2.configurationFile={cache_dir() / 'tools-log4j2.yaml'}"
    (cache_dir() / "tools-log4j2.yaml").write_text(_LOG4J2)
    return java_command(TOOLS[tool], *args, jvm=("-Xmx256m", *JIT, quiet))


@dataclass(frozen=True)
class KafkaNode:
    """One KRaft node (broker and controller in one JVM) with its data under ``data_dir``."""

    data_dir: Path
    port: int
    controller_port: int
    partitions: int = 4
    node_id: int = 1
    # Every controller of the cluster as "id@host:port,..."; this node alone by default.
    voters: str = ""
    replication: int = 1
    cluster_id_file: Path | None = None
    # SASL_SSL with ACLs (`ordersaga run --secure`); None: a PLAINTEXT listener.
    security: BrokerSecurity | None = None

    @property
    def config_path(self) -> Path:
        return self.data_dir / "server.properties"

    @property
    def log_dirs(self) -> Path:
        return self.data_dir / "data"

    def write_config(self) -> None:
        """server.properties for a single node: replication 1, no initial rebalance delay."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        replication = str(self.replication)
        # A write acked by all in-sync replicas survives the loss of any one broker.
        min_isr = "2" if self.replication >= 3 else "1"
        lines = {
            "process.roles": "broker,controller",
            "node.id": str(self.node_id),
            "controller.quorum.voters": self.voters
            or f"{self.node_id}@127.0.0.1:{self.controller_port}",
            "listeners": (
                f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}"
            ),
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.log_dirs),
            "num.partitions": str(self.partitions),
            "default.replication.factor": replication,
            "min.insync.replicas": min_isr,
            "offsets.topic.replication.factor": replication,
            "offsets.topic.num.partitions": "8",
            "transaction.state.log.replication.factor": replication,
            "transaction.state.log.min.isr": min_isr,
            "share.coordinator.state.topic.replication.factor": replication,
            "share.coordinator.state.topic.min.isr": min_isr,
            # A group's first join is not held back waiting for more members.
            "group.initial.rebalance.delay.ms": "0",
            "auto.create.topics.enable": "false",
            # Index files are preallocated sparse at this size and mmapped; a fault on a
            # hole reads around it (read_ahead_kb, 8 MiB on this VM), zeroing megabytes:
            # a quarter of the broker's CPU under load at Kafka's 10 MiB. 256 KiB indexes
            # still cover 64 MiB segments at the 4 KiB index interval.
            "log.index.size.max.bytes": str(256 * 1024),
            # The log cleaner clears its whole offset map (128 MiB by default) before each
            # log it compacts, and the changelogs roll every minute: 16 MiB still holds
            # ~700,000 keys, more than a changelog partition of this system has.
            "log.cleaner.dedupe.buffer.size": str(16 * 1024 * 1024),
            # Threads for a machine of a few cores, not Kafka's server-class 3 and 8:
            # fewer handoffs between them, ~6% of the broker's CPU in both start orders
            # of two systems run at once (issue 21, BENCHMARKS.md ninth steps).
            "num.network.threads": "1",
            "num.io.threads": "2",
        }
        if self.security is not None:
            lines.update(self.security.server_properties(self.port, self.controller_port))
        # Passwords may be in it (a secured broker): its owner alone reads it.
        self.config_path.touch(mode=0o600)
        self.config_path.chmod(0o600)
        self.config_path.write_text("".join(f"{k}={v}\n" for k, v in lines.items()))
        (self.data_dir / "log4j2.yaml").write_text(_LOG4J2)

    def format_if_new(self) -> bool:
        """Format the storage on first start; True if it was formatted now."""
        if (self.log_dirs / "meta.properties").exists():
            return False
        cluster_id = self.cluster_id()
        argv = java_command(
            "kafka.tools.StorageTool",
            "format",
            # One argument: a base64 id may begin with "-", which would read as an option.
            f"--cluster-id={cluster_id}",
            "-c",
            str(self.config_path),
            *(self.security.format_arguments() if self.security else ()),
            jvm=("-Xmx256m", *JIT, f"-Dlog4j2.configurationFile={self.data_dir / 'log4j2.yaml'}"),
        )
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"formatting Kafka storage failed: {done.stdout}{done.stderr}")
        return True

    def cluster_id(self) -> str:
        """The cluster's id: every node of one cluster is formatted with the same."""
        if self.cluster_id_file is None:
            return _kraft_cluster_id()
        if not self.cluster_id_file.exists():
            self.cluster_id_file.parent.mkdir(parents=True, exist_ok=True)
            self.cluster_id_file.write_text(_kraft_cluster_id())
        return self.cluster_id_file.read_text().strip()

    def argv(self) -> list[str]:
        """The broker's command line."""
        log_config = f"-Dlog4j2.configurationFile={self.data_dir / 'log4j2.yaml'}"
        return java_command("kafka.Kafka", str(self.config_path), jvm=(*JVM_FLAGS, log_config))


def _kraft_cluster_id() -> str:
    # What `kafka-storage random-uuid` prints: a UUID in URL-safe base64, unpadded.
    import base64

    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
