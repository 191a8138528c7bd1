"""The ``ordersaga`` command: run the system, inspect topics, drive the demo."""

from __future__ import annotations

import argparse
import asyncio
import sys

from ordersaga.config.settings import Settings, get_settings


def _settings() -> Settings:
    return get_settings()


def _tool_settings() -> Settings:
    """The settings, with the addresses of the system `ordersaga run` runs here if unset."""
    from ordersaga.runtime.running import settings_for_tools

    settings, note = settings_for_tools(get_settings())
    if note:
        print(note, file=sys.stderr)
    return settings


def cmd_run(args: argparse.Namespace) -> int:
    """Start broker, Redis, every agent group and the web view; stop on Ctrl-C."""
    from ordersaga.runtime.system import run

    try:
        asyncio.run(
            run(
                _settings(),
                workers_per_group=args.workers,
                fresh=args.fresh,
                brokers=args.brokers,
                webview_workers=args.webview_workers,
                secure=args.secure,
            )
        )
    except KeyboardInterrupt:
        pass
    return 0


def cmd_acls(args: argparse.Namespace) -> int:
    """Print each group's Kafka ACLs (derived from the declarations); --grant creates them."""
    from ordersaga.runtime.kafka_security import grant
    from ordersaga.topology import TOPOLOGY
    from ordersaga.topology.acls import all_acls

    acls = all_acls(TOPOLOGY)
    if not args.grant:
        for acl in acls:
            kind = acl.resource.name.lower()
            print(f"{acl.principal}\tALLOW\t{acl.operation.name}\t{kind}:{acl.name}")
        return 0
    settings = _tool_settings()
    granted = asyncio.run(grant(settings.bootstrap_servers, settings, acls))
    print(f"granted {granted} ACLs to {len(TOPOLOGY.participants)} users", file=sys.stderr)
    return 0


def cmd_topics(args: argparse.Namespace) -> int:
    """List the broker's topics; --create makes the missing ones, --check reports drift."""
    from ordersaga.runtime.topic_admin import (
        check_topics,
        declared_topics,
        ensure_topics,
        list_topics,
    )

    settings = _tool_settings()
    shape = {
        "replication": settings.replication_factor,
        "retention_bytes": settings.topic_retention_bytes,
        "retention_ms": settings.topic_retention_hours * 3600 * 1000,
    }
    if args.create:
        created = asyncio.run(
            ensure_topics(
                settings.bootstrap_servers,
                settings.partitions,
                replication=shape["replication"],
                retention_bytes=shape["retention_bytes"],
                retention_ms=shape["retention_ms"],
            )
        )
        for name in created:
            print(f"created {name}")
    if args.check:
        declared = declared_topics(settings.partitions, **shape)
        drift = asyncio.run(check_topics(settings.bootstrap_servers, declared))
        for line in drift:
            print(line)
        if drift:
            print(f"{len(drift)} differences from the declarations of {len(declared)} topics")
            return 1
        print(f"all {len(declared)} ordersaga topics as declared")
        return 0
    for name in asyncio.run(list_topics(settings.bootstrap_servers)):
        print(name)
    return 0


def cmd_schemas(args: argparse.Namespace) -> int:
    """Print (or write) the AsyncAPI 3.0 document of every topic and message type."""
    from pathlib import Path

    import orjson

    from ordersaga.ops.asyncapi import asyncapi_document

    text = orjson.dumps(asyncapi_document(), option=orjson.OPT_INDENT_2) + b"\n"
    if args.out:
        Path(args.out).write_bytes(text)
        print(f"wrote {args.out}", file=sys.stderr)
    else:
        sys.stdout.buffer.write(text)
    return 0


def cmd_manifests(args: argparse.Namespace) -> int:
    """Write the Kubernetes kustomize base (workloads, topics, users, monitoring)."""
    from ordersaga.ops.manifests import write_base

    try:
        written = write_base(args.out, args.alerts)
    except ImportError:  # a dev tool: the image has no PyYAML
        print("ordersaga manifests needs PyYAML (make install has it)", file=sys.stderr)
        return 2
    for line in written:
        print(f"wrote {line}", file=sys.stderr)
    return 0


def cmd_seed(args: argparse.Namespace) -> int:
    """Stock the demo catalogue and register the demo customers on a running web view."""
    from ordersaga.edge.tokens import operator_headers
    from ordersaga.runtime.seed import seed_demo

    headers = operator_headers(_settings(), "ordersaga-seed")
    if headers is None:
        print("cannot seed: tokens are signed by their issuer, not here", file=sys.stderr)
        return 2
    asyncio.run(seed_demo(args.url, headers, print))
    return 0


def cmd_tail(args: argparse.Namespace) -> int:
    """Print a topic's messages: key, headers and JSON value."""
    from ordersaga.ops.tail import run_tail

    run_tail(
        _tool_settings().bootstrap_servers,
        args.topic,
        from_beginning=not args.new_only,
        follow=args.follow,
        limit=args.max,
    )
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Run the five scenarios against a running system and print each outcome."""
    from ordersaga.ops.demo import run_demo

    return asyncio.run(run_demo(args.url))


def cmd_audit(args: argparse.Namespace) -> int:
    """Check every saga invariant from the tables; exit 1 if one fails."""
    from ordersaga.ops.audit import check_invariants, load_state, report

    settings = _tool_settings()
    state, accepted = asyncio.run(
        load_state(settings.bootstrap_servers, settings.redis_url_or_default)
    )
    checks = check_invariants(state, accepted)
    print(report(checks))
    return 0 if all(c.ok for c in checks) else 1


def cmd_dlq(args: argparse.Namespace) -> int:
    """List or replay the dead letters of a topic."""
    from ordersaga.ops.dlq import Choice, list_dead_letters, parse_since, replay_dead_letters

    settings = _tool_settings()
    bootstrap = settings.bootstrap_servers
    if args.action == "list":
        return asyncio.run(list_dead_letters(bootstrap, args.topic))
    try:
        since = parse_since(args.since) if args.since else None
        choice = Choice(ids=frozenset(args.id or ()), since=since)
    except ValueError as exc:
        print(f"ordersaga dlq replay: {exc}", file=sys.stderr)
        return 2

    async def replay() -> int:
        from redis.asyncio import Redis

        redis = Redis.from_url(settings.redis_url_or_default)
        try:
            done = await replay_dead_letters(
                bootstrap, redis, args.topic, choice, retention_s=settings.retention_s
            )
        finally:
            await redis.aclose()
        for line in done.lines:
            print(line)
        return done.sent

    replayed = asyncio.run(replay())
    print(f"replayed {replayed} message(s) onto {args.topic.removesuffix('.dlq')}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    """Measure sagas/s, latency, memory and lag, against a plain-Kafka relay ceiling."""
    from pathlib import Path

    from ordersaga.ops.bench import BenchConfig, main

    try:
        config = BenchConfig(
            broker=args.broker,
            via=args.via,
            orders=args.orders,
            warmup=args.warmup,
            rate=args.rate,
            concurrency=args.concurrency or 32,
            workers=args.workers,
            skus=args.skus,
            attach=args.attach,
            relay=not args.no_relay,
            wire=args.wire,
            idle_s=args.idle,
            lone=args.lone,
            # --no-relay has always meant "no ceilings": the Faust chain is one too.
            faust_chain=not (args.no_faust_chain or args.no_relay),
            faust_chains=args.faust_chains,
            step_up=not args.no_step_up,
            overload_s=args.overload,
            kills_s=args.kills,
            brokers=args.brokers,
            broker_loss_s=args.broker_loss,
            relay_messages=args.relay_messages,
            fetch_wait_ms=args.fetch_wait_ms,
            timeout_s=args.timeout,
            order_timeout_s=args.order_timeout,
            settle_s=args.settle,
            retention_s=args.retention,
            join_at=args.join_at,
            audit=args.audit,
            out=Path(args.out) if args.out else None,
        )
    except ValueError as exc:
        print(f"ordersaga bench: {exc}", file=sys.stderr)
        return 2
    return main(config)


def cmd_token(args: argparse.Namespace) -> int:
    """Mint a bearer token for local use, signed with ORDERSAGA_AUTH_SECRET (or --private-key)."""
    from pathlib import Path

    from ordersaga.edge.tokens import Role, mint_token

    roles = [Role.ADMIN] if args.admin else [Role.CUSTOMER]
    subject = args.subject or ("admin" if args.admin else args.customer)
    private_key = Path(args.private_key).read_text(encoding="utf-8") if args.private_key else None
    try:
        token = mint_token(_settings(), subject, roles, ttl_s=args.ttl, private_key=private_key)
    except ValueError as exc:
        print(f"ordersaga token: {exc}", file=sys.stderr)
        return 2
    print(token)
    return 0


def cmd_kafka(args: argparse.Namespace) -> int:
    """Run one of Apache Kafka's console tools from the cached jars (fetched if needed)."""
    import subprocess
    import tempfile
    from pathlib import Path

    from ordersaga.runtime import kafka

    kafka.fetch_jars(lambda line: print(line, file=sys.stderr))
    settings = _tool_settings()
    extra = list(args.args)
    if not any(a in ("--bootstrap-server", "--bootstrap-servers") for a in extra):
        extra = ["--bootstrap-server", settings.bootstrap_servers, *extra]
    if settings.kafka_security_protocol == "PLAINTEXT" or "--command-config" in extra:
        return subprocess.call(kafka.tool_command(args.tool, *extra))
    # The Kafka security settings as the Java client's properties, in a file only
    # this user reads and that is gone when the tool ends (it holds the password).
    with tempfile.TemporaryDirectory(prefix="ordersaga-kafka-") as private:
        config = Path(private) / "client.properties"
        config.write_text(settings.java_client_properties_file())
        return subprocess.call(
            kafka.tool_command(args.tool, *extra, "--command-config", str(config))
        )


def cmd_settings(args: argparse.Namespace) -> int:
    """Print the effective settings by section (secrets masked), or the README's table."""
    from pathlib import Path

    from pydantic import ValidationError

    from ordersaga.config import describe

    if args.markdown:
        table = describe.markdown()
        if args.update_readme is None:
            print(table, end="")
            return 0
        readme = Path(args.update_readme)
        try:
            text = describe.with_readme_block(readme.read_text(encoding="utf-8"), table)
        except ValueError as exc:
            print(f"ordersaga settings: {readme}: {exc}", file=sys.stderr)
            return 2
        readme.write_text(text, encoding="utf-8")
        print(f"updated the settings block of {readme}")
        return 0
    if args.update_readme is not None:
        print("ordersaga settings: --update-readme goes with --markdown", file=sys.stderr)
        return 2
    try:
        settings = _settings()
    except ValidationError as exc:
        print(f"ordersaga settings: {exc}", file=sys.stderr)
        return 2
    print(describe.as_json(settings) if args.json else describe.as_text(settings), end="")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``ordersaga`` command."""
    parser = argparse.ArgumentParser(prog="ordersaga", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help=cmd_run.__doc__)
    p.add_argument("--workers", type=int, default=1, help="workers per agent group")
    p.add_argument(
        "--webview-workers",
        type=int,
        default=None,
        help="web view workers (default: --workers); they share Redis, limits included",
    )
    p.add_argument(
        "--brokers",
        type=int,
        default=1,
        help="Apache Kafka nodes (3: replication factor 3, min.insync.replicas 2)",
    )
    p.add_argument(
        "--fresh",
        action="store_true",
        help="start the broker's and Redis' data from nothing (Apache Kafka keeps it otherwise)",
    )
    p.add_argument(
        "--secure",
        action="store_true",
        help="Apache Kafka with SASL_SSL only: a local CA, a user per group, ACLs from "
        "the declarations (kept in <data dir>/kafka-secure)",
    )
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("kafka", help=cmd_kafka.__doc__)
    p.add_argument(
        "tool", choices=["console-consumer", "console-producer", "topics", "consumer-groups"]
    )
    p.add_argument("args", nargs=argparse.REMAINDER, help="the tool's own arguments")
    p.set_defaults(func=cmd_kafka)

    p = sub.add_parser("token", help=cmd_token.__doc__)
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--customer", metavar="ID", help="a customer's token (role customer)")
    who.add_argument("--admin", action="store_true", help="an admin's token (role admin)")
    p.add_argument("--subject", help="the admin token's sub (default: admin)")
    p.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds (default 3600)")
    p.add_argument("--private-key", help="PEM file signing RS256/ES256 tokens")
    p.set_defaults(func=cmd_token)

    p = sub.add_parser("settings", help=cmd_settings.__doc__)
    shape = p.add_mutually_exclusive_group()
    shape.add_argument("--json", action="store_true", help="as JSON: section, variable, value")
    shape.add_argument(
        "--markdown",
        action="store_true",
        help="the README's tables of every setting's default and meaning instead",
    )
    p.add_argument(
        "--update-readme",
        metavar="PATH",
        nargs="?",
        const="README.md",
        default=None,
        help="with --markdown: write the tables between PATH's settings markers",
    )
    p.set_defaults(func=cmd_settings)

    p = sub.add_parser("topics", help=cmd_topics.__doc__)
    p.add_argument("--create", action="store_true", help="create missing ordersaga topics")
    p.add_argument(
        "--check",
        action="store_true",
        help="report every topic whose partitions, replication or configs differ from "
        "the declarations (exit 1 if any)",
    )
    p.set_defaults(func=cmd_topics)

    p = sub.add_parser("acls", help=cmd_acls.__doc__)
    p.add_argument(
        "--grant",
        action="store_true",
        help="create them on the broker (as a super user: ORDERSAGA_KAFKA_SASL_*)",
    )
    p.set_defaults(func=cmd_acls)

    p = sub.add_parser("schemas", help=cmd_schemas.__doc__)
    p.add_argument(
        "--out",
        metavar="PATH",
        help="write it to PATH (docs/asyncapi.json is the committed copy) instead of stdout",
    )
    p.set_defaults(func=cmd_schemas)

    p = sub.add_parser("manifests", help=cmd_manifests.__doc__)
    p.add_argument("--out", metavar="DIR", default="deploy/k8s/base", help="where to write them")
    p.add_argument(
        "--alerts",
        metavar="PATH",
        default="deploy/alerts.yml",
        help="the Prometheus rules to ship as a PrometheusRule",
    )
    p.set_defaults(func=cmd_manifests)

    p = sub.add_parser("seed", help=cmd_seed.__doc__)
    p.add_argument("--url", default="http://127.0.0.1:6066", help="the web view")
    p.set_defaults(func=cmd_seed)

    p = sub.add_parser("tail", help=cmd_tail.__doc__)
    p.add_argument("topic")
    p.add_argument("-f", "--follow", action="store_true", help="keep waiting for new messages")
    p.add_argument("--new-only", action="store_true", help="start at the end of the topic")
    p.add_argument("-n", "--max", type=int, default=None, help="stop after this many")
    p.set_defaults(func=cmd_tail)

    p = sub.add_parser("audit", help=cmd_audit.__doc__)
    p.set_defaults(func=cmd_audit)

    p = sub.add_parser("dlq", help=cmd_dlq.__doc__)
    p.add_argument("action", choices=["list", "replay"])
    p.add_argument("topic", help="the source topic (orders.commands) or its .dlq")
    p.add_argument("--id", action="append", help="replay this event id or P:OFFSET (repeatable)")
    p.add_argument(
        "--since",
        help="replay those parked since: a duration ago (10m, 2h) or an ISO-8601 time; "
        "replay needs --id or --since, refuses messages older than ORDERSAGA_RETENTION_S "
        "and never replays a dead letter twice (marks kept in Redis)",
    )
    p.set_defaults(func=cmd_dlq)

    p = sub.add_parser("demo", help=cmd_demo.__doc__)
    p.add_argument("--url", default=None, help="web view URL (default from settings)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("bench", help=cmd_bench.__doc__)
    p.add_argument("--via", choices=["kafka", "http"], default="kafka", help="how orders go in")
    p.add_argument("--orders", type=int, default=3000, help="measured orders")
    p.add_argument("--warmup", type=int, default=300, help="orders before the measured ones")
    loop = p.add_mutually_exclusive_group()
    loop.add_argument("--rate", type=float, default=None, help="open loop: orders per second")
    loop.add_argument(
        "--concurrency", type=int, default=None, help="closed loop: orders in flight (default 32)"
    )
    p.add_argument("--workers", type=int, default=1, help="workers per agent group")
    p.add_argument(
        "--webview-workers",
        type=int,
        default=None,
        help="web view workers (default: --workers); they share Redis, limits included",
    )
    p.add_argument(
        "--broker",
        choices=["kafka", "tansu", "auto"],
        default=None,
        help="the broker of the system the bench starts (default: ORDERSAGA_BROKER)",
    )
    p.add_argument("--skus", type=int, default=4, help="SKUs the orders spread over")
    p.add_argument(
        "--attach", action="store_true", help="use the system at KAFKA_BROKER/ORDERSAGA_WEB_PORT"
    )
    p.add_argument(
        "--no-relay",
        action="store_true",
        help="skip the ceilings (plain-Kafka relay and chain, Faust chain)",
    )
    p.add_argument(
        "--no-faust-chain",
        action="store_true",
        help="skip the bare-Faust chain ceiling only (seven pass-through Faust apps)",
    )
    p.add_argument(
        "--faust-chains", type=int, default=1000, help="chains of the bare-Faust ceiling"
    )
    p.add_argument(
        "--lone",
        type=int,
        default=30,
        help="orders placed one at a time on the idle system first: lone-saga latency (0: skip)",
    )
    p.add_argument(
        "--no-step-up",
        action="store_true",
        help="skip the open-loop step-up to the maximum sustained rate (via Kafka)",
    )
    p.add_argument(
        "--overload",
        type=float,
        default=0.0,
        help="then offer twice the measured rate over HTTP for this many seconds",
    )
    p.add_argument(
        "--kills",
        type=float,
        default=0.0,
        help="then offer half the maximum rate over HTTP for this many seconds "
        "while a saga worker is SIGKILLed every 3-5 s",
    )
    p.add_argument(
        "--brokers",
        type=int,
        default=1,
        choices=(1, 3),
        help="Apache Kafka nodes of the embedded system",
    )
    p.add_argument(
        "--broker-loss",
        type=float,
        default=0.0,
        help="then offer 15 orders/s over HTTP for this many seconds with one broker "
        "SIGKILLed for the middle third (needs --brokers 3)",
    )
    p.add_argument(
        "--idle", type=float, default=15.0, help="seconds of idle CPU measured at the end (0: skip)"
    )
    p.add_argument(
        "--wire",
        action="store_true",
        help="count the Kafka requests per saga, by API and process (needs tshark)",
    )
    p.add_argument("--relay-messages", type=int, default=None, help="default: --orders")
    p.add_argument(
        "--fetch-wait-ms", type=int, default=None, help="fetch wait of the bench's consumers"
    )
    p.add_argument(
        "--timeout", type=float, default=120.0, help="give up on orders after this long idle (s)"
    )
    p.add_argument(
        "--order-timeout", type=float, default=60.0, help="closed loop: wait per order (s)"
    )
    p.add_argument("--settle", type=float, default=15.0, help="wait for lag to drain (s)")
    p.add_argument(
        "--retention",
        type=float,
        default=None,
        help="ORDERSAGA_RETENTION_S of the embedded system (short: memory stays flat in a run)",
    )
    p.add_argument(
        "--join-at",
        type=float,
        default=None,
        help="start one more worker per group once this fraction of the orders ended",
    )
    p.add_argument("--audit", action="store_true", help="check the invariants at the end")
    p.add_argument("--out", default=None, help="JSON file (default bench-results/bench-*.json)")
    p.set_defaults(func=cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``ordersaga`` console script."""
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
