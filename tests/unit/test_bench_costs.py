"""The bench's new figures: per-saga counters, CPU ms per saga, the step-up, the Faust chain."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path
from typing import Any

import pytest
from aiokafka.conn import AIOKafkaConnection
from aiokafka.protocol.admin import ApiVersionRequest

from ordersaga.observability.metrics import Metrics
from ordersaga.ops.bench import cpu_ms_per_saga, format_summary
from ordersaga.ops.bench.costs import (
    Snapshot,
    parse_commandstats_calls,
    parse_worker_metrics,
    per_saga,
)
from ordersaga.ops.bench.stepup import P99_LIMIT_S, judge_step, max_sustained
from ordersaga.ops.faustchain import HOP_GROUPS, app_env, hops_by_group
from ordersaga.ops.faustchain import topics as faust_topics
from ordersaga.ops.faustchain_app import build as build_chain_app
from ordersaga.ops.relay import SAGA_HOPS
from ordersaga.shell.groups import GROUPS
from ordersaga.shell.patches import count_kafka_requests

# ------------------------------------------------------------- the counters


def test_worker_metrics_are_read_from_what_a_worker_renders() -> None:
    metrics = Metrics()
    metrics.messages_handled.labels(agent="orders", type="PlaceOrder", outcome="ok").inc(5)
    metrics.messages_handled.labels(agent="orders", type="StockReserved", outcome="ok").inc(2)
    metrics.kafka_requests.labels(api="FetchRequest").inc(7)
    metrics.kafka_requests.labels(api="ProduceRequest").inc(3)
    handled, requests = parse_worker_metrics(metrics.render().decode())
    assert handled == 7
    assert requests == {"FetchRequest": 7, "ProduceRequest": 3}


def test_worker_metrics_of_a_quiet_worker_are_zero() -> None:
    assert parse_worker_metrics(Metrics().render().decode()) == (0.0, {})


def test_commandstats_calls_sum_every_command() -> None:
    info = {
        "cmdstat_get": {"calls": 10, "usec": 30},
        "cmdstat_evalsha": {"calls": 4, "usec": 90},
        "errorstat_ERR": {"count": 1},
    }
    assert parse_commandstats_calls(info) == 14


async def _sink() -> tuple[asyncio.Server, list[bytes]]:
    received: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            received.append(data)
        writer.close()

    return await asyncio.start_server(serve, "127.0.0.1", 0), received


async def test_every_request_sent_is_counted_by_its_class() -> None:
    earlier, metrics = Metrics(), Metrics()
    count_kafka_requests(earlier.kafka_requests)
    count_kafka_requests(metrics.kafka_requests)  # the last one given counts
    server, received = await _sink()
    port = server.sockets[0].getsockname()[1]
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    conn = AIOKafkaConnection("127.0.0.1", port)
    conn._writer = writer  # connected as connect() would leave it, minus the version lookup
    try:
        for _ in range(3):
            await conn.send(ApiVersionRequest(), expect_response=False)
        for _ in range(50):
            if sum(map(len, received)) > 0:
                break
            await asyncio.sleep(0.01)
    finally:
        writer.close()
        server.close()
        await server.wait_closed()
    _, requests = parse_worker_metrics(metrics.render().decode())
    assert requests == {"ApiVersionRequest": 3}
    assert parse_worker_metrics(earlier.render().decode())[1] == {}
    assert received, "the request still went out"


async def test_a_request_refused_for_want_of_a_connection_is_not_counted() -> None:
    metrics = Metrics()
    count_kafka_requests(metrics.kafka_requests)
    conn = AIOKafkaConnection("127.0.0.1", 1)
    with pytest.raises(Exception, match="No connection"):
        conn.send(ApiVersionRequest())
    assert parse_worker_metrics(metrics.render().decode())[1] == {}


# ---------------------------------------------------------------- per saga


def _snap(at: float, **kw: Any) -> Snapshot:
    return Snapshot(at=at, **kw)


def test_per_saga_divides_growth_by_sagas_and_sums_groups() -> None:
    groups = {"orders-0": "orders", "orders-1": "orders", "webview-0": "webview"}
    before = _snap(
        0.0,
        groups=groups,
        handled={"orders-0": 100, "orders-1": 50, "webview-0": 10},
        requests={"orders-0": {"FetchRequest": 10}, "webview-0": {}},
        end_offsets={"orders.commands": 5, "orders.events": 7, "quiet": 3},
        redis_calls=1000,
    )
    after = _snap(
        10.0,
        groups=groups,
        handled={"orders-0": 400, "orders-1": 150, "webview-0": 210},
        requests={"orders-0": {"FetchRequest": 110, "ProduceRequest": 50}, "webview-0": {}},
        end_offsets={"orders.commands": 105, "orders.events": 307, "quiet": 3},
        redis_calls=2301,
    )
    figures = per_saga(before, after, 100)
    assert figures["handled_per_saga"] == {"orders": 4.0, "webview": 2.0}
    assert figures["handled_per_saga_total"] == 6.0
    assert figures["kafka_requests_per_saga"] == {"FetchRequest": 1.0, "ProduceRequest": 0.5}
    assert figures["kafka_requests_per_saga_total"] == 1.5
    # Topics that did not grow are left out; the biggest first.
    assert figures["produced_per_saga"] == {"orders.events": 3.0, "orders.commands": 1.0}
    assert figures["produced_per_saga_total"] == 4.0
    # 1301 calls, one of them the first reading's own INFO.
    assert figures["redis_calls_per_saga"] == 13.0
    assert figures["seconds"] == 10.0 and figures["incomplete"] == []


def test_per_saga_leaves_out_a_restarted_or_unreadable_worker() -> None:
    before = _snap(0.0, groups={"a-0": "a", "b-0": "b"}, handled={"a-0": 100, "b-0": 100})
    after = _snap(
        1.0,
        groups={"a-0": "a", "b-0": "b", "c-0": "c"},
        handled={"a-0": 5, "b-0": 300, "c-0": 9},
        errors=["x"],
    )
    figures = per_saga(before, after, 10)
    assert figures["handled_per_saga"] == {"b": 20.0}
    assert figures["incomplete"] == ["a-0", "c-0"]
    assert figures["produced_per_saga"] is None and figures["redis_calls_per_saga"] is None
    assert figures["errors"] == ["x"]


# ------------------------------------------------------------ CPU per saga


def test_cpu_ms_per_saga_leaves_the_load_generator_out_of_the_system() -> None:
    cpu = {"bench": 20.0, "orders-0": 80.0, "webview-0": 40.0, "broker": 30.0, "redis": 2.0}
    ms = cpu_ms_per_saga(cpu, 40.0)
    assert ms is not None
    # 80% of a core at 40 sagas/s: 0.8 core-s/s / 40 = 20 ms a saga.
    assert ms["processes"] == {"orders-0": 20.0, "webview-0": 10.0, "broker": 7.5, "redis": 0.5}
    assert ms["system"] == 38.0
    assert ms["load_generator"] == 5.0


def test_cpu_ms_per_saga_has_no_system_total_with_a_process_unread() -> None:
    ms = cpu_ms_per_saga({"bench": 10.0, "orders-0": None, "broker": 30.0}, 10.0)
    assert ms is not None and ms["system"] is None and ms["processes"]["broker"] == 30.0


@pytest.mark.parametrize("rate", [None, 0.0])
def test_cpu_ms_per_saga_needs_a_rate(rate: float | None) -> None:
    assert cpu_ms_per_saga({"orders-0": 50.0}, rate) is None


# ----------------------------------------------------------------- step-up


def _steady(rate: float, n: int, latency: float) -> tuple[list[float], list[float]]:
    accepted = [i / rate for i in range(n)]
    return accepted, [a + latency for a in accepted]


def test_a_step_the_system_keeps_up_with_holds() -> None:
    accepted, ends = _steady(50.0, 500, 0.2)
    step = judge_step(50.0, accepted, ends, [0.2] * 500, 0)
    assert step.failed is None
    assert step.p99_s == 0.2 and step.placed == 500
    assert step.accepted_per_s == pytest.approx(50.1, abs=0.1)
    assert step.ended_per_s == pytest.approx(50.1, abs=0.1)


def test_a_step_with_a_slow_tail_fails_on_p99() -> None:
    accepted, ends = _steady(50.0, 500, 0.2)
    latencies = [0.2] * 490 + [P99_LIMIT_S + 0.5] * 10
    step = judge_step(50.0, accepted, ends, latencies, 0)
    assert step.failed is not None and "p99" in step.failed


def test_a_step_whose_orders_come_out_slower_than_they_went_in_fails() -> None:
    accepted = [i / 50.0 for i in range(500)]
    ends = [0.2 + i / 40.0 for i in range(500)]  # 40/s out of 50/s in
    step = judge_step(50.0, accepted, ends, [0.2] * 500, 0)
    assert step.failed is not None and "ended/s" in step.failed


def test_unfinished_orders_fail_a_step_and_count_as_slowest() -> None:
    accepted, ends = _steady(50.0, 500, 0.2)
    step = judge_step(50.0, accepted, ends[:480], [0.2] * 480, 20)
    assert step.failed is not None and "20 unfinished" in step.failed
    assert step.p99_s is None  # slower than any: not a number to print


def test_max_sustained_is_the_fastest_step_that_held() -> None:
    fast, slow = _steady(80.0, 800, 0.3), _steady(40.0, 400, 0.1)
    steps = [
        judge_step(40.0, *slow, [0.1] * 400, 0),
        judge_step(80.0, *fast, [0.3] * 800, 0),
        judge_step(100.0, *fast, [0.3] * 790 + [math.inf] * 10, 0),
    ]
    assert [s.failed is None for s in steps] == [True, True, False]
    assert max_sustained(steps) == steps[1].accepted_per_s
    assert max_sustained(steps[2:]) is None


# ----------------------------------------------------------------- summary


def test_summary_gives_the_cost_figures() -> None:
    result: dict[str, Any] = {
        "config": {
            "orders": 300,
            "warmup": 100,
            "via": "kafka",
            "rate": None,
            "concurrency": 32,
            "workers": 1,
            "partitions": 4,
        },
        "saga": {
            "completed": 300,
            "not_completed": 0,
            "unfinished": 0,
            "rejected": 0,
            "sagas_per_s": 40.0,
            "window": {"ended": 320, "seconds": 8.0},
        },
        "lone": {
            "orders": 30,
            "unfinished": 0,
            "latency_s": {"count": 30, "p50": 0.057, "p99": 0.09},
        },
        "cpu_ms_per_saga": {
            "processes": {"orders-0": 20.0, "broker": 7.5},
            "system": 27.5,
            "load_generator": 5.0,
        },
        "costs": {
            "sagas": 310,
            "seconds": 7.9,
            "handled_per_saga": {"orders": 6.0, "webview": 9.0},
            "handled_per_saga_total": 15.0,
            "kafka_requests_per_saga": {"FetchRequest": 12.5, "ProduceRequest": 9.5},
            "kafka_requests_per_saga_total": 22.0,
            "produced_per_saga": {"orders.events": 7.0},
            "produced_per_saga_total": 30.0,
            "redis_calls_per_saga": 13.0,
            "incomplete": [],
            "errors": [],
        },
        "step_up": {
            "max_sustained_per_s": 37.4,
            "seconds": 26.0,
            "budget_exhausted": False,
            "rule": {"step_s": 10.0},
            "steps": [
                {"rate": 30.0, "accepted_per_s": 30.1, "ended_per_s": 30.0, "p99_s": 0.8,
                 "unfinished": 0, "failed": None},
                {"rate": 37.5, "accepted_per_s": 37.4, "ended_per_s": 37.0, "p99_s": 1.5,
                 "unfinished": 0, "failed": None},
                {"rate": 46.9, "accepted_per_s": 46.5, "ended_per_s": 39.0, "p99_s": None,
                 "unfinished": 60, "failed": "p99 over 2 s"},
            ],
        },
        "notes": [],
    }  # fmt: skip
    text = format_summary(result)
    assert "lone saga     p50 57 ms   p99 90 ms   (30 orders one at a time" in text
    assert "CPU ms/saga   orders-0 20, broker 7.5" in text
    assert "system 27.5 (load generator excluded); load generator 5" in text
    assert "handled/saga  15 over 310 sagas ended in 7.9 s" in text
    assert "                orders 6, webview 9\n" in text
    assert "Kafka/saga    22 requests from the workers (Fetch 12.5, Produce 9.5)" in text
    assert "produced/saga 30 messages" in text
    assert "Redis/saga    13 calls" in text
    assert "max rate      37.4 sagas/s sustained" in text
    assert "38/s: accepted/s 37.4, ended/s 37.0, p99 1.50 s  held" in text
    assert "47/s: accepted/s 46.5, ended/s 39.0, p99 > all, 60 unfinished  FAILED: p99" in text


# ------------------------------------------------------------- Faust chain


def test_the_faust_chain_follows_the_sagas_critical_path() -> None:
    assert len(HOP_GROUPS) == SAGA_HOPS
    spread = hops_by_group()
    assert set(spread) == {g.name for g in GROUPS}  # seven apps, one per group
    assert sorted(h for hops in spread.values() for h in hops) == list(range(SAGA_HOPS))
    assert spread["orders"] == [0, 2, 4, 6, 8] and spread["webview"] == []
    assert faust_topics() == [f"fchain.{i}" for i in range(SAGA_HOPS + 1)]


def test_each_faust_chain_app_is_told_its_hops(tmp_path: Path) -> None:
    env = app_env({"KAFKA_BROKER": "127.0.0.1:1"}, "inventory", tmp_path)
    assert env["ORDERSAGA_CHAIN_HOPS"] == "3"
    assert env["KAFKA_BROKER"] == "127.0.0.1:1"
    assert "ORDERSAGA_CHAIN_SINK" not in env
    assert app_env({}, "webview", tmp_path)["ORDERSAGA_CHAIN_SINK"] == "1"


def test_a_faust_chain_app_has_an_agent_per_hop_and_a_group_of_its_own() -> None:
    app = build_chain_app("inventory", [3, 4], "fchain.", SAGA_HOPS, sink=True)
    assert app.conf.id == "ordersaga-chain-inventory"  # not the real group's consumer group
    topics = {name: sorted(agent.channel.topics) for name, agent in app.agents.items()}
    assert topics == {"hop-3": ["fchain.3"], "hop-4": ["fchain.4"], "sink": ["fchain.9"]}


def test_summary_gives_the_faust_chain() -> None:
    chain = {
        "hops": 13,
        "in_flight": 32,
        "chains": 3000,
        "completed": 3000,
        "chains_per_s": 120.0,
        "latency_s": {"p50": 0.2, "p99": 0.5},
        "cpu_ms_per_chain": {"system": 9.5, "load_generator": 1.2},
        "error": None,
    }
    text = format_summary(
        {
            "config": {"orders": 1, "warmup": 0, "via": "kafka", "concurrency": 32, "workers": 1,
                       "partitions": 4},
            "saga": {"completed": 1, "not_completed": 0, "unfinished": 0, "rejected": 0,
                     "sagas_per_s": 30.0},
            "faust_chain": chain,
        }
    )  # fmt: skip
    assert "Faust chain   120.0 chains/s closed loop, 32 in flight through 13 hops" in text
    assert "CPU ms/chain: system 9.5 (apps and broker), load generator 1.2" in text
    assert "sagas/s is 25.0% of it" in text
