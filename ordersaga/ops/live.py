"""The image's HEALTHCHECK: exit 0 when this container's worker answers /live.

A container runs one worker on one of the groups' ports (ORDERSAGA_WEB_PORT plus
its group's offset, or ORDERSAGA_PROBES_PORT's block when the probes are moved):
every port but its own refuses at once, so trying each costs nothing.
"""

from __future__ import annotations

import sys
import urllib.request

from ordersaga.config.settings import get_settings
from ordersaga.shell.groups import GROUPS


def live(timeout_s: float = 2.0) -> bool:
    """True when a worker of any group answers /live on this host."""
    settings = get_settings()
    base = settings.probes_port if settings.probes_port is not None else settings.web_port
    for group in GROUPS:
        url = f"http://127.0.0.1:{base + group.port_offset}/live"
        try:
            with urllib.request.urlopen(url, timeout=timeout_s) as answer:
                if answer.status == 200:
                    return True
        except OSError:
            continue
    return False


if __name__ == "__main__":
    sys.exit(0 if live() else 1)
