"""Where the system `ordersaga run` started listens, for the tools typed beside it.

`ordersaga run` picks free ports (a cluster of `--brokers 3` never has 9092) and
publishes them in ``<data_dir>/supervisor.json``. ``ordersaga topics``,
``tail``, ``audit``, ``dlq`` and ``kafka`` started in the same directory without
``KAFKA_BROKER`` or ``REDIS_URL`` talk to that system, not to the conventional
local ports, and say so on stderr. What the environment sets wins.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, cast

import orjson
from pydantic import TypeAdapter

from ordersaga.config.fields import mask_url_password
from ordersaga.config.settings import Settings

# The settings a running system's file may supply, and the variables that override it:
# its addresses, and the replication it created its topics with (`--brokers 3`), so
# that `ordersaga topics --check` judges them by what they were declared with.
_SUPPLIED = {
    "kafka_broker": "KAFKA_BROKER",
    "redis_url": "REDIS_URL",
    "replication_factor": "ORDERSAGA_REPLICATION_FACTOR",
}


def running_system(data_dir: Path) -> dict[str, str] | None:
    """The addresses a live `ordersaga run` published in ``data_dir``, or None.

    None when there is no file, when it is unreadable, when the system stopped or
    when its supervisor is gone (a SIGKILLed run leaves its file behind).
    """
    try:
        status: Any = orjson.loads((data_dir / "supervisor.json").read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    if not isinstance(status, dict) or status.get("state") not in ("starting", "up"):
        return None
    addresses = status.get("addresses")
    pid = status.get("pid")
    if not isinstance(addresses, dict) or not isinstance(pid, int) or not _alive(pid):
        return None
    return {k: v for k, v in addresses.items() if k in _SUPPLIED and isinstance(v, str)}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def settings_for_tools(settings: Settings) -> tuple[Settings, str | None]:
    """``settings`` with the running system's addresses where none is set; and a note saying so."""
    # Supplied where the user set nothing (or set the addresses to none).
    missing = [
        name
        for name in _SUPPLIED
        if name not in settings.model_fields_set or getattr(settings, name) is None
    ]
    if not missing:
        return settings, None
    found = running_system(Path(settings.data_dir))
    if not found:
        return settings, None
    # The file holds text: each value is read as its field's type.
    supplied = {
        name: TypeAdapter(cast(Any, Settings.model_fields[name].annotation)).validate_python(
            found[name]
        )
        for name in missing
        if name in found
    }
    if not supplied:
        return settings, None
    # The admin's Redis URL carries its password: shown masked.
    where = ", ".join(
        f"{_SUPPLIED[name]}={mask_url_password(str(value))}" for name, value in supplied.items()
    )
    note = f"ordersaga: using the system `ordersaga run` runs in {settings.data_dir} ({where})"
    return settings.model_copy(update=supplied), note
