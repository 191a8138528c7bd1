"""Bearer tokens: who is asking (``sub``) and what they may do (``roles``).

Tokens are JWTs signed with exactly one configured algorithm: HS256 with a
shared secret, or RS256/ES256 verified with a public key. The algorithm is
never taken from the token's own header, so neither ``alg: none`` nor an
RS256-public-key-as-HMAC-secret token gets through. Every token must name the
configured issuer and audience and carry ``sub``, ``iat`` and ``exp``, with a
lifetime no longer than the configured maximum.
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import jwt

from ordersaga.config.settings import Settings
from ordersaga.schemas.bounds import ID_PATTERN

# Longer tokens are refused before any parsing: a client controls this header.
MAX_TOKEN_LENGTH = 4096
MAX_ROLES = 8
_SUBJECT = re.compile(ID_PATTERN)


class Role(StrEnum):
    """What a token's holder may do: a customer acts for itself, an admin for anyone."""

    CUSTOMER = "customer"
    ADMIN = "admin"


@dataclass(frozen=True)
class Principal:
    """The verified holder of a token."""

    subject: str
    roles: frozenset[Role]

    @property
    def is_admin(self) -> bool:
        return Role.ADMIN in self.roles

    def may_act_for(self, customer_id: str) -> bool:
        """Whether this holder may read or change what belongs to ``customer_id``."""
        return self.is_admin or (Role.CUSTOMER in self.roles and self.subject == customer_id)


class TokenError(ValueError):
    """A token that is missing, malformed, wrongly signed, expired or not for us."""


def _public_key(value: str) -> str:
    # A PEM's text, or the path of a file holding one.
    if value.lstrip().startswith("-----BEGIN"):
        return value
    return Path(value).read_text(encoding="utf-8")


# What a refused token is told. Fixed texts: PyJWT's own messages quote parts of
# the token (a `crit` header, claim names), which would land in WWW-Authenticate
# and the logs as the client wrote them.
EXPIRED = "the token has expired"
BAD_SIGNATURE = "the token's signature or algorithm is not the one configured"
MALFORMED = "the token is not a well-formed JWT"
BAD_CLAIMS = "the token's claims are missing or wrong (sub, roles, iss, aud, iat, exp)"
TOO_LONG_LIVED = "the token lives longer than this service allows"
FROM_THE_FUTURE = "the token was issued in the future"
TOO_LONG = f"the token is over {MAX_TOKEN_LENGTH} characters"


class TokenVerifier:
    """Checks bearer tokens against the settings' key, algorithm, issuer and audience."""

    def __init__(self, settings: Settings) -> None:
        if settings.auth_secret is not None:
            raw = settings.auth_secret.get_secret_value()
        elif settings.auth_public_key:
            raw = _public_key(settings.auth_public_key)
        else:
            raise ValueError("auth is off: no ORDERSAGA_AUTH_SECRET or ORDERSAGA_AUTH_PUBLIC_KEY")
        # Prepared once, so a key that does not fit its algorithm (an EC key for
        # RS256) stops the worker at start instead of failing every request.
        algorithm = jwt.get_algorithm_by_name(settings.auth_algorithm)
        try:
            self._key: Any = algorithm.prepare_key(raw)
        except (jwt.PyJWTError, ValueError, TypeError) as exc:
            raise ValueError(
                f"the auth key does not fit {settings.auth_algorithm}: {type(exc).__name__}"
            ) from None
        self._algorithms = [settings.auth_algorithm]
        self._issuer = settings.auth_issuer
        self._audience = settings.auth_audience
        self._leeway = settings.auth_leeway_s
        self._max_lifetime = settings.auth_max_token_lifetime_s

    def verify(self, token: str) -> Principal:
        """The token's principal, or TokenError saying what is wrong with it."""
        if len(token) > MAX_TOKEN_LENGTH:
            raise TokenError(TOO_LONG)
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=self._algorithms,
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": ["sub", "iat", "exp", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise TokenError(EXPIRED) from None
        except (jwt.InvalidSignatureError, jwt.InvalidAlgorithmError):
            raise TokenError(BAD_SIGNATURE) from None
        except jwt.DecodeError:
            raise TokenError(MALFORMED) from None
        except jwt.PyJWTError:  # every other claim check, and key errors
            raise TokenError(BAD_CLAIMS) from None
        issued, expires = claims["iat"], claims["exp"]
        # PyJWT accepts numeric strings ("1700000000") for these; we do not.
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (issued, expires)):
            raise TokenError(BAD_CLAIMS)
        if expires - issued > self._max_lifetime:
            raise TokenError(TOO_LONG_LIVED)
        if issued > time.time() + self._leeway:
            raise TokenError(FROM_THE_FUTURE)
        return _principal(claims)


def _principal(claims: dict[str, Any]) -> Principal:
    subject = claims["sub"]
    if not isinstance(subject, str) or not _SUBJECT.fullmatch(subject):
        raise TokenError(BAD_CLAIMS)
    raw = claims.get("roles")
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_ROLES:
        raise TokenError(BAD_CLAIMS)
    known = {str(role) for role in Role}
    roles = frozenset(Role(r) for r in raw if isinstance(r, str) and r in known)
    if not roles:
        raise TokenError(BAD_CLAIMS)
    return Principal(subject, roles)


def mint_token(
    settings: Settings,
    subject: str,
    roles: list[Role],
    *,
    ttl_s: int = 3600,
    private_key: str | None = None,
    now: float | None = None,
) -> str:
    """A token for local use: signed with the secret, or with ``private_key`` (PEM) for RS/ES."""
    if not _SUBJECT.fullmatch(subject):
        raise ValueError(f"{subject!r} is not a valid id")
    if not 0 < ttl_s <= settings.auth_max_token_lifetime_s:
        raise ValueError(
            f"a token's lifetime must be 1-{settings.auth_max_token_lifetime_s} s "
            "(ORDERSAGA_AUTH_MAX_TOKEN_LIFETIME_S)"
        )
    if settings.auth_algorithm == "HS256":
        if settings.auth_secret is None:
            raise ValueError("ORDERSAGA_AUTH_SECRET is not set: there is nothing to sign with")
        key: Any = settings.auth_secret.get_secret_value()
    elif private_key is None:
        raise ValueError(f"{settings.auth_algorithm} tokens need the private key (--private-key)")
    else:
        key = private_key
    issued = int(time.time() if now is None else now)
    claims = {
        "sub": subject,
        "roles": [str(r) for r in roles],
        "iss": settings.auth_issuer,
        "aud": settings.auth_audience,
        "iat": issued,
        "exp": issued + ttl_s,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, key, algorithm=settings.auth_algorithm)


def operator_headers(settings: Settings, subject: str) -> dict[str, str] | None:
    """What ordersaga's own clients (seeding, the demo) send: an admin token when auth is on.

    None when auth is on with a public key only: tokens are signed by their issuer,
    and ordersaga holds no key to sign one with.
    """
    if not settings.auth_enabled:
        return {}
    if settings.auth_secret is None:
        return None
    token = mint_token(
        settings, subject, [Role.ADMIN], ttl_s=min(600, settings.auth_max_token_lifetime_s)
    )
    return {"Authorization": f"Bearer {token}"}
