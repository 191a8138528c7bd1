"""The Redis `ordersaga run` starts takes no one without a password: a user per client.

Its ACL file (``<data_dir>/redis/users.acl``, mode 0600) turns the passwordless
``default`` user off and names three users, with passwords kept beside it:

- ``admin``: everything; the supervisor and the tools beside it (audit, bench);
- ``ordersaga-webview``: the read model, intake and limits (``ordersaga:*``);
- ``ordersaga-payments``: the gateway's journal (``ordersaga:gateway:*``) alone.

Both groups are denied the ``@dangerous`` commands (CONFIG, FLUSHALL, KEYS,
DEBUG, ACL, ...). The other groups never connect to Redis and get no URL.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

from ordersaga.adapters.gateway import GATEWAY_JOURNAL
from ordersaga.runtime.credentials import kept_passwords
from ordersaga.runtime.logs import write_private

ADMIN: Final = "admin"
# User -> its rules after the password (Redis ACL syntax).
RULES: Final[dict[str, str]] = {
    ADMIN: "~* &* +@all",
    "ordersaga-webview": "~ordersaga:* &* +@all -@dangerous",
    "ordersaga-payments": f"~{GATEWAY_JOURNAL}* +@all -@dangerous",
}
#: The groups that use Redis, and the user each connects as.
GROUP_USERS: Final[dict[str, str]] = {
    "webview": "ordersaga-webview",
    "payments": "ordersaga-payments",
}


@dataclass(frozen=True)
class RedisUsers:
    """The users of one Redis, their passwords and where it listens."""

    acl_file: Path
    passwords: dict[str, str]
    port: int

    def url(self, user: str = ADMIN) -> str:
        """The redis:// URL of ``user``, password included."""
        return f"redis://{user}:{self.passwords[user]}@127.0.0.1:{self.port}/0"


def redis_users(directory: Path, port: int) -> RedisUsers:
    """Write the ACL file under ``directory`` (passwords kept from the last run)."""
    passwords = kept_passwords(directory / "users.json", RULES)
    lines = ["user default off resetchannels -@all"]
    lines += [f"user {name} on >{passwords[name]} {rules}" for name, rules in RULES.items()]
    acl_file = directory / "users.acl"
    write_private(acl_file, "\n".join(lines) + "\n")
    return RedisUsers(acl_file, passwords, port)
