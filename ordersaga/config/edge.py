"""The HTTP edge's settings: who may call (tokens), how often, from where.

A section of :class:`ordersaga.config.settings.Settings`, which inherits these
fields: read from the same ``ORDERSAGA_*`` variables, handed to workers the same
way. Apart only so that the one configuration stays readable.
"""

from __future__ import annotations

import ipaddress
from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# HS256 with a shorter secret can be brute-forced from one token (RFC 7518 3.2 asks
# for a key at least as long as the hash: 256 bits).
MIN_SECRET_LENGTH = 32


class EdgeSettings(BaseSettings):
    """Auth, per-client limits and trusted proxies of the web view."""

    model_config = SettingsConfigDict(env_prefix="ORDERSAGA_", frozen=True, extra="ignore")

    auth_secret: SecretStr | None = Field(
        default=None,
        description="ORDERSAGA_AUTH_SECRET: turns bearer-token auth on, with HS256 tokens "
        "signed by this secret (at least 32 characters). Unset (with no public key): "
        "auth is off and every route is open, for local use only.",
    )
    auth_public_key: str | None = Field(
        default=None,
        description="ORDERSAGA_AUTH_PUBLIC_KEY: turns auth on with RS256 or ES256 tokens "
        "(ORDERSAGA_AUTH_ALGORITHM) verified by this PEM public key, given as its text or "
        "as the path of a PEM file; the private key stays with whoever issues tokens.",
    )
    auth_algorithm: Literal["HS256", "RS256", "ES256"] = Field(
        default="HS256",
        description="ORDERSAGA_AUTH_ALGORITHM: the one algorithm tokens may be signed "
        "with: HS256 with the secret, RS256 or ES256 with the public key.",
    )
    auth_issuer: str = Field(
        default="ordersaga", description="ORDERSAGA_AUTH_ISSUER: the `iss` tokens must name."
    )
    auth_audience: str = Field(
        default="ordersaga-api",
        description="ORDERSAGA_AUTH_AUDIENCE: the `aud` tokens must name.",
    )
    auth_max_token_lifetime_s: int = Field(
        default=24 * 3600,
        gt=0,
        description="ORDERSAGA_AUTH_MAX_TOKEN_LIFETIME_S: a token whose `exp` is further "
        "than this after its `iat` is refused, so a leaked token cannot be forever.",
    )
    auth_leeway_s: int = Field(
        default=30,
        ge=0,
        le=300,
        description="ORDERSAGA_AUTH_LEEWAY_S: clock skew allowed on `exp`, `iat` and `nbf`.",
    )
    trusted_proxies: str = Field(
        default="",
        description="ORDERSAGA_TRUSTED_PROXIES: comma-separated addresses of reverse "
        "proxies in front of the web view; from them (only) X-Forwarded-For names the "
        "client whose address the per-client limits count. Empty: the peer is the client.",
    )
    rate_limit_per_s: float = Field(
        default=20.0,
        ge=0,
        description="ORDERSAGA_RATE_LIMIT_PER_S: mutating requests (POST) each client may "
        "make per second, sustained, across every web view worker; 0 turns limits off. A "
        "client is the token's subject, or the peer address without a valid token.",
    )
    rate_limit_burst: int = Field(
        default=40,
        ge=1,
        description="ORDERSAGA_RATE_LIMIT_BURST: mutating requests a client may make at "
        "once before the per-second rate applies.",
    )

    read_rate_limit_per_s: float = Field(
        default=50.0,
        ge=0,
        description="ORDERSAGA_READ_RATE_LIMIT_PER_S: GETs of the API (not the probes, "
        "docs or page) each client may make per second, a budget apart from the POSTs'; "
        "0 turns it off.",
    )
    read_rate_limit_burst: int = Field(
        default=100,
        ge=1,
        description="ORDERSAGA_READ_RATE_LIMIT_BURST: GETs a client may "
        "make at once before the per-second rate applies.",
    )
    allowed_hosts: str = Field(
        default="",
        description="ORDERSAGA_ALLOWED_HOSTS: comma-separated names the web view answers "
        "to in the Host header, besides localhost, 127.0.0.1, ::1 and ORDERSAGA_WEB_HOST "
        "(a page on another name, DNS rebinding, is refused 421); `*` allows any.",
    )

    @model_validator(mode="after")
    def _trusted_proxies_are_addresses(self) -> Self:
        try:
            _ = self.trusted_proxy_addresses
        except ValueError as exc:
            raise ValueError(f"ORDERSAGA_TRUSTED_PROXIES: {exc}") from None
        return self

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
    def trusted_proxy_addresses(self) -> list[str]:
        """ORDERSAGA_TRUSTED_PROXIES as normalized addresses."""
        return [
            str(ipaddress.ip_address(a.strip()))
            for a in self.trusted_proxies.split(",")
            if a.strip()
        ]

    @property
    def auth_enabled(self) -> bool:
        """Whether requests need a bearer token (a secret or a public key is set)."""
        return self.auth_secret is not None or bool(self.auth_public_key)
