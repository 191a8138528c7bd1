"""Payment tokens and addresses sealed by the web view for the one group that reads each.

A PlaceOrder travels through ``orders.commands``, the orchestrator's ``sagas``
changelog and then ``payments.commands`` or ``shipping.commands``, each kept for
days. With keys set, the web view seals the payment token for payments and the
address for shipping (AES-256-GCM, the order id and the field's name as
associated data, so a sealed value cannot be moved to another order or field);
the orchestrator carries them without being able to read them, and only the
group holding the key opens its own. ``sealed:v1:<key id>:<nonce + ciphertext>``.

Keys are base64url (32 bytes), several comma-separated: the first seals, every
one opens (rotation: put the new key first, drop the old once no order in flight
was sealed with it).
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import SecretStr

from ordersaga.schemas.bounds import SEALED_PREFIX

_NONCE_BYTES = 12


class Unsealable(ValueError):
    """A sealed value this process cannot open: no key, another key, or altered."""


def new_key() -> str:
    """A fresh key in the settings' form."""
    return base64.urlsafe_b64encode(AESGCM.generate_key(bit_length=256)).decode().rstrip("=")


def _decode_key(text: str) -> bytes:
    key = base64.urlsafe_b64decode(text.strip() + "=" * (-len(text.strip()) % 4))
    if len(key) != 32:
        raise ValueError("a sealing key is 32 bytes, base64url-encoded")
    return key


def _key_id(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:8]


class Sealer:
    """Seals with the first key, opens with any (``keys``: raw 32-byte keys)."""

    def __init__(self, keys: Sequence[bytes]) -> None:
        if not keys:
            raise ValueError("a sealer needs a key")
        self._sealing = (_key_id(keys[0]), AESGCM(keys[0]))
        self._opening = {_key_id(k): AESGCM(k) for k in keys}

    @classmethod
    def from_setting(cls, keys: SecretStr | None) -> Sealer | None:
        """The sealer of a keys setting, or None when it is unset."""
        if keys is None or not keys.get_secret_value().strip():
            return None
        return cls([_decode_key(k) for k in keys.get_secret_value().split(",") if k.strip()])

    def seal(self, plain: str, context: str) -> str:
        """``plain`` sealed; ``context`` (order id and field) must be given again to open it."""
        key_id, aead = self._sealing
        nonce = os.urandom(_NONCE_BYTES)
        sealed = aead.encrypt(nonce, plain.encode(), context.encode())
        body = base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")
        return f"{SEALED_PREFIX}{key_id}:{body}"

    def open(self, sealed: str, context: str) -> str:
        """The plain text of ``sealed``; raises :class:`Unsealable` if it cannot be opened."""
        key_id, _, body = sealed.removeprefix(SEALED_PREFIX).partition(":")
        aead = self._opening.get(key_id)
        if aead is None:
            raise Unsealable(f"sealed with key {key_id}, which this group does not hold")
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            plain = aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], context.encode())
        except (InvalidTag, ValueError) as exc:
            raise Unsealable("sealed value altered, or sealed for another order") from exc
        return plain.decode()


def is_sealed(value: object) -> bool:
    return isinstance(value, str) and value.startswith(SEALED_PREFIX)


def open_or_refuse(sealer: Sealer | None, value: str, context: str) -> str:
    """``value`` opened if sealed (refused without a key), else as it is."""
    if not is_sealed(value):
        return value
    if sealer is None:
        raise Unsealable("a sealed value reached a group that holds no key")
    return sealer.open(value, context)


class OrderSealing:
    """The web view's sealers: the payment token for payments, the address for shipping."""

    def __init__(self, tokens: Sealer | None, addresses: Sealer | None) -> None:
        self.tokens = tokens
        self.addresses = addresses

    @classmethod
    def from_keys(
        cls, token_keys: SecretStr | None, address_keys: SecretStr | None
    ) -> OrderSealing:
        return cls(Sealer.from_setting(token_keys), Sealer.from_setting(address_keys))

    def token(self, order_id: str, token: str) -> str:
        """The token as PlaceOrder carries it: sealed for payments when there is a key."""
        if self.tokens is None:
            return token
        return self.tokens.seal(token, token_context(order_id))

    def address(self, order_id: str, address_json: str) -> str | None:
        """The address (its JSON) sealed for shipping, or None when there is no key."""
        if self.addresses is None:
            return None
        return self.addresses.seal(address_json, address_context(order_id))


def token_context(order_id: str) -> str:
    return f"{order_id}/payment_token"


def address_context(order_id: str) -> str:
    return f"{order_id}/shipping_address"
