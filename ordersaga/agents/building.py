"""What every agent module shares: its group built from explicit settings, and a lazy default.

Each ``ordersaga.agents.<group>`` module has a ``build(settings)`` that makes the
group's Faust app, tables, agents, timers and adapters from those settings and
nothing else, so a test can build a group with settings of its own next to the
default one, without touching the process environment.

The module's own attributes (``payments.app``, ``payments.node``,
``payments.process_payments``, ...) are those of its default group, built once
from ``get_settings()`` on first access (PEP 562 ``__getattr__``): importing an
agent module builds nothing, and ``faust -A ordersaga.agents.<group> worker``
still finds ``app`` on the module (Faust's ``find_app`` reads it with getattr).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from ordersaga.config.settings import Settings, get_settings

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

G = TypeVar("G")
F = TypeVar("F", bound=Callable[..., Any])


def toplevel(fn: F) -> F:
    """Name a function defined inside ``build`` as if it were defined at module level.

    Faust names a timer by its body's ``__qualname__`` and labels tasks and agents
    by it in its logs; without this they would read ``build.<locals>.<name>``
    instead of the names they had when the agents were module-level.
    """
    fn.__qualname__ = fn.__name__
    return fn


class DefaultGroup(Generic[G]):
    """The group one agent module builds from the process settings: once, on first use."""

    def __init__(
        self, module: str, build: Callable[[Settings], G], parts: type[DataclassInstance]
    ) -> None:
        self._module = module
        self._build = build
        # Only the group's own parts build it: a lookup of anything else (a dunder
        # an import tool probes for, a typo) fails without building a Faust app.
        self._parts = frozenset(field.name for field in dataclasses.fields(parts))
        self._group: G | None = None

    def __call__(self) -> G:
        """The default group, built from ``get_settings()`` the first time it is asked for."""
        if self._group is None:
            self._group = self._build(get_settings())
        return self._group

    def attribute(self, name: str) -> Any:
        """The module's ``__getattr__``: the default group's part called ``name``."""
        if name not in self._parts:
            raise AttributeError(f"module {self._module!r} has no attribute {name!r}")
        return getattr(self(), name)

    def names(self) -> list[str]:
        """The parts, for the module's ``__dir__``."""
        return sorted(self._parts)
