"""The orders group shell: ``run_sagas`` and the ``expire_overdue_steps`` timer."""

from __future__ import annotations

import inspect
import time
from datetime import UTC, datetime
from types import SimpleNamespace

import orjson
import pytest

from ordersaga.agents import orders
from ordersaga.saga.order_ids import mint_order_id
from ordersaga.schemas.messages import (
    CancelOrder,
    ChargePayment,
    CommitStock,
    CustomerValidated,
    ForgetHolds,
    ForgetOrders,
    OrderEnded,
    OrderEvent,
    OrderLine,
    PaymentCharged,
    PaymentDeclined,
    PrepareShipment,
    PricedLine,
    ReleaseStock,
    RepublishOrder,
    ReserveStock,
    ShipmentPrepared,
    SkuCommand,
    StepDeadlineExpired,
    StockChanged,
    StockCommitted,
    StockReleased,
    StockReserved,
    ValidateCustomer,
)
from ordersaga.shell.codec import encode
from ordersaga.shell.topics import (
    CUSTOMERS_COMMANDS,
    FORGET_TOPICS,
    INVENTORY_COMMANDS,
    INVENTORY_SKU_COMMANDS,
    ORDERS_COMMANDS,
    ORDERS_EVENTS,
    ORDERS_OUTCOMES,
    ORDERS_REPLIES,
    PAYMENTS_COMMANDS,
    SHIPPING_COMMANDS,
    partition_of,
)
from tests.harness import (
    ADDRESS,
    CUSTOMER_ID,
    ITEMS,
    ORDER_ID,
    PRICES,
    TOTAL,
    event_id_of,
    place_order,
    with_type,
)

LINES = tuple(
    PricedLine(sku=line.sku, quantity=line.quantity, unit_price=PRICES[line.sku]) for line in ITEMS
)


@pytest.fixture
def outbox(capture):
    return capture(orders.node)


def saga(order_id: str = ORDER_ID) -> dict:
    raw = orders.sagas.get(order_id)
    assert raw is not None, f"no saga for {order_id}"
    return raw


VALIDATED = CustomerValidated(order_id=ORDER_ID, customer_id=CUSTOMER_ID)


def events(outbox) -> list[OrderEvent]:
    return [m for m in outbox.messages(ORDERS_EVENTS) if isinstance(m, OrderEvent)]


async def test_place_order_starts_saga_and_asks_about_the_customer(drive, outbox):
    async with drive(orders.run_sagas, orders.node) as d:
        fed = await d.put(place_order(), key=ORDER_ID, topic=ORDERS_COMMANDS)

    assert saga()["status"] == "PENDING"
    assert saga()["awaiting"] == "CustomerValidated"

    assert outbox.topics() == [CUSTOMERS_COMMANDS, ORDERS_EVENTS]
    [validate] = outbox.on(CUSTOMERS_COMMANDS)
    # Keyed by the customer, so it meets the customer's account on its partition.
    assert validate.key == CUSTOMER_ID.encode()
    assert validate.message == ValidateCustomer(order_id=ORDER_ID, customer_id=CUSTOMER_ID)
    assert validate.envelope.event_id == f"{ORDER_ID}:1:1:0:ValidateCustomer"
    assert validate.envelope.order_id == ORDER_ID
    assert validate.envelope.correlation_id == ORDER_ID
    assert validate.envelope.causation_id == event_id_of(fed)  # the PlaceOrder
    assert validate.header("type") == "ValidateCustomer"
    assert validate.header("event_id") == validate.envelope.event_id

    [placed] = outbox.on(ORDERS_EVENTS)
    assert placed.key == ORDER_ID.encode()
    event = placed.message
    assert isinstance(event, OrderEvent)
    assert (event.name, event.seq, event.order.status) == ("OrderPlaced", 1, "PENDING")
    assert event.order.customer_id == CUSTOMER_ID
    assert placed.envelope.event_id == f"{ORDER_ID}:1"


async def test_a_valid_customer_moves_the_saga_on_to_its_stock(drive, outbox):
    async with drive(orders.run_sagas, orders.node) as d:
        await d.put(place_order(), key=ORDER_ID, topic=ORDERS_COMMANDS)
        outbox.clear()
        await d.put(VALIDATED, key=ORDER_ID, topic=ORDERS_REPLIES)

    assert saga()["status"] == "CUSTOMER_VALIDATED"
    [reserve] = outbox.on(INVENTORY_COMMANDS)
    assert reserve.key == ORDER_ID.encode()
    assert reserve.message == ReserveStock(order_id=ORDER_ID, items=ITEMS)


async def test_same_place_order_twice_sends_nothing_the_second_time(drive, outbox):
    async with drive(orders.run_sagas, orders.node) as d:
        await d.put(place_order(), key=ORDER_ID, topic=ORDERS_COMMANDS)
        first_state = saga()
        sent_after_first = len(outbox.sent)
        # A retried HTTP request re-sends the same command (new envelope id).
        await d.put(place_order(), key=ORDER_ID, topic=ORDERS_COMMANDS)

    assert sent_after_first == 2
    assert len(outbox.sent) == 2
    assert saga() == first_state


async def test_republish_sends_the_latest_event_again_under_its_own_id(drive, outbox):
    async with drive(orders.run_sagas, orders.node) as d:
        await d.put(place_order(), key=ORDER_ID, topic=ORDERS_COMMANDS)
        await d.put(
            PaymentDeclined(order_id=ORDER_ID, reason="card declined"),
            key=ORDER_ID,
            topic=ORDERS_REPLIES,
        )  # not awaited yet: ignored, so OrderPlaced stays the latest event
        before = saga()
        [original] = outbox.on(ORDERS_EVENTS)
        outbox.clear()
        await d.put(RepublishOrder(order_id=ORDER_ID), key=ORDER_ID, topic=ORDERS_COMMANDS)
        await d.put(
            RepublishOrder(order_id="ord-unknown"), key="ord-unknown", topic=ORDERS_COMMANDS
        )

    [again] = outbox.sent
    assert again.topic == ORDERS_EVENTS
    assert again.message == original.message
    assert again.envelope.event_id == original.envelope.event_id == f"{ORDER_ID}:1"
    assert saga() == before
    assert "ord-unknown" not in orders.sagas


async def test_happy_path_ends_completed_with_the_right_commands(drive, outbox):
    async with drive(orders.run_sagas, orders.node) as d:
        await d.put(place_order(), key=ORDER_ID, topic=ORDERS_COMMANDS)
        await d.put(VALIDATED, key=ORDER_ID, topic=ORDERS_REPLIES)
        steps = [
            (
                StockReserved(order_id=ORDER_ID, lines=LINES, total=TOTAL),
                PAYMENTS_COMMANDS,
                ChargePayment(
                    order_id=ORDER_ID, customer_id=CUSTOMER_ID, payment_token="tok_ok", amount=TOTAL
                ),
                "STOCK_RESERVED",
            ),
            (
                PaymentCharged(order_id=ORDER_ID, amount=TOTAL, charge_id="ch_1"),
                SHIPPING_COMMANDS,
                PrepareShipment(order_id=ORDER_ID, address=ADDRESS, items=ITEMS),
                "PAID",
            ),
        ]
        for reply, topic, expected, status in steps:
            outbox.clear()
            await d.put(reply, key=ORDER_ID, topic=ORDERS_REPLIES)
            commands = [s for s in outbox.sent if s.topic != ORDERS_EVENTS]
            assert [(s.topic, s.key, s.message) for s in commands] == [
                (topic, ORDER_ID.encode(), expected)
            ]
            assert saga()["status"] == status
        outbox.clear()
        shipped = ShipmentPrepared(order_id=ORDER_ID, shipment_id="shp_1", carrier="post")
        await d.put(shipped, key=ORDER_ID, topic=ORDERS_REPLIES)

    # The last answer sends the commit, which no one answers, one event with both of
    # its entries, and the outcome again.
    assert outbox.topics() == [INVENTORY_COMMANDS, ORDERS_EVENTS, ORDERS_OUTCOMES]
    assert outbox.messages(INVENTORY_COMMANDS) == [
        CommitStock(order_id=ORDER_ID, items=ITEMS, answered=False)
    ]
    [outcome] = outbox.messages(ORDERS_OUTCOMES)
    assert isinstance(outcome, OrderEnded)
    assert (outcome.name, outcome.seq, outcome.order) == (
        "OrderCompleted",
        6,
        events(outbox)[-1].order,
    )
    [closing] = events(outbox)
    assert [(e.name, e.seq, e.status) for e in closing.entries()] == [
        ("ShipmentPrepared", 5, "PAID"),
        ("OrderCompleted", 6, "COMPLETED"),
    ]
    assert outcome.earlier == closing.earlier
    final = saga()
    assert final["status"] == "COMPLETED"
    assert final["total"] == TOTAL
    assert final["charge_id"] == "ch_1"
    assert final["shipment_id"] == "shp_1"
    assert final["awaiting"] is None
    completed = events(outbox)[-1].order
    assert (completed.status, completed.total, completed.shipment_id) == (
        "COMPLETED",
        TOTAL,
        "shp_1",
    )


async def test_declined_payment_compensates_then_fails(drive, outbox):
    async with drive(orders.run_sagas, orders.node) as d:
        await d.put(place_order(), key=ORDER_ID, topic=ORDERS_COMMANDS)
        await d.put(VALIDATED, key=ORDER_ID, topic=ORDERS_REPLIES)
        await d.put(
            StockReserved(order_id=ORDER_ID, lines=LINES, total=TOTAL),
            key=ORDER_ID,
            topic=ORDERS_REPLIES,
        )
        outbox.clear()
        await d.put(
            PaymentDeclined(order_id=ORDER_ID, reason="card_declined"),
            key=ORDER_ID,
            topic=ORDERS_REPLIES,
        )
        assert [(s.topic, s.message) for s in outbox.on(INVENTORY_COMMANDS)] == [
            (INVENTORY_COMMANDS, ReleaseStock(order_id=ORDER_ID, items=ITEMS))
        ]
        # Declined means nothing was charged: no refund is sent.
        assert outbox.on(PAYMENTS_COMMANDS) == []
        assert saga()["status"] == "COMPENSATING"
        outbox.clear()
        await d.put(StockReleased(order_id=ORDER_ID), key=ORDER_ID, topic=ORDERS_REPLIES)

    assert [s.topic for s in outbox.sent if s.topic != ORDERS_EVENTS] == [ORDERS_OUTCOMES]
    assert events(outbox)[-1].name == "OrderFailed"
    assert [e.name for e in outbox.messages(ORDERS_OUTCOMES)] == ["OrderFailed"]
    assert saga()["status"] == "FAILED"
    assert saga()["failure_reason"] == "payment_declined"


async def test_cancel_while_reserving_releases_stock(drive, outbox):
    async with drive(orders.run_sagas, orders.node) as d:
        await d.put(place_order(), key=ORDER_ID, topic=ORDERS_COMMANDS)
        await d.put(VALIDATED, key=ORDER_ID, topic=ORDERS_REPLIES)
        outbox.clear()
        await d.put(CancelOrder(order_id=ORDER_ID), key=ORDER_ID, topic=ORDERS_COMMANDS)

    assert outbox.messages(INVENTORY_COMMANDS) == [ReleaseStock(order_id=ORDER_ID, items=ITEMS)]
    assert saga()["status"] == "COMPENSATING"
    assert saga()["outcome"] == "CANCELLED"


async def test_unrelated_or_late_replies_send_nothing(drive, outbox):
    async with drive(orders.run_sagas, orders.node) as d:
        await d.put(place_order(), key=ORDER_ID, topic=ORDERS_COMMANDS)
        before = saga()
        outbox.clear()
        # Not the awaited reply (the saga waits for StockReserved).
        await d.put(
            PaymentCharged(order_id=ORDER_ID, amount=1, charge_id="ch_x"),
            key=ORDER_ID,
            topic=ORDERS_REPLIES,
        )
        await d.put(
            ShipmentPrepared(order_id=ORDER_ID, shipment_id="s", carrier="c"),
            key=ORDER_ID,
            topic=ORDERS_REPLIES,
        )
        # A reply for an order nobody placed.
        await d.put(
            StockReserved(order_id="ord-ghost", lines=LINES, total=TOTAL),
            key="ord-ghost",
            topic=ORDERS_REPLIES,
        )
        # A stale deadline (wrong attempt).
        await d.put(
            StepDeadlineExpired(order_id=ORDER_ID, awaiting="StockReserved", attempt=7),
            key=ORDER_ID,
            topic=ORDERS_REPLIES,
        )

    assert outbox.sent == []
    assert saga() == before
    assert orders.sagas.get("ord-ghost") is None


async def test_duplicate_reply_after_completion_sends_nothing(drive, outbox):
    async with drive(orders.run_sagas, orders.node) as d:
        await d.put(place_order(), key=ORDER_ID, topic=ORDERS_COMMANDS)
        await d.put(VALIDATED, key=ORDER_ID, topic=ORDERS_REPLIES)
        for reply in (
            StockReserved(order_id=ORDER_ID, lines=LINES, total=TOTAL),
            PaymentCharged(order_id=ORDER_ID, amount=TOTAL, charge_id="ch_1"),
            ShipmentPrepared(order_id=ORDER_ID, shipment_id="shp_1", carrier="post"),
            StockCommitted(order_id=ORDER_ID),
        ):
            await d.put(reply, key=ORDER_ID, topic=ORDERS_REPLIES)
        assert saga()["status"] == "COMPLETED"
        done = saga()
        outbox.clear()
        await d.put(StockCommitted(order_id=ORDER_ID), key=ORDER_ID, topic=ORDERS_REPLIES)
        await d.put(CancelOrder(order_id=ORDER_ID), key=ORDER_ID, topic=ORDERS_COMMANDS)

    assert outbox.sent == []
    assert saga() == done


# ----------------------------------------------------------------- dead letters


async def test_malformed_value_is_dead_lettered_and_the_agent_goes_on(drive, outbox):
    async with drive(orders.run_sagas, orders.node) as d:
        await d.put_raw(
            b"not json", key=ORDER_ID, topic=ORDERS_COMMANDS, headers=[("type", b"PlaceOrder")]
        )
        await d.put(place_order(), key=ORDER_ID, topic=ORDERS_COMMANDS)

    [dead] = outbox.on(f"{ORDERS_COMMANDS}.dlq")
    assert dead.value == b"not json"
    assert dead.key == ORDER_ID.encode()
    assert dead.header("dlq.error").startswith("not JSON")
    assert dead.header("dlq.topic") == ORDERS_COMMANDS
    assert dead.header("dlq.attempts") == "1"
    assert dead.header("dlq.group") == "orders"
    assert dead.header("type") == "PlaceOrder"  # the original headers are kept
    # ... and the next message is processed normally.
    assert saga()["status"] == "PENDING"
    assert len(outbox.on(CUSTOMERS_COMMANDS)) == 1


async def test_unknown_message_type_is_dead_lettered(drive, outbox):
    bogus = with_type(encode(place_order(), key=ORDER_ID, correlation_id=ORDER_ID), "Bogus")
    async with drive(orders.run_sagas, orders.node) as d:
        await d.put_raw(bogus, key=ORDER_ID, topic=ORDERS_REPLIES)
        await d.put(place_order(), key=ORDER_ID, topic=ORDERS_COMMANDS)

    [dead] = outbox.on(f"{ORDERS_REPLIES}.dlq")
    assert dead.value == bogus
    assert dead.header("dlq.error") == "unknown message type 'Bogus'"
    assert dead.header("dlq.topic") == ORDERS_REPLIES
    assert outbox.on(f"{ORDERS_COMMANDS}.dlq") == []
    assert saga()["status"] == "PENDING"


async def test_message_naming_no_order_is_rejected_without_retry(drive, outbox):
    stray = StockChanged(
        sku="SKU-A", version=1, unit_price=1, put_in=1, available=1, reserved=0, committed=0
    )
    async with drive(orders.run_sagas, orders.node) as d:
        await d.put(stray, key="SKU-A", topic=ORDERS_REPLIES)

    [dead] = outbox.on(f"{ORDERS_REPLIES}.dlq")
    assert dead.header("dlq.error") == "ValueError: StockChanged names no order"
    assert dead.header("dlq.attempts") == "1"
    assert [s.topic for s in outbox.sent] == [f"{ORDERS_REPLIES}.dlq"]


async def test_transient_send_failure_is_retried_with_the_same_ids(drive, outbox):
    outbox.fail(CUSTOMERS_COMMANDS, RuntimeError("broker down"), times=1)
    async with drive(orders.run_sagas, orders.node) as d:
        await d.put(place_order(), key=ORDER_ID, topic=ORDERS_COMMANDS)

    [failed] = outbox.failed
    [resent] = outbox.on(CUSTOMERS_COMMANDS)
    assert failed.envelope.event_id == resent.envelope.event_id
    assert failed.message == resent.message
    # Events and the table follow the successful attempt only, once.
    assert [e.seq for e in events(outbox)] == [1]
    assert saga()["seq"] == 1
    assert outbox.on(f"{ORDERS_COMMANDS}.dlq") == []


async def test_send_failing_on_every_attempt_is_dead_lettered(drive, outbox, monkeypatch):
    monkeypatch.setattr(
        orders.node, "settings", orders.node.settings.model_copy(update={"handler_max_attempts": 2})
    )
    outbox.fail(CUSTOMERS_COMMANDS, RuntimeError("broker down"), times=2)
    async with drive(orders.run_sagas, orders.node) as d:
        await d.put(place_order(), key=ORDER_ID, topic=ORDERS_COMMANDS)

    assert len(outbox.failed) == 2
    [dead] = outbox.on(f"{ORDERS_COMMANDS}.dlq")
    assert dead.header("dlq.error") == "RuntimeError: broker down"
    assert dead.header("dlq.attempts") == "2"
    # Written last, so a failed decision leaves no half-started saga behind.
    assert orders.sagas.get(ORDER_ID) is None
    assert outbox.on(ORDERS_EVENTS) == []


# ------------------------------------------------------------------ the timer


async def test_deadline_timer_sends_one_expiry_and_the_saga_retries_the_step(
    drive, outbox, monkeypatch
):
    async with drive(orders.run_sagas, orders.node) as d:
        await d.put(place_order(), key=ORDER_ID, topic=ORDERS_COMMANDS)
    deadline = saga()["deadline"]
    # The timer body itself, without faust's task and interval wrappers.
    scan = inspect.unwrap(orders.expire_overdue_steps)
    assert scan.__code__.co_filename == orders.__file__

    outbox.clear()
    monkeypatch.setattr(orders, "time", SimpleNamespace(time=lambda: deadline - 1))
    await scan()
    assert outbox.sent == []  # not overdue yet

    monkeypatch.setattr(orders, "time", SimpleNamespace(time=lambda: deadline + 0.5))
    await scan()
    await scan()  # the memo stops a second send within one step timeout
    [expiry] = outbox.on(ORDERS_REPLIES)
    assert len(outbox.sent) == 1
    assert expiry.key == ORDER_ID.encode()
    assert expiry.message == StepDeadlineExpired(
        order_id=ORDER_ID, awaiting="CustomerValidated", attempt=1, deadline=deadline
    )
    assert expiry.envelope.event_id == f"{ORDER_ID}:deadline:CustomerValidated:1:{deadline:.3f}"

    # The orchestrator then decides: the customer check is sent again, attempt 2.
    outbox.clear()
    async with drive(orders.run_sagas, orders.node) as d:
        await d.put_sent(expiry)
    [again] = outbox.on(CUSTOMERS_COMMANDS)
    assert again.message == ValidateCustomer(order_id=ORDER_ID, customer_id=CUSTOMER_ID)
    assert again.envelope.event_id == f"{ORDER_ID}:2:2:0:ValidateCustomer"
    assert [e.name for e in events(outbox)] == ["StepRetried"]
    assert saga()["attempt"] == 2


async def test_forget_timer_asks_every_group_to_drop_an_order_after_the_retention(
    drive, outbox, monkeypatch
):
    async with drive(orders.run_sagas, orders.node) as d:
        await d.put(place_order(), key=ORDER_ID, topic=ORDERS_COMMANDS)
        await d.put(
            place_order(order_id="ord-in-flight"), key="ord-in-flight", topic=ORDERS_COMMANDS
        )
        await d.put(CancelOrder(order_id=ORDER_ID), key=ORDER_ID, topic=ORDERS_COMMANDS)
        await d.put(StockReleased(order_id=ORDER_ID), key=ORDER_ID, topic=ORDERS_REPLIES)
    assert saga()["status"] == "CANCELLED"
    ended = datetime.fromisoformat(saga()["updated_at"]).timestamp()
    retention = orders.node.settings.retention_s
    scan = inspect.unwrap(orders.forget_finished_orders)
    assert scan.__code__.co_filename == orders.__file__

    outbox.clear()
    monkeypatch.setattr(orders, "time", SimpleNamespace(time=lambda: ended + retention - 1))
    await scan()
    assert outbox.sent == []  # ended, but not long enough ago

    monkeypatch.setattr(orders, "time", SimpleNamespace(time=lambda: ended + retention + 1))
    await scan()
    await scan()  # sent once, not again while the deletion is on its way
    partition = partition_of(ORDER_ID, orders.node.settings.partitions)
    [own] = outbox.sent
    assert own.topic == ORDERS_COMMANDS
    assert own.message == ForgetOrders(order_ids=(ORDER_ID,))
    assert (own.key, own.partition) == (ORDER_ID.encode(), partition)

    counter = orders.node.metrics.entries_forgotten.labels("sagas")
    before = counter._value.get()
    outbox.clear()
    async with drive(orders.run_sagas, orders.node) as d:
        await d.put_sent(own)
        assert orders.sagas.get(ORDER_ID) is None
        # Deleted first, then every participant is told, on the same partition.
        assert sorted(outbox.topics()) == sorted(FORGET_TOPICS)
        for sent in outbox.sent:
            assert sent.message == ForgetOrders(order_ids=(ORDER_ID,))
            assert (sent.key, sent.partition) == (ORDER_ID.encode(), partition)
        outbox.clear()
        # A replay deletes nothing more but tells the participants again (a crash may
        # have lost the first copies).
        await d.put_sent(own)
        assert len(outbox.sent) == len(FORGET_TOPICS)
        outbox.clear()
        # A saga still in flight is never deleted, whoever asks, nor forgotten elsewhere.
        await d.put(
            ForgetOrders(order_ids=("ord-in-flight",)), key="ord-in-flight", topic=ORDERS_COMMANDS
        )
        assert outbox.sent == []
    assert saga("ord-in-flight")["status"] == "PENDING"
    assert counter._value.get() - before == 1


async def test_the_in_flight_gauge_follows_each_saga_by_status(drive, outbox):
    gauge = orders.node.metrics.sagas_in_flight

    def count(status: str) -> float:
        return gauge.labels(status)._value.get()

    before = {s: count(s) for s in ("PENDING", "CUSTOMER_VALIDATED")}
    async with drive(orders.run_sagas, orders.node) as d:
        await d.put(place_order(), key=ORDER_ID, topic=ORDERS_COMMANDS)
        assert count("PENDING") == before["PENDING"] + 1
        await d.put(VALIDATED, key=ORDER_ID, topic=ORDERS_REPLIES)
        assert count("PENDING") == before["PENDING"]
        assert count("CUSTOMER_VALIDATED") == before["CUSTOMER_VALIDATED"] + 1
        await d.put(CancelOrder(order_id=ORDER_ID), key=ORDER_ID, topic=ORDERS_COMMANDS)
        await d.put(StockReleased(order_id=ORDER_ID), key=ORDER_ID, topic=ORDERS_REPLIES)
    assert saga()["status"] == "CANCELLED"
    assert orders.in_flight.get(ORDER_ID) is None
    assert count("CUSTOMER_VALIDATED") == before["CUSTOMER_VALIDATED"]


async def test_the_placing_requests_correlation_id_stays_with_everything_the_saga_sends(
    drive, outbox, monkeypatch
):
    async with drive(orders.run_sagas, orders.node) as d:
        await d.put(place_order(), key=ORDER_ID, topic=ORDERS_COMMANDS, correlation_id="req-7")
        # A reply whose own envelope names another correlation id changes nothing
        await d.put(VALIDATED, key=ORDER_ID, topic=ORDERS_REPLIES, correlation_id="other")
    assert saga()["correlation_id"] == "req-7"
    assert {s.envelope.correlation_id for s in outbox.sent} == {"req-7"}
    assert {s.header("correlation_id") for s in outbox.sent} == {"req-7"}
    assert all(s.envelope.order_id == ORDER_ID for s in outbox.sent)
    # And the timer's deadline message, which has no cause, carries it too
    outbox.clear()
    deadline = saga()["deadline"]
    monkeypatch.setattr(orders, "time", SimpleNamespace(time=lambda: deadline + 0.5))
    await inspect.unwrap(orders.expire_overdue_steps)()
    [expiry] = outbox.sent
    assert expiry.envelope.correlation_id == "req-7"


async def test_a_place_order_older_than_the_memory_starts_nothing(drive, outbox):
    # Given orders accepted longer ago than the orchestrator remembers orders it ran
    memory = orders.settings.order_memory_s
    replayed = mint_order_id(time.time() - memory - 1)
    young = mint_order_id(time.time())
    async with drive(orders.run_sagas, orders.node) as d:
        # When one's PlaceOrder arrives again in a fresh envelope (a replay, a copy)
        await d.put(place_order(replayed), key=replayed, topic=ORDERS_COMMANDS)
        # And a PlaceOrder of an id without a birth time arrives in an old envelope
        old = encode(place_order("ord-legacy"), key="ord-legacy", correlation_id="c-1")
        envelope = orjson.loads(old.value)
        envelope["occurred_at"] = datetime.fromtimestamp(time.time() - memory - 1, UTC)
        await d.put_raw(
            orjson.dumps(envelope), key="ord-legacy", topic=ORDERS_COMMANDS, headers=old.headers
        )
        # Then neither runs, while a young order starts as ever
        await d.put(place_order(young), key=young, topic=ORDERS_COMMANDS)
    assert orders.sagas.get(replayed) is None
    assert orders.sagas.get("ord-legacy") is None
    assert saga(young)["status"] == "PENDING"
    assert {m.order_id for m in outbox.messages(CUSTOMERS_COMMANDS)} == {young}
    # (refused, not dead-lettered: both were well-formed)
    assert set(outbox.topics()) == {CUSTOMERS_COMMANDS, ORDERS_EVENTS}
    handled = orders.node.metrics.messages_handled.labels("run_sagas", "PlaceOrder", "already_run")
    assert handled._value.get() >= 2


async def test_a_forgotten_order_is_remembered_and_never_runs_again(drive, outbox):
    # Given a young order that ran, ended and was forgotten
    order_id = mint_order_id(time.time())
    async with drive(orders.run_sagas, orders.node) as d:
        await d.put(place_order(order_id), key=order_id, topic=ORDERS_COMMANDS)
        await d.put(CancelOrder(order_id=order_id), key=order_id, topic=ORDERS_COMMANDS)
        assert saga(order_id)["status"] == "CANCELLED"
        await d.put(ForgetOrders(order_ids=(order_id,)), key=order_id, topic=ORDERS_COMMANDS)
        assert orders.sagas.get(order_id) is None
        assert orders.forgotten.get(order_id) is not None
        sent = len(outbox.sent)
        # When its PlaceOrder arrives again, though younger than the memory
        await d.put(place_order(order_id), key=order_id, topic=ORDERS_COMMANDS)
    # Then nothing runs again
    assert orders.sagas.get(order_id) is None
    assert len(outbox.sent) == sent


async def test_a_late_first_place_order_within_the_memory_still_starts(drive, outbox):
    # Given an order accepted longer ago than the retention (a lagging orchestrator)
    late = mint_order_id(time.time() - orders.settings.retention_s - 1)
    async with drive(orders.run_sagas, orders.node) as d:
        await d.put(place_order(late), key=late, topic=ORDERS_COMMANDS)
    # Then it starts: it never ran, and it is younger than the memory
    assert saga(late)["status"] == "PENDING"


async def test_forgotten_orders_are_dropped_once_past_the_memory(drive, outbox):
    async with drive(orders.run_sagas, orders.node) as d:
        order_id = mint_order_id(time.time())
        await d.put(place_order(order_id), key=order_id, topic=ORDERS_COMMANDS)
        await d.put(CancelOrder(order_id=order_id), key=order_id, topic=ORDERS_COMMANDS)
        await d.put(ForgetOrders(order_ids=(order_id,)), key=order_id, topic=ORDERS_COMMANDS)
        assert orders.forgotten.get(order_id) is not None
        # When its memory has run out (as if it ended longer than the memory ago)
        orders.remember_forgotten(order_id, time.time() - orders.settings.order_memory_s - 1)
        # Then the next forget on its partition drops its entry: the id alone is now
        # too old to start
        await d.put(ForgetOrders(order_ids=(order_id,)), key=order_id, topic=ORDERS_COMMANDS)
    assert orders.forgotten.get(order_id) is None


async def test_a_one_sku_orders_stock_goes_to_its_sku_and_is_forgotten_there(drive, outbox):
    line = OrderLine(sku="SKU-A", quantity=2)
    async with drive(orders.run_sagas, orders.node) as d:
        await d.put(place_order(items=(line,)), key=ORDER_ID, topic=ORDERS_COMMANDS)
        outbox.clear()
        await d.put(VALIDATED, key=ORDER_ID, topic=ORDERS_REPLIES)
        # Straight to the SKU's partition, keyed by SKU: no gather in between
        [reserve] = outbox.on(INVENTORY_SKU_COMMANDS)
        assert reserve.key == b"SKU-A"
        assert reserve.message == SkuCommand(
            op="reserve", order_id=ORDER_ID, sku="SKU-A", quantity=2, reply_to="orchestrator"
        )
        assert reserve.envelope.order_id == ORDER_ID
        assert outbox.on(INVENTORY_COMMANDS) == []
        await d.put(CancelOrder(order_id=ORDER_ID), key=ORDER_ID, topic=ORDERS_COMMANDS)
        await d.put(StockReleased(order_id=ORDER_ID), key=ORDER_ID, topic=ORDERS_REPLIES)
        assert saga()["status"] == "CANCELLED"
        outbox.clear()
        # Its holds have no gather record to name them: the orchestrator tells the SKU
        forget = ForgetOrders(order_ids=(ORDER_ID,))
        await d.put(forget, key=ORDER_ID, topic=ORDERS_COMMANDS)
        [drop] = outbox.on(INVENTORY_SKU_COMMANDS)
        assert drop.key == b"SKU-A"
        assert drop.message == ForgetHolds(sku="SKU-A", order_ids=(ORDER_ID,))
        assert orders.sagas.get(ORDER_ID) is None
