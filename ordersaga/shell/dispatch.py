"""One agent's handlers by message type: the shell every agent shares.

An agent module declares which pure call handles which message; the dispatch
adds what every shell needs around them: ForgetOrders goes to the table (or the
handler) that forgets, and a message of a type the topic does not carry is
refused with the same error everywhere (it is dead-lettered by ``Node.consume``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from ordersaga.schemas.messages import Envelope, ForgetOrders, Message
from ordersaga.shell.records import RecordTable

Outcome = str | None
Handler = Callable[[Envelope, Any], Awaitable[Outcome]]


class Dispatch:
    """Message type -> handler for one agent's input; ``otherwise`` takes any other type."""

    def __init__(
        self,
        where: str,
        forget: RecordTable[Any] | Callable[[Envelope, ForgetOrders], Awaitable[Outcome]] | None,
        otherwise: Handler | None = None,
    ) -> None:
        # Where the messages come from, as the refusal says it ("on payments.commands").
        self.where = where
        self._forget = forget
        self._otherwise = otherwise
        self._handlers: dict[type[Message], Handler] = {}

    def on(self, *types: type[Message]) -> Callable[[Handler], Handler]:
        """Register the decorated coroutine as the handler of ``types``."""

        def register(fn: Handler) -> Handler:
            for t in types:
                self._handlers[t] = fn
            return fn

        return register

    async def __call__(self, envelope: Envelope, message: Message) -> Outcome:
        if isinstance(message, ForgetOrders) and self._forget is not None:
            if isinstance(self._forget, RecordTable):
                return self._forget.forget(message.order_ids)
            return await self._forget(envelope, message)
        handler = self._handlers.get(type(message), self._otherwise)
        if handler is None:
            raise ValueError(f"{envelope.type} does not belong {self.where}")
        return await handler(envelope, message)
