"""A Faust table seen through its ``ordersaga.tables`` declaration: typed reads, checked writes."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, Generic, TypeVar

from faust.types import TableT
from faust.utils.json import dumps as faust_json_dumps

from ordersaga.observability.metrics import Metrics
from ordersaga.shell.direct_delivery import write_changelog
from ordersaga.tables import TableSpec

R = TypeVar("R")


def changelog_json(stored: Any) -> bytes:
    """``stored`` as Faust's json serializer writes it to the changelog (orjson, its options)."""
    return faust_json_dumps(stored)  # type: ignore[return-value]


class RecordTooLarge(ValueError):
    """A table value over ``ORDERSAGA_MAX_RECORD_BYTES``: the message that led to it is refused."""


class RecordTable(Generic[R]):
    """One changelog-backed table of JSON values, keyed by str.

    ``get`` and ``items`` give the stored JSON (the scans of timers read it without
    validating every record); ``load`` gives the record; writes go through ``fit``
    first, so a record too large for the broker is refused before anything it
    causes is sent.
    """

    def __init__(self, spec: TableSpec[R], table: TableT, metrics: Metrics, max_bytes: int) -> None:
        self.spec = spec
        self.faust_table = table
        self._metrics = metrics
        self._max_bytes = max_bytes
        self._fitted: tuple[Any, bytes] = (None, b"")

    @property
    def name(self) -> str:
        return self.spec.name

    def get(self, key: str) -> Any:
        """The stored JSON under ``key``, or None."""
        return self.faust_table.get(key)

    def __contains__(self, key: object) -> bool:
        return key in self.faust_table

    def items(self) -> Iterator[tuple[str, Any]]:
        """Every (key, stored JSON) of this worker's partitions, safe to iterate while writing."""
        return iter(list(self.faust_table.items()))

    def load(self, key: str) -> R | None:
        """The record under ``key``, or None."""
        stored = self.faust_table.get(key)
        return self.spec.load(stored) if stored is not None else None

    def fit(self, record: R) -> Any:
        """``record`` as stored, refused (RecordTooLarge) when it would be too large to write.

        Call it before sending what the record's change causes: a record the broker
        cannot take (its message size limit) would otherwise fail the changelog write
        on every replay and crash-loop the worker.
        """
        stored = self.spec.dump(record)
        encoded = changelog_json(stored)
        size = len(encoded)
        # Kept for the write that usually follows: the changelog value is these bytes.
        self._fitted = (stored, encoded)
        if size > self._max_bytes:
            kind = type(record).__name__
            self._metrics.records_refused.labels(kind).inc()
            raise RecordTooLarge(
                f"{kind} would be {size} bytes, over the limit of {self._max_bytes}"
            )
        return stored

    def __setitem__(self, key: str, stored: Any) -> None:
        fitted, encoded = self._fitted
        value = encoded if fitted is stored else changelog_json(stored)
        if write_changelog(self.faust_table, key, value):
            self.faust_table.data[key] = stored
        else:
            self.faust_table[key] = stored

    def __delitem__(self, key: str) -> None:
        if write_changelog(self.faust_table, key, None):
            del self.faust_table.data[key]
        else:
            del self.faust_table[key]

    def forget(self, keys: Iterable[str], keep: Callable[[Any], bool] | None = None) -> str | None:
        """Delete ``keys`` (a tombstone each), sparing stored values ``keep`` accepts.

        Returns the handler outcome: "unchanged" when nothing was there to delete.
        """
        deleted = 0
        for key in keys:
            stored = self.faust_table.get(key)
            if stored is None or (keep is not None and keep(stored)):
                continue
            del self[key]
            deleted += 1
        self._metrics.entries_forgotten.labels(self.spec.name).inc(deleted)
        return None if deleted else "unchanged"
