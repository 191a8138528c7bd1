"""The sealing section: the keys that keep payment tokens and addresses from the topics."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings

from ordersaga.config.fields import SECTION_CONFIG


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
