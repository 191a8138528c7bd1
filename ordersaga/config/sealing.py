"""The sealing section: the keys that keep payment tokens and addresses from the topics."""

from __future__ import annotations

from typing import Final

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings

from ordersaga.config.fields import SECTION_CONFIG

#: Each keys setting -> the groups given it: the web view seals, one group opens.
KEY_READERS: Final[dict[str, tuple[str, ...]]] = {
    "payment_token_keys": ("webview", "payments"),
    "address_keys": ("webview", "shipping"),
}


class SealingSettings(BaseSettings):
    """Keys sealing what only one group reads (ordersaga.edge.sealing)."""

    model_config = SECTION_CONFIG

    # The web view seals, payments opens: no other group (nor whoever reads the
    # topics or the orchestrator's changelog) sees a token.
    payment_token_keys: SecretStr | None = Field(
        default=None,
        description="Keys sealing payment tokens for payments (base64url, 32 bytes; "
        "the first of a list seals); unset: in clear",
    )
    address_keys: SecretStr | None = Field(
        default=None,
        description="Keys sealing shipping addresses for shipping (as above); unset: in clear",
    )
