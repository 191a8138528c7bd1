"""The ``ordersaga`` command: run the system, inspect topics, drive the demo."""

from __future__ import annotations

import argparse
import asyncio
import sys

from ordersaga.app.settings import Settings


def _settings() -> Settings:
    return Settings()


def cmd_run(args: argparse.Namespace) -> int:
    """Start broker, Redis, every agent group and the web view; stop on Ctrl-C."""
    from ordersaga.app.runtime import run

    try:
        asyncio.run(run(_settings(), workers_per_group=args.workers))
    except KeyboardInterrupt:
        pass
    return 0


def cmd_topics(args: argparse.Namespace) -> int:
    """List the broker's topics (creating ordersaga's first with --create)."""
    from ordersaga.ops.topics import ensure_topics, list_topics

    settings = _settings()
    if args.create:
        created = asyncio.run(ensure_topics(settings.bootstrap_servers, settings.partitions))
        for name in created:
            print(f"created {name}")
    for name in asyncio.run(list_topics(settings.bootstrap_servers)):
        print(name)
    return 0


def cmd_tail(args: argparse.Namespace) -> int:
    """Print a topic's messages: key, headers and JSON value."""
    from ordersaga.ops.tail import run_tail

    run_tail(
        _settings().bootstrap_servers,
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

    settings = _settings()
    state, accepted = asyncio.run(
        load_state(settings.bootstrap_servers, settings.redis_url or "redis://127.0.0.1:6379/0")
    )
    checks = check_invariants(state, accepted)
    print(report(checks))
    return 0 if all(c.ok for c in checks) else 1


def cmd_dlq(args: argparse.Namespace) -> int:
    """List or replay the dead letters of a topic."""
    from ordersaga.ops.dlq import list_dead_letters, replay_dead_letters

    bootstrap = _settings().bootstrap_servers
    if args.action == "list":
        return asyncio.run(list_dead_letters(bootstrap, args.topic))
    replayed = asyncio.run(replay_dead_letters(bootstrap, args.topic, set(args.id or ())))
    print(f"replayed {replayed} message(s) onto {args.topic.removesuffix('.dlq')}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``ordersaga`` command."""
    parser = argparse.ArgumentParser(prog="ordersaga", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help=cmd_run.__doc__)
    p.add_argument("--workers", type=int, default=1, help="workers per agent group")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("topics", help=cmd_topics.__doc__)
    p.add_argument("--create", action="store_true", help="create missing ordersaga topics")
    p.set_defaults(func=cmd_topics)

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
    p.add_argument("--id", action="append", help="replay only this event id or P:OFFSET")
    p.set_defaults(func=cmd_dlq)

    p = sub.add_parser("demo", help=cmd_demo.__doc__)
    p.add_argument("--url", default=None, help="web view URL (default from settings)")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``ordersaga`` console script."""
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
