"""The brokers the whole-system tiers run on, and what to do where one cannot run."""

from __future__ import annotations

import os

import pytest

from ordersaga.runtime import kafka

# Apache Kafka first: it is what `make run` starts on a machine with a JDK.
BROKERS = ("kafka", "tansu")


def require(broker: str) -> None:
    """Skip (one line) a tier on a broker this machine cannot run; under CI, fail instead."""
    if broker != "kafka":
        return
    found = kafka.availability()
    if found.ok:
        return
    reason = f"Apache Kafka tier not run: {found.why}"
    if os.environ.get("CI"):
        pytest.fail(reason + " (CI is set, so this is a failure)", pytrace=False)
    pytest.skip(reason)
