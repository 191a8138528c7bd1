"""The one-screen summary of a bench result, and where the result file goes by default."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any


def _fmt_s(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def _fmt_mb(kb: int | None) -> str:
    return "?" if kb is None else f"{kb / 1024:.0f}"


def _fmt_rate(rate: float | None) -> str:
    return "n/a" if rate is None else f"{rate:.1f}"


def _fmt_lag(lag: Mapping[str, Any] | None) -> str:
    if not lag:
        return "-"
    return ", ".join(
        f"{group} n/a" if "error" in figures else f"{group} {figures['total']}"
        for group, figures in lag.items()
    )


def _row(label: str, text: str) -> str:
    return f"  {label:<14}{text}"


def _chunks(items: Sequence[str], size: int) -> list[str]:
    return [", ".join(items[i : i + size]) for i in range(0, len(items), size)] or ["-"]


def _fmt_n(n: float | None) -> str:
    return "n/a" if n is None else f"{n:g}"


def _cost_lines(result: Mapping[str, Any]) -> list[str]:
    """CPU ms, handled and produced messages, Kafka requests and Redis calls per saga."""
    lines: list[str] = []
    ms = result.get("cpu_ms_per_saga")
    if ms:
        named = [f"{n} {_fmt_n(v)}" for n, v in ms["processes"].items()]
        for i, chunk in enumerate(_chunks(named, 5)):
            lines.append(_row("CPU ms/saga" if i == 0 else "", chunk))
        lines.append(
            _row(
                "",
                f"system {_fmt_n(ms['system'])} (load generator excluded); "
                f"load generator {_fmt_n(ms['load_generator'])}",
            )
        )
    costs = result.get("costs")
    if costs:
        handled = costs.get("handled_per_saga") or {}
        lines.append(
            _row(
                "handled/saga",
                f"{_fmt_n(costs.get('handled_per_saga_total'))} over {costs['sagas']} sagas "
                f"ended in {costs['seconds']:.1f} s between the two readings",
            )
        )
        by_group = [f"{g} {n:g}" for g, n in handled.items()]
        lines.extend(_row("", chunk) for chunk in _chunks(by_group, 7) if by_group)
        requests = costs.get("kafka_requests_per_saga") or {}
        top = [f"{a.removesuffix('Request')} {n:g}" for a, n in list(requests.items())[:5]]
        lines.append(
            _row(
                "Kafka/saga",
                f"{_fmt_n(costs.get('kafka_requests_per_saga_total'))} requests from the workers"
                + (f" ({', '.join(top)})" if top else ""),
            )
        )
        lines.append(
            _row(
                "produced/saga",
                f"{_fmt_n(costs.get('produced_per_saga_total'))} messages, changelogs "
                "included (by topic in the JSON)",
            )
        )
        lines.append(_row("Redis/saga", f"{_fmt_n(costs.get('redis_calls_per_saga'))} calls"))
        if costs.get("incomplete"):
            lines.append(_row("", f"left out (unreadable or restarted): {costs['incomplete']}"))
    return lines


def _faust_chain_lines(result: Mapping[str, Any]) -> list[str]:
    chain = result.get("faust_chain")
    if not chain:
        return []
    if chain.get("note"):
        return [_row("Faust chain", chain["note"])]
    latency = chain.get("latency_s") or {}
    ms = chain.get("cpu_ms_per_chain") or {}
    rate = result.get("saga", {}).get("sagas_per_s")
    share = (
        f"; sagas/s is {rate / chain['chains_per_s'] * 100:.1f}% of it"
        if rate and chain["chains_per_s"]
        else ""
    )
    return [
        _row(
            "Faust chain",
            f"{chain['chains_per_s']:.1f} chains/s closed loop, {chain['in_flight']} in flight "
            f"through {chain['hops']} hops, 7 pass-through Faust apps ({chain['completed']} of "
            f"{chain['chains']}; p50 {_fmt_s(latency.get('p50'))}, "
            f"p99 {_fmt_s(latency.get('p99'))})"
            + (f"  ERROR {chain['error']}" if chain.get("error") else ""),
        ),
        _row(
            "",
            f"CPU ms/chain: system {_fmt_n(ms.get('system'))} (apps and broker), load generator "
            f"{_fmt_n(ms.get('load_generator'))}{share}",
        ),
    ]


def _step_up_lines(step_up: Mapping[str, Any]) -> list[str]:
    best = step_up.get("max_sustained_per_s")
    lines = [
        _row(
            "max rate",
            ("no step held" if best is None else f"{best:.1f} sagas/s sustained")
            + f" (open loop via Kafka, {step_up['rule']['step_s']:.0f} s steps, "
            f"{step_up['seconds']:.0f} s in all"
            + (", stopped by the time budget)" if step_up.get("budget_exhausted") else ")"),
        )
    ]
    if step_up.get("left_unfinished"):
        lines.append(
            _row("", f"{step_up['left_unfinished']} step-up orders had not ended when it gave up")
        )
    for step in step_up["steps"]:
        lines.append(
            _row(
                "",
                f"{step['rate']:.0f}/s: accepted/s {_fmt_rate(step['accepted_per_s'])}, "
                f"ended/s {_fmt_rate(step['ended_per_s'])}, p99 "
                + ("> all" if step["p99_s"] is None else _fmt_s(step["p99_s"]))
                + (f", {step['unfinished']} unfinished" if step["unfinished"] else "")
                + (f"  FAILED: {step['failed']}" if step["failed"] else "  held"),
            )
        )
    return lines


def format_summary(result: Mapping[str, Any]) -> str:
    """The one-screen summary of a bench result (the dict written as JSON)."""
    cfg, saga = result["config"], result["saga"]
    loop = (
        f"open loop at {cfg['rate']:g}/s"
        if cfg.get("rate")
        else f"closed loop, {cfg['concurrency']} in flight"
    )
    where = "attached" if cfg.get("attach") else f"{cfg['workers']} worker(s) per group"
    lines = [
        f"ordersaga bench: {cfg['orders']} orders after {cfg['warmup']} warm-up, "
        f"via {cfg['via']}, {loop}, {where}, {cfg['partitions']} partitions",
    ]
    window = saga.get("window")
    if window:
        accepted = saga.get("accepted_per_s")
        lines.append(
            _row(
                "sagas/s",
                f"{saga['sagas_per_s']:.1f}   ({window['ended']} ended in the "
                f"{window['seconds']:.1f} s window)   accepted/s "
                + (f"{accepted:.1f}" if accepted else "-"),
            )
        )
    else:
        lines.append(_row("sagas/s", "n/a (no measured order both accepted and ended)"))
    lat = saga.get("latency_s")
    if lat:
        lines.append(
            _row(
                "latency",
                f"p50 {_fmt_s(lat['p50'])}   p95 {_fmt_s(lat['p95'])}   "
                f"p99 {_fmt_s(lat['p99'])}   max {_fmt_s(lat['max'])}   ({lat['count']} orders)",
            )
        )
    lone = result.get("lone")
    if lone:
        lone_lat = lone.get("latency_s") or {}
        lines.append(
            _row(
                "lone saga",
                f"p50 {_fmt_s(lone_lat.get('p50'))}   p99 {_fmt_s(lone_lat.get('p99'))}   "
                f"({lone_lat.get('count', 0)} orders one at a time on the idle system"
                + (f", {lone['unfinished']} unfinished)" if lone["unfinished"] else ")"),
            )
        )
    if result.get("step_up"):
        lines.extend(_step_up_lines(result["step_up"]))
    detail = ", ".join(f"{k} {v}" for k, v in saga.get("not_completed_by", {}).items())
    lines.append(
        _row(
            "outcomes",
            f"{saga['completed']} COMPLETED, {saga['not_completed']} not COMPLETED"
            f"{f' ({detail})' if detail else ''}, {saga['unfinished']} unfinished, "
            f"{saga['rejected']} rejected at injection"
            + (f", {saga['refused']} refused with 429" if saga.get("refused") else ""),
        )
    )
    relay = result.get("relay")
    if relay is None:
        lines.append(_row("ceiling", "skipped (--no-relay)"))
    else:
        lines.append(
            _row(
                "ceiling",
                f"relay of {relay['hops']} hops, {relay['message_bytes']}-byte messages: "
                f"{relay['messages_per_s']:.1f} msg/s end to end ({relay['received']} of "
                f"{relay['messages']} in {relay['seconds']:.1f} s"
                + (
                    f", bench CPU {relay['cpu_percent']['bench']:.0f}%)"
                    if (relay.get("cpu_percent") or {}).get("bench") is not None
                    else ")"
                )
                + (f"  ERROR {relay['error']}" if relay.get("error") else ""),
            )
        )
        chain = result.get("chain")
        if chain:
            latency = chain.get("latency_s") or {}
            lines.append(
                _row(
                    "chain ceiling",
                    f"{chain['chains_per_s']:.1f} chains/s closed loop, {chain['in_flight']} in "
                    f"flight through {chain['hops']} hops ({chain['completed']} of "
                    f"{chain['chains']}; p50 {_fmt_s(latency.get('p50'))}, "
                    f"p99 {_fmt_s(latency.get('p99'))})"
                    + (f"  ERROR {chain['error']}" if chain.get("error") else ""),
                )
            )
        ratio, chain_ratio = result.get("ratio"), result.get("chain_ratio")
        lines.append(
            _row(
                "saga/ceiling",
                ("n/a" if chain_ratio is None else f"{chain_ratio * 100:.1f}% of the chain rate")
                + "; "
                + ("n/a" if ratio is None else f"{ratio * 100:.1f}% of the flood relay"),
            )
        )
    lines.extend(_faust_chain_lines(result))
    wire = result.get("wire")
    if wire:
        if wire.get("error"):
            lines.append(_row("wire", wire["error"]))
        else:
            per = [f"{api} {n:g}" for api, n in wire["requests_per_saga"].items()]
            for i, chunk in enumerate(_chunks(per, 6)):
                lines.append(_row("requests/saga" if i == 0 else "", chunk))
            lines.append(
                _row(
                    "bytes/saga",
                    f"{wire['bytes_per_saga']} to the broker ("
                    + ", ".join(f"{p} {n}" for p, n in wire["bytes_per_saga_by_process"].items())
                    + ")",
                )
            )
    rss = result.get("rss") or {}
    if rss.get("note"):
        lines.append(_row("peak RSS", rss["note"]))
    else:
        named = [f"{n} {_fmt_mb(kb)}" for n, kb in rss.get("workers_kb", {}).items()]
        named += [f"{n} {_fmt_mb(kb)}" for n, kb in rss.get("servers_kb", {}).items()]
        for i, chunk in enumerate(_chunks(named, 6)):
            lines.append(_row("peak RSS MB" if i == 0 else "", chunk))
    cpu = result.get("cpu_percent")
    if cpu:
        named = [f"{n} {'?' if v is None else f'{v:.0f}'}" for n, v in cpu.items()]
        for i, chunk in enumerate(_chunks(named, 6)):
            lines.append(_row("CPU % sagas" if i == 0 else "", chunk))
    lines.extend(_cost_lines(result))
    memory = result.get("memory")
    if memory:
        named = [f"{n} {g * 100:+.0f}%" for n, g in memory["growth"].items()]
        for i, chunk in enumerate(_chunks(named, 6)):
            lines.append(
                _row(
                    f"RSS {memory['early']['ended']}->{memory['late']['ended']}" if i == 0 else "",
                    chunk,
                )
            )
    join = result.get("join")
    if join:
        rates = join["rates"]
        lines.append(
            _row(
                "worker joins",
                f"{len(join.get('workers', []))} at {join['ended_before']} ended: sagas/s before "
                f"{_fmt_rate(rates['before'])}, during {_fmt_rate(rates['during'])} "
                f"({rates.get('during_s', 0):.0f} s), after {_fmt_rate(rates['after'])}",
            )
        )
    audit = result.get("audit")
    if audit:
        failed = [c["name"] for c in audit["checks"] if not c["ok"]]
        passed = f"PASS ({len(audit['checks'])} checks)"
        lines.append(_row("audit", passed if audit["ok"] else f"FAIL {failed}"))
    over = result.get("overload")
    if over:
        latency = over.get("latency_s") or {}
        lines.append(
            _row(
                "overload",
                f"{over['offered_per_s']:.0f}/s offered for {over['seconds']:.0f} s over HTTP: "
                f"{over['accepted']} accepted, {over['refused_429']} refused with 429; "
                f"{over['completed']} COMPLETED, {over['step_timeouts']} FAILED step_timeout, "
                f"{over['unfinished']} unfinished; p99 {_fmt_s(latency.get('p99'))}",
            )
        )
    for key, title in (("kills", "kills"), ("broker_loss", "broker loss")):
        fault = result.get(key)
        if fault:
            lines.append(_row(title, _fault_line(key, fault)))
    idle = result.get("idle")
    if idle:
        if idle.get("note"):
            lines.append(_row("idle CPU", idle["note"]))
        else:
            named = [f"{n} {'?' if v is None else f'{v:.1f}'}" for n, v in idle["percent"].items()]
            lines.append(
                _row(
                    "idle CPU",
                    f"{idle['total_percent']:.1f}% of one core in all, over "
                    f"{idle['seconds']:.0f} s after the load (forgetting included)",
                )
            )
            for chunk in _chunks(named, 6):
                lines.append(_row("", chunk))
    if "group_join_s" in result:
        joined = result["group_join_s"]
        lines.append(
            _row(
                "group join",
                "no assignment within the timeout"
                if joined is None
                else f"{joined:.2f} s for a fresh consumer in a new group (quiet system)",
            )
        )
    lag = result.get("lag") or {}
    lines.append(_row("lag at end", _fmt_lag(lag.get("at_end"))))
    if lag.get("settled") is not None:
        lines.append(_row(f"lag +{lag.get('settled_after_s', 0):.0f} s", _fmt_lag(lag["settled"])))
    lines.extend(_row("note", note) for note in result.get("notes", []))
    if result.get("out"):
        lines.append(_row("results", str(result["out"])))
    return "\n".join(lines)


def default_out_path(now: datetime) -> Path:
    """``bench-results/bench-<UTC timestamp>.json``."""
    return Path("bench-results") / f"bench-{now.strftime('%Y%m%d-%H%M%S')}.json"


def _fault_line(key: str, fault: dict[str, Any]) -> str:
    """What a fault phase offered, what was answered and how fast, and how orders ended."""
    if fault.get("skipped"):
        return f"skipped: {fault['skipped']}"
    if key == "kills":
        what = f"{fault['kills']} saga workers SIGKILLed ({fault['killed']})"
    else:
        what = f"broker {fault['broker_killed']} SIGKILLed for {fault['down_s']:.0f} s"
    posts = fault.get("post_s") or {}
    return (
        f"{fault['offered_per_s']:.0f}/s offered for {fault['seconds']:.0f} s over HTTP, {what}: "
        f"{fault['accepted']} of {fault['offered']} accepted "
        f"({100 * fault['accepted_share']:.0f}%), answers {fault['answers']}; POST p99 "
        f"{_fmt_s(posts.get('p99'))}, max {_fmt_s(posts.get('max'))}, "
        f"{fault['posts_over_3_s']} over 3 s; {fault['completed']} COMPLETED, "
        f"{fault['step_timeouts']} FAILED step_timeout, {fault['unfinished']} unfinished"
    )
