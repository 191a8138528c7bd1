"""A table write sent straight to the producer carries the bytes Faust's own path would."""

from __future__ import annotations

from typing import Any

import faust
import orjson
import pytest

from ordersaga.shell.records import changelog_json

APP = faust.App("changelog-bytes", broker="kafka://127.0.0.1:1", store="memory://")
TABLE = APP.Table("t", default=None, key_type=str, partitions=4)


@pytest.mark.parametrize(
    "stored",
    [
        {"order_id": "ord-1", "items": [{"sku": "A", "quantity": 2}], "total": None},
        {"updated_at": "2026-12-07T08:00:00.123456Z", "amount": 1.5, "ok": True},
        "COMPLETED",
        1_765_000_000.25,
        {"nested": {"é": "ünïcode", "n": [1, 2.0, -3]}},
    ],
)
def test_a_value_is_encoded_as_fausts_json_serializer_encodes_it(stored: Any) -> None:
    faust_bytes = APP.serializers.dumps_value(
        TABLE.changelog_topic.value_type, stored, serializer=TABLE.value_serializer
    )
    assert changelog_json(stored) == faust_bytes


def test_a_key_is_encoded_as_fausts_json_key_serializer_encodes_it() -> None:
    faust_key = APP.serializers.dumps_key(
        TABLE.changelog_topic.key_type, "SKU-A/ord-1", serializer=TABLE.key_serializer
    )
    assert orjson.dumps("SKU-A/ord-1") == faust_key
