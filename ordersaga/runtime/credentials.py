"""Random passwords kept in files only their owner reads: the secrets `ordersaga run` makes.

Made once and kept across runs (a broker formatted with a user's password, an
append-only Redis and its ACL file must keep agreeing), replaced whole so a
reader never sees half a file.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable
from pathlib import Path

import orjson

from ordersaga.runtime.logs import write_json_atomic


def new_password() -> str:
    """A random password, URL- and JAAS-safe (letters, digits, ``-`` and ``_``)."""
    return secrets.token_urlsafe(24)


def kept_passwords(
    path: Path, users: Iterable[str], make: Callable[[], str] = new_password
) -> dict[str, str]:
    """A secret for each of ``users``: those ``path`` holds, ``make()`` for the rest."""
    try:
        passwords: dict[str, str] = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        passwords = {}
    wanted = list(users)
    if any(name not in passwords for name in wanted):
        passwords = {name: passwords.get(name) or make() for name in wanted}
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(path, passwords)
    return passwords
