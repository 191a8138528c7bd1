"""The auth section: which bearer tokens the web view accepts."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings

from ordersaga.config.fields import SECRET, SECTION_CONFIG

# HS256 with a shorter secret can be brute-forced from one token (RFC 7518 3.2 asks
# for a key at least as long as the hash: 256 bits).
MIN_SECRET_LENGTH = 32


class AuthSettings(BaseSettings):
    """Bearer tokens: the key that verifies them and what they must claim."""

    model_config = SECTION_CONFIG

    # Unset, with no public key either: auth is off and every route is open, for
    # local use only.
    auth_secret: SecretStr | None = Field(
        default=None,
        json_schema_extra=SECRET,
        description="HS256 signing secret, 32+ characters; set, bearer tokens are required",
    )
    # The private key stays with whoever issues tokens.
    auth_public_key: str | None = Field(
        default=None,
        description="PEM public key (text or file path) verifying RS256/ES256 tokens; "
        "set, tokens are required",
    )
    auth_algorithm: Literal["HS256", "RS256", "ES256"] = Field(
        default="HS256",
        description="The one algorithm tokens may be signed with: HS256, RS256 or ES256",
    )
    auth_issuer: str = Field(default="ordersaga", description="The `iss` tokens must name")
    auth_audience: str = Field(default="ordersaga-api", description="The `aud` tokens must name")
    # So that a leaked token cannot be forever.
    auth_max_token_lifetime_s: int = Field(
        default=24 * 3600,
        gt=0,
        description="Longest a token may live from `iat` to `exp`, seconds",
    )
    auth_leeway_s: int = Field(
        default=30,
        ge=0,
        le=300,
        description="Clock skew allowed on `exp`, `iat` and `nbf`, seconds",
    )

    @model_validator(mode="after")
    def _one_way_to_verify_tokens(self) -> Self:
        secret = self.auth_secret.get_secret_value() if self.auth_secret else None
        if secret is not None and self.auth_public_key:
            raise ValueError("set ORDERSAGA_AUTH_SECRET or ORDERSAGA_AUTH_PUBLIC_KEY, not both")
        if secret is not None:
            if len(secret) < MIN_SECRET_LENGTH:
                raise ValueError(
                    f"ORDERSAGA_AUTH_SECRET must be at least {MIN_SECRET_LENGTH} characters"
                )
            if self.auth_algorithm != "HS256":
                raise ValueError("ORDERSAGA_AUTH_SECRET signs HS256 tokens only")
        if self.auth_algorithm != "HS256" and not (self.auth_public_key or "").strip():
            # Else a deployment that meant RS256 and lost its key would run open.
            raise ValueError(
                f"ORDERSAGA_AUTH_ALGORITHM {self.auth_algorithm} needs ORDERSAGA_AUTH_PUBLIC_KEY"
            )
        if self.auth_public_key is not None and not self.auth_public_key.strip():
            raise ValueError("ORDERSAGA_AUTH_PUBLIC_KEY is empty: unset it to turn auth off")
        if secret is not None and not secret.strip():
            raise ValueError("ORDERSAGA_AUTH_SECRET is empty: unset it to turn auth off")
        if self.auth_public_key and self.auth_algorithm == "HS256":
            raise ValueError(
                "ORDERSAGA_AUTH_PUBLIC_KEY needs ORDERSAGA_AUTH_ALGORITHM RS256 or ES256"
            )
        return self

    @property
    def auth_enabled(self) -> bool:
        """Whether requests need a bearer token (a secret or a public key is set)."""
        return self.auth_secret is not None or bool(self.auth_public_key)
