"""Agent groups built from explicit settings, next to the default ones, in one process.

``<group>.build(settings)`` makes a group from those settings alone: no
environment is read or written here, and the default group the other agent
tests drive (``orders.node``, ``payments.app``, ...) is another app.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import redis.asyncio as aioredis
from mode.utils.objects import qualname

from ordersaga.adapters.gateway import GATEWAY_JOURNAL
from ordersaga.agents import orders, payments, webview
from ordersaga.config.settings import Settings
from ordersaga.schemas.messages import ChargePayment, PaymentCharged, PaymentDeclined
from ordersaga.shell.topics import (
    CUSTOMERS_COMMANDS,
    ORDERS_COMMANDS,
    ORDERS_REPLIES,
    PAYMENTS_COMMANDS,
)
from tests.harness import CUSTOMER_ID, ORDER_ID, TOTAL, place_order

ROOT = Path(__file__).resolve().parents[2]


def own_settings(tmp_path: Path, **changes: object) -> Settings:
    """Settings that differ from the defaults' where a test can see it."""
    default = orders.settings
    return Settings(
        data_dir=str(tmp_path / "own"),
        partitions=default.partitions + 3,
        step_timeout_s=default.step_timeout_s + 1.25,
        **changes,
    )


async def test_an_orders_group_built_from_its_own_settings_runs_by_them(tmp_path, capture, drive):
    own = own_settings(tmp_path)
    built = orders.build(own)

    assert built.app is not orders.app and built.node is not orders.node
    assert built.settings is own and built.node.settings is own
    # The app, its tables and its topics, configured from these settings.
    assert built.app.conf.topic_partitions == own.partitions != orders.app.conf.topic_partitions
    assert Path(built.app.conf.datadir) == tmp_path / "own" / "orders"
    assert (tmp_path / "own").is_dir()
    assert built.sagas.faust_table.partitions == own.partitions
    assert built.forgotten.faust_table.partitions == own.partitions
    assert {t.partitions for t in built.node._topics.values()} == {own.partitions}
    # The rules' parameters too.
    assert built.policy == own.saga_policy()
    assert built.policy.step_timeout_s == own.step_timeout_s != orders.policy.step_timeout_s
    # Named as the default group's are: agent names and Faust's timer names.
    assert set(built.app.agents) == set(orders.app.agents) == {"ordersaga.agents.orders.run_sagas"}
    assert qualname(built.expire_overdue_steps) == "ordersaga.agents.orders.expire_overdue_steps"
    assert qualname(built.forget_finished_orders) == qualname(orders.forget_finished_orders)

    outbox = capture(built.node)
    before = time.time()
    async with drive(built.run_sagas, built.node) as d:
        await d.put(place_order(), key=ORDER_ID, topic=ORDERS_COMMANDS)
    after = time.time()

    [validate] = outbox.on(CUSTOMERS_COMMANDS)
    assert validate.key == CUSTOMER_ID.encode()
    saga = built.sagas.get(ORDER_ID)
    assert saga is not None and saga["awaiting"] == "CustomerValidated"
    # The first step's deadline is the built group's step timeout away.
    assert before + own.step_timeout_s <= saga["deadline"] <= after + own.step_timeout_s
    assert ORDER_ID in built.deadlines.due(after + own.step_timeout_s)
    # The default group saw nothing of it.
    assert orders.sagas.get(ORDER_ID) is None
    assert ORDER_ID not in orders.deadlines.due(after + own.step_timeout_s)


async def test_a_payments_group_built_from_its_own_settings_uses_its_own_gateway(
    tmp_path, capture, drive, valkey_port
):
    # The default group's gateway has its faults on (tests/harness.py): a decline
    # token declines there. This one's are off, and its journal is in db 1.
    own = own_settings(
        tmp_path, gateway_faults=False, REDIS_URL=f"redis://127.0.0.1:{valkey_port}/1"
    )
    built = payments.build(own)
    assert built.gateway is not payments.gateway
    assert (built.gateway.faults, payments.gateway.faults) == (False, True)
    assert built.payment_ledger.faust_table.partitions == own.partitions
    journal = aioredis.from_url(f"redis://127.0.0.1:{valkey_port}/1")
    try:
        await journal.flushdb()
        command = ChargePayment(
            order_id=ORDER_ID, customer_id=CUSTOMER_ID, payment_token="tok_decline", amount=TOTAL
        )
        own_outbox, default_outbox = capture(built.node), capture(payments.node)
        async with drive(built.process_payments, built.node) as d:
            await d.put(command, key=ORDER_ID, topic=PAYMENTS_COMMANDS)
        async with drive(payments.process_payments, payments.node) as d:
            await d.put(command, key=ORDER_ID, topic=PAYMENTS_COMMANDS)

        assert own_outbox.messages(ORDERS_REPLIES) == [
            PaymentCharged(order_id=ORDER_ID, amount=TOTAL, charge_id=f"ch_{ORDER_ID}")
        ]
        assert default_outbox.messages(ORDERS_REPLIES) == [
            PaymentDeclined(order_id=ORDER_ID, reason="card_declined")
        ]
        assert built.payment_ledger.get(ORDER_ID)["status"] == "charged"
        assert payments.payment_ledger.get(ORDER_ID)["status"] == "declined"
        # The charge was journalled where the built group's settings say.
        assert await journal.hget(GATEWAY_JOURNAL + ORDER_ID, "charged") == str(TOTAL).encode()
    finally:
        await journal.flushdb()
        await journal.aclose()
        await built.gateway.redis.aclose()


def test_a_webview_group_built_from_its_own_settings_keeps_its_timer_names(tmp_path):
    built = webview.build(own_settings(tmp_path))
    assert built.desk.settings is built.node.settings
    # The repair loops' timers are named after the loops (their metric labels).
    assert qualname(built.redrive_repair) == "ordersaga.agents.repairs.redrive_unconfirmed_orders"
    assert qualname(built.refresh_repair) == "ordersaga.agents.repairs.refresh_stale_order_views"
    assert qualname(built.gauge_dead_letters) == "ordersaga.agents.webview.gauge_dead_letters"
    assert qualname(built.say_whether_auth_is_on) == qualname(webview.say_whether_auth_is_on)
    assert set(built.app.agents) == set(webview.app.agents)


def test_importing_an_agent_module_builds_nothing_until_faust_asks_for_its_app(tmp_path):
    """``faust -A ordersaga.agents.<group>`` reads ``app``; the import alone builds no app."""
    data_dir = tmp_path / "state"
    script = (
        "import importlib, pathlib, sys\n"
        "from faust.cli.base import find_app\n"
        "for group in ('customers', 'inventory', 'notifications', 'orders', 'payments',"
        " 'shipping', 'webview'):\n"
        "    importlib.import_module(f'ordersaga.agents.{group}')\n"
        "data_dir = pathlib.Path(sys.argv[1])\n"
        "assert not data_dir.exists(), 'an import built a group'\n"
        "app = find_app('ordersaga.agents.payments')\n"
        "from ordersaga.agents import payments\n"
        "assert app is payments.app is payments.default().app\n"
        "assert (data_dir / 'payments').is_dir() or data_dir.is_dir()\n"
        "print(app.conf.id)\n"
    )
    env = {**os.environ, "ORDERSAGA_DATA_DIR": str(data_dir)}
    done = subprocess.run(
        [sys.executable, "-c", script, str(data_dir)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ordersaga-payments"
