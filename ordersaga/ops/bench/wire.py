"""What each process asks of the broker during the saga phase: tshark on the broker's ports.

``ordersaga bench --wire`` captures every Kafka request sent to the broker while
the sagas run (tshark's Kafka dissector on the loopback interface, requests
only), attributes each to the process owning its client port (``ss -tnp``), and
divides by the sagas that ended meanwhile: requests per saga by API and by
process, and bytes sent to the broker per saga. tshark (Debian's ``tshark``)
and the right to capture on ``lo`` are needed; without them the figure says so.
"""

from __future__ import annotations

import asyncio
import re
import shutil
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# The Kafka APIs a saga's clients use, by key (the rest are shown by number).
API_NAMES: dict[int, str] = {
    0: "Produce",
    1: "Fetch",
    2: "ListOffsets",
    3: "Metadata",
    8: "OffsetCommit",
    9: "OffsetFetch",
    10: "FindCoordinator",
    11: "JoinGroup",
    12: "Heartbeat",
    13: "LeaveGroup",
    14: "SyncGroup",
    18: "ApiVersions",
    19: "CreateTopics",
    22: "InitProducerId",
}

_SS_LINE = re.compile(r"127\.0\.0\.1:(\d+)\s+\S+:(\d+)\s+users:\(\(\"[^\"]*\",pid=(\d+)")


def parse_tshark_line(line: str) -> tuple[int, list[int], int] | None:
    """``srcport<TAB>api keys (comma-separated)<TAB>tcp length`` -> its fields."""
    parts = line.rstrip("\n").split("\t")
    if len(parts) != 3 or not parts[0].isdigit():
        return None
    keys = [int(k) for k in parts[1].split(",") if k.strip().lstrip("-").isdigit()]
    length = int(parts[2]) if parts[2].isdigit() else 0
    return int(parts[0]), keys, length


def port_owners(ss_output: str, broker_ports: Sequence[int]) -> dict[int, int]:
    """Client port -> pid, for connections to the broker, from ``ss -tnpH`` output."""
    owners: dict[int, int] = {}
    for line in ss_output.splitlines():
        m = _SS_LINE.search(line)
        if m and int(m.group(2)) in broker_ports:
            owners[int(m.group(1))] = int(m.group(3))
    return owners


@dataclass
class WireTally:
    """Requests and bytes to the broker, per client port."""

    requests: Counter[tuple[int, int]] = field(default_factory=Counter)  # (port, api)
    bytes_by_port: Counter[int] = field(default_factory=Counter)

    def add(self, port: int, keys: Sequence[int], length: int) -> None:
        for key in keys:
            self.requests[(port, key)] += 1
        self.bytes_by_port[port] += length

    def per_saga(
        self, owners: Mapping[int, int], names: Mapping[int, str], sagas: int
    ) -> dict[str, Any]:
        """The tally divided by ``sagas``, by API and by process (pid -> name via ``names``)."""
        by_api: Counter[str] = Counter()
        by_process: dict[str, Counter[str]] = {}
        bytes_by_process: Counter[str] = Counter()
        for (port, key), n in self.requests.items():
            api = API_NAMES.get(key, f"api{key}")
            process = names.get(owners.get(port, -1), "other")
            by_api[api] += n
            by_process.setdefault(process, Counter())[api] += n
        for port, n in self.bytes_by_port.items():
            bytes_by_process[names.get(owners.get(port, -1), "other")] += n
        per = max(sagas, 1)
        return {
            "sagas": sagas,
            "requests_per_saga": {a: round(n / per, 2) for a, n in by_api.most_common()},
            "by_process": {
                p: {a: round(n / per, 2) for a, n in c.most_common()}
                for p, c in sorted(by_process.items())
            },
            "bytes_per_saga": round(sum(self.bytes_by_port.values()) / per),
            "bytes_per_saga_by_process": {
                p: round(n / per) for p, n in bytes_by_process.most_common()
            },
        }


class WireCapture:
    """tshark on ``lo`` for the broker's ports, tallying requests while it runs."""

    def __init__(self, broker_ports: Sequence[int]) -> None:
        self.broker_ports = list(broker_ports)
        self.tally = WireTally()
        self.owners: dict[int, int] = {}
        self.error: str | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        tshark = shutil.which("tshark")
        if tshark is None:
            self.error = "tshark not found (apt-get install tshark)"
            return
        ports = " or ".join(f"tcp dst port {p}" for p in self.broker_ports)
        decode = [a for p in self.broker_ports for a in ("-d", f"tcp.port=={p},kafka")]
        argv = [tshark, "-i", "lo", "-l", "-n", "-q", "-f", ports, *decode]
        argv += ["-Y", "kafka.request_key", "-T", "fields"]
        argv += ["-e", "tcp.srcport", "-e", "kafka.request_key", "-e", "tcp.len"]
        self._proc = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
        )
        self._reader = asyncio.create_task(self._read())
        await asyncio.sleep(1.0)  # tshark takes a moment before it captures
        if self._proc.returncode is not None:
            self.error = f"tshark exited with {self._proc.returncode} (capture on lo allowed?)"

    async def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        async for raw in self._proc.stdout:
            parsed = parse_tshark_line(raw.decode(errors="replace"))
            if parsed is not None:
                self.tally.add(*parsed)

    async def note_owners(self) -> None:
        """Map client ports to processes now, while the connections are open."""
        ss = shutil.which("ss")
        if ss is None:
            return
        proc = await asyncio.create_subprocess_exec(
            ss, "-tnpH", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
        )
        out, _ = await proc.communicate()
        self.owners.update(port_owners(out.decode(errors="replace"), self.broker_ports))

    async def stop(self) -> None:
        if self._proc is not None and self._proc.returncode is None:
            self._proc.terminate()
            await self._proc.wait()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)

    def figures(self, pids: Mapping[str, int], sagas: int) -> dict[str, Any]:
        if self.error:
            return {"error": self.error}
        names = {pid: name for name, pid in pids.items()}
        return self.tally.per_saga(self.owners, names, sagas)
