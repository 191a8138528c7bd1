"""Every agent group, declared once: the one place a participant's wiring is written.

The shell's routing (``ordersaga.shell.topics``), the codec's registry, the
topics created before the workers start and the groups ``ordersaga run``
supervises all derive from :data:`TOPOLOGY`. Nothing here builds a Faust app.
"""

from __future__ import annotations

from ordersaga.saga.definition import SAGA
from ordersaga.schemas.heartbeats import ServiceHeartbeat
from ordersaga.schemas.messages import (
    BlockCustomer,
    CancelOrder,
    CancelShipment,
    ChargePayment,
    CommandRejected,
    CommitStock,
    CustomerChanged,
    CustomerNotified,
    CustomerRejected,
    CustomerValidated,
    ForgetHolds,
    ForgetOrders,
    LowStock,
    OperatorNotified,
    OrderEnded,
    OrderEvent,
    PaymentCharged,
    PaymentDeclined,
    PaymentRefunded,
    PlaceOrder,
    PrepareShipment,
    RefundPayment,
    RegisterCustomer,
    ReleaseStock,
    RepublishOrder,
    ReserveStock,
    RestockSku,
    ShipmentCancelled,
    ShipmentPrepared,
    ShipmentRefused,
    SkuCommand,
    SkuResult,
    StepDeadlineExpired,
    StockChanged,
    StockCommitted,
    StockRejected,
    StockReleased,
    StockReserved,
    ValidateCustomer,
)
from ordersaga.tables import (
    CUSTOMERS,
    FORGOTTEN_ORDERS,
    NOTIFIED,
    ORDER_STOCK,
    PAYMENT_LEDGER,
    SAGAS,
    SHIPMENTS,
    SKU_HOLDS,
    STOCK,
)
from ordersaga.topology.model import Participant, Topology
from ordersaga.topology.topics import (
    CUSTOMERS_COMMANDS,
    CUSTOMERS_EVENTS,
    INVENTORY_ALERTS,
    INVENTORY_COMMANDS,
    INVENTORY_EVENTS,
    INVENTORY_SKU_COMMANDS,
    INVENTORY_SKU_REPLIES,
    NOTIFICATIONS,
    ORDERS_COMMANDS,
    ORDERS_EVENTS,
    ORDERS_OUTCOMES,
    ORDERS_REPLIES,
    PAYMENTS_COMMANDS,
    SERVICES,
    SHIPPING_COMMANDS,
)

WEBVIEW = Participant(
    "webview",
    "ordersaga.agents.webview",
    0,
    "HTTP API and read models",
    consumes={
        ORDERS_EVENTS: (OrderEvent,),
        INVENTORY_EVENTS: (StockChanged,),
        CUSTOMERS_EVENTS: (CustomerChanged,),
        # Every worker heartbeats here (ordersaga.shell.heartbeat); the web view lists them.
        SERVICES: (ServiceHeartbeat,),
    },
    also_sends=(PlaceOrder, CancelOrder, RegisterCustomer, BlockCustomer, RestockSku),
)
# The orchestrator takes every participant's replies on orders.replies besides its
# own deadlines and CommandRejected (Topology.answered): a new step's participant
# names its replies in its own declaration.
ORDERS = Participant(
    "orders",
    "ordersaga.agents.orders",
    1,
    "saga orchestrator",
    consumes={
        ORDERS_COMMANDS: (PlaceOrder, CancelOrder, RepublishOrder, ForgetOrders),
        ORDERS_REPLIES: (StepDeadlineExpired, CommandRejected),
    },
    publishes={ORDERS_EVENTS: (OrderEvent,), ORDERS_OUTCOMES: (OrderEnded,)},
    tables=(SAGAS, FORGOTTEN_ORDERS),
    # Its own reminders (forgetting, republishing, deadlines) and what it forwards.
    also_sends=(ForgetOrders, RepublishOrder, StepDeadlineExpired, ForgetHolds),
)
INVENTORY = Participant(
    "inventory",
    "ordersaga.agents.inventory",
    2,
    "stock per SKU",
    consumes={
        INVENTORY_COMMANDS: (ReserveStock, ReleaseStock, CommitStock),
        INVENTORY_SKU_COMMANDS: (SkuCommand, RestockSku, ForgetHolds),
        INVENTORY_SKU_REPLIES: (SkuResult,),
    },
    replies=(StockReserved, StockRejected, StockReleased, StockCommitted),
    reply_topic=ORDERS_REPLIES,
    publishes={INVENTORY_EVENTS: (StockChanged,), INVENTORY_ALERTS: (LowStock,)},
    tables=(STOCK, SKU_HOLDS, ORDER_STOCK),
    # An order's stock travels to each SKU's partition and the results back.
    also_sends=(SkuCommand, SkuResult, ForgetHolds),
    forget_on=INVENTORY_COMMANDS,
    reject_on=INVENTORY_COMMANDS,
)
PAYMENTS = Participant(
    "payments",
    "ordersaga.agents.payments",
    3,
    "payment ledger and gateway",
    consumes={PAYMENTS_COMMANDS: (ChargePayment, RefundPayment)},
    replies=(PaymentCharged, PaymentDeclined, PaymentRefunded),
    reply_topic=ORDERS_REPLIES,
    tables=(PAYMENT_LEDGER,),
    forget_on=PAYMENTS_COMMANDS,
    reject_on=PAYMENTS_COMMANDS,
)
SHIPPING = Participant(
    "shipping",
    "ordersaga.agents.shipping",
    4,
    "shipments and carrier",
    consumes={SHIPPING_COMMANDS: (PrepareShipment, CancelShipment)},
    replies=(ShipmentPrepared, ShipmentRefused, ShipmentCancelled),
    reply_topic=ORDERS_REPLIES,
    tables=(SHIPMENTS,),
    forget_on=SHIPPING_COMMANDS,
    reject_on=SHIPPING_COMMANDS,
)
NOTIFICATIONS_GROUP = Participant(
    "notifications",
    "ordersaga.agents.notifications",
    5,
    "customer notifications",
    # Only what it acts on: one outcome per order, and the rare LowStock.
    consumes={ORDERS_OUTCOMES: (OrderEnded,), INVENTORY_ALERTS: (LowStock,)},
    publishes={NOTIFICATIONS: (CustomerNotified, OperatorNotified)},
    tables=(NOTIFIED,),
    # The status each customer was last told, per order.
    forget_on=ORDERS_OUTCOMES,
    off_critical_path=True,
)
# Customers keep nothing per order, so no ForgetOrders is sent to them.
CUSTOMERS_GROUP = Participant(
    "customers",
    "ordersaga.agents.customers",
    6,
    "customer accounts",
    consumes={CUSTOMERS_COMMANDS: (RegisterCustomer, BlockCustomer, ValidateCustomer)},
    replies=(CustomerValidated, CustomerRejected),
    reply_topic=ORDERS_REPLIES,
    publishes={CUSTOMERS_EVENTS: (CustomerChanged,)},
    tables=(CUSTOMERS,),
    reject_on=CUSTOMERS_COMMANDS,
)

PARTICIPANTS: tuple[Participant, ...] = (
    WEBVIEW,
    ORDERS,
    INVENTORY,
    PAYMENTS,
    SHIPPING,
    NOTIFICATIONS_GROUP,
    CUSTOMERS_GROUP,
)

TOPOLOGY = Topology(SAGA, PARTICIPANTS)
