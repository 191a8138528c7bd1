"""Random passwords kept in files only their owner reads: the secrets `ordersaga run` makes.

Made once and kept across runs (a broker formatted with a user's password, an
append-only Redis and its ACL file must keep agreeing), replaced whole so a
reader never sees half a file.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterable
from pathlib import Path

import orjson


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to a file only its owner can read, replacing it whole."""
    partial = path.with_suffix(path.suffix + ".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    partial.replace(path)


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
        write_private(path, orjson.dumps(passwords, option=orjson.OPT_INDENT_2).decode())
    return passwords
