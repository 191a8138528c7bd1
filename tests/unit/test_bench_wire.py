"""The wire tally of ``ordersaga bench --wire``: tshark lines and ss output, per saga."""

from __future__ import annotations

from ordersaga.ops.bench.wire import WireTally, parse_tshark_line, port_owners

SS = """\
ESTAB 0 0 127.0.0.1:40001 127.0.0.1:9092 users:(("python",pid=101,fd=5))
ESTAB 0 0 127.0.0.1:40002 127.0.0.1:9092 users:(("python",pid=102,fd=7))
ESTAB 0 0 127.0.0.1:9092 127.0.0.1:40001 users:(("java",pid=9,fd=80))
ESTAB 0 0 127.0.0.1:40003 127.0.0.1:6379 users:(("python",pid=101,fd=9))
"""


def test_tshark_fields_with_several_requests_in_one_frame_are_all_counted() -> None:
    assert parse_tshark_line("40001\t0,1\t512\n") == (40001, [0, 1], 512)
    assert parse_tshark_line("40002\t12\t\n") == (40002, [12], 0)
    assert parse_tshark_line("garbage") is None


def test_client_ports_are_mapped_to_their_processes_for_broker_connections_only() -> None:
    assert port_owners(SS, [9092]) == {40001: 101, 40002: 102}


def test_requests_and_bytes_are_divided_by_the_sagas_by_api_and_process() -> None:
    tally = WireTally()
    tally.add(40001, [0, 0, 1], 300)
    tally.add(40002, [1], 100)
    tally.add(49999, [12], 50)  # a port no process was seen on
    figures = tally.per_saga({40001: 101, 40002: 102}, {101: "orders-0", 102: "webview-0"}, 2)
    assert figures["requests_per_saga"] == {"Produce": 1.0, "Fetch": 1.0, "Heartbeat": 0.5}
    assert figures["by_process"]["orders-0"] == {"Produce": 1.0, "Fetch": 0.5}
    assert figures["by_process"]["other"] == {"Heartbeat": 0.5}
    assert figures["bytes_per_saga"] == 225
    assert figures["bytes_per_saga_by_process"] == {"orders-0": 150, "webview-0": 50, "other": 25}
