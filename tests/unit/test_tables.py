"""The table declarations: one per changelog, owned by a real group, records round-trip."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from ordersaga.saga.shipping import ShipmentRecord
from ordersaga.shell.groups import GROUPS
from ordersaga.shell.topics import CHANGELOG_TOPICS
from ordersaga.tables import NOTIFIED, SHIPMENTS, TABLES


def test_every_table_belongs_to_a_group_and_has_its_own_changelog() -> None:
    groups = {g.name for g in GROUPS}
    assert all(t.group in groups for t in TABLES)
    assert len(set(CHANGELOG_TOPICS)) == len(TABLES)
    assert SHIPMENTS.changelog_topic == "ordersaga-shipping-shipments-changelog"


def test_a_record_is_stored_as_json_and_loads_back_validated() -> None:
    record = ShipmentRecord(order_id="o1", status="prepared", shipment_id="shp_o1")
    stored = SHIPMENTS.dump(record)
    assert stored["status"] == "prepared"
    assert SHIPMENTS.load(stored) == record
    assert NOTIFIED.load(NOTIFIED.dump("COMPLETED")) == "COMPLETED"
    with pytest.raises(ValidationError):
        SHIPMENTS.load({"order_id": "o1", "status": "lost"})
