"""What every section of the settings shares: how it is read, and which values are secret."""

from __future__ import annotations

from typing import Any, Final, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import SecretStr
from pydantic.fields import FieldInfo
from pydantic_settings import SettingsConfigDict

# Every section reads the same variables the same way, so that a section alone
# (in a test, say) sees what the composed Settings sees.
SECTION_CONFIG: Final = SettingsConfigDict(env_prefix="ORDERSAGA_", frozen=True, extra="ignore")

Secrecy = Literal["value", "url"]
MASK: Final = "****"

#: json_schema_extra of a field whose whole value is secret (a signing key).
SECRET: Final[dict[str, Any]] = {"secret": "value"}
#: json_schema_extra of a URL that may carry a password (redis://:pw@host): only
#: the password is masked, so the host stays readable.
URL_WITH_CREDENTIALS: Final[dict[str, Any]] = {"secret": "url"}


def secrecy(field: FieldInfo) -> Secrecy | None:
    """How a field's value is masked when shown, if it is secret (its one mark)."""
    extra = field.json_schema_extra
    mark = extra.get("secret") if isinstance(extra, dict) else None
    if mark == "value" or field.annotation in (SecretStr, SecretStr | None):
        return "value"
    return "url" if mark == "url" else None


def masked(field: FieldInfo, value: object) -> object:
    """``value`` as it may be shown: secrets hidden, whatever else unchanged."""
    kind = secrecy(field)
    if value is None or kind is None:
        return value
    if kind == "value":
        return MASK
    return mask_url_password(str(value))


def mask_url_password(url: str) -> str:
    """``url`` with the password of its user info (if any) replaced by the mask."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    userinfo, _, host = parts.netloc.rpartition("@")
    user = userinfo.partition(":")[0]
    return urlunsplit(parts._replace(netloc=f"{user}:{MASK}@{host}"))
