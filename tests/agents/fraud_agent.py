"""The fraud check's agent shell: a test-only participant, built as a real one is.

Its declaration, messages and rule are in ``tests/unit/fraud_step.py``; this is
all the Faust it needs. Its node routes by the extended topology, a value, so
nothing global is patched.
"""

from __future__ import annotations

from faust.types import StreamT

from ordersaga.schemas.messages import Envelope
from ordersaga.shell.dispatch import Dispatch
from ordersaga.shell.worker import Worker
from tests.unit.fraud_step import FRAUD, FRAUD_COMMANDS, FRAUD_TOPOLOGY, CheckFraud, check_fraud

node = Worker(FRAUD, topology=FRAUD_TOPOLOGY)
app = node.app
# A check keeps nothing per order, so a ForgetOrders has nothing to delete here.
check = Dispatch(f"on {FRAUD_COMMANDS}", forget=None)


@check.on(CheckFraud)
async def check_order(envelope: Envelope, message: CheckFraud) -> str | None:
    await node.reply(check_fraud(message), to=envelope, key=message.order_id)
    return None


@app.agent(node.topic(FRAUD_COMMANDS))
async def check_orders(stream: StreamT) -> None:
    """Answer every fraud check."""
    await node.consume(stream, check, "check_orders")
