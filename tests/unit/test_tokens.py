"""Bearer tokens: minted and verified with each algorithm, and every way one is refused."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from base64 import urlsafe_b64encode

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from ordersaga.config.settings import Settings
from ordersaga.edge.tokens import Principal, Role, TokenError, TokenVerifier, mint_token

SECRET = "k" * 32


def _pem(private_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> tuple[str, str]:
    private = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = (
        private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


RSA_PRIVATE, RSA_PUBLIC = _pem(rsa.generate_private_key(public_exponent=65537, key_size=2048))
EC_PRIVATE, EC_PUBLIC = _pem(ec.generate_private_key(ec.SECP256R1()))


def test_an_hs256_token_names_its_customer_and_roles():
    settings = Settings(auth_secret=SECRET)
    minted = mint_token(settings, "cust-1", [Role.CUSTOMER])
    assert TokenVerifier(settings).verify(minted) == Principal("cust-1", frozenset({Role.CUSTOMER}))


@pytest.mark.parametrize(
    ("algorithm", "private", "public"),
    [("RS256", RSA_PRIVATE, RSA_PUBLIC), ("ES256", EC_PRIVATE, EC_PUBLIC)],
)
def test_rs256_and_es256_tokens_verify_with_the_public_key_alone(algorithm, private, public):
    verifier_settings = Settings(auth_public_key=public, auth_algorithm=algorithm)
    minted = mint_token(verifier_settings, "ops", [Role.ADMIN], private_key=private)
    caller = TokenVerifier(verifier_settings).verify(minted)
    assert caller.is_admin and caller.may_act_for("anyone")


def test_the_public_key_may_be_a_file(tmp_path):
    path = tmp_path / "key.pem"
    path.write_text(RSA_PUBLIC)
    settings = Settings(auth_public_key=str(path), auth_algorithm="RS256")
    minted = mint_token(settings, "cust-1", [Role.CUSTOMER], private_key=RSA_PRIVATE)
    assert TokenVerifier(settings).verify(minted).subject == "cust-1"


def test_an_hs256_token_signed_with_the_public_key_is_refused_by_an_rs256_verifier():
    # The classic confusion: the public key, known to all, used as an HMAC secret.
    settings = Settings(auth_public_key=RSA_PUBLIC, auth_algorithm="RS256")
    now = int(time.time())
    claims = {
        "sub": "ops",
        "roles": ["admin"],
        "iss": "ordersaga",
        "aud": "ordersaga-api",
        "iat": now,
        "exp": now + 60,
    }

    def b64(data: bytes) -> bytes:
        return urlsafe_b64encode(data).rstrip(b"=")

    signing = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()) + b"."
    signing += b64(json.dumps(claims).encode())
    signature = hmac.new(RSA_PUBLIC.encode(), signing, hashlib.sha256).digest()
    forged = (signing + b"." + b64(signature)).decode()
    with pytest.raises(TokenError):
        TokenVerifier(settings).verify(forged)


def test_a_customer_acts_for_itself_only_and_an_admin_for_anyone():
    customer = Principal("cust-1", frozenset({Role.CUSTOMER}))
    admin = Principal("ops", frozenset({Role.ADMIN}))
    assert customer.may_act_for("cust-1") and not customer.may_act_for("cust-2")
    assert admin.may_act_for("cust-2")


def test_unknown_roles_are_ignored_beside_a_known_one():
    settings = Settings(auth_secret=SECRET)
    now = int(time.time())
    token = jwt.encode(
        {
            "sub": "cust-1",
            "roles": ["customer", "superuser"],
            "iss": "ordersaga",
            "aud": "ordersaga-api",
            "iat": now,
            "exp": now + 60,
        },
        SECRET,
        algorithm="HS256",
    )
    assert TokenVerifier(settings).verify(token).roles == frozenset({Role.CUSTOMER})


def test_an_expired_token_is_refused_past_the_leeway_only():
    settings = Settings(auth_secret=SECRET, auth_leeway_s=30)
    verifier = TokenVerifier(settings)
    within = mint_token(settings, "cust-1", [Role.CUSTOMER], ttl_s=60, now=time.time() - 80)
    assert verifier.verify(within).subject == "cust-1"
    past = mint_token(settings, "cust-1", [Role.CUSTOMER], ttl_s=60, now=time.time() - 100)
    with pytest.raises(TokenError, match="expired"):
        verifier.verify(past)


@pytest.mark.parametrize(
    "changes",
    [
        {"auth_secret": "short"},
        {"auth_secret": SECRET, "auth_public_key": RSA_PUBLIC},
        {"auth_secret": SECRET, "auth_algorithm": "RS256"},
        {"auth_public_key": RSA_PUBLIC, "auth_algorithm": "HS256"},
    ],
)
def test_settings_refuse_a_weak_or_ambiguous_key(changes):
    with pytest.raises(ValueError):
        Settings(**changes)


def test_minting_refuses_what_could_not_be_verified():
    with pytest.raises(ValueError, match="not set"):
        mint_token(Settings(), "cust-1", [Role.CUSTOMER])
    with pytest.raises(ValueError, match="private key"):
        mint_token(
            Settings(auth_public_key=RSA_PUBLIC, auth_algorithm="RS256"), "ops", [Role.ADMIN]
        )
    with pytest.raises(ValueError, match="not a valid id"):
        mint_token(Settings(auth_secret=SECRET), "../x", [Role.CUSTOMER])


def test_a_subject_with_a_trailing_newline_is_not_an_id():
    settings = Settings(auth_secret=SECRET)
    now = int(time.time())
    token = jwt.encode(
        {
            "sub": "cust-1\n",
            "roles": ["customer"],
            "iss": "ordersaga",
            "aud": "ordersaga-api",
            "iat": now,
            "exp": now + 60,
        },
        SECRET,
        algorithm="HS256",
    )
    with pytest.raises(TokenError, match="sub"):
        TokenVerifier(settings).verify(token)


def test_a_key_that_does_not_fit_its_algorithm_stops_the_verifier_at_start():
    with pytest.raises(ValueError, match="does not fit RS256"):
        TokenVerifier(Settings(auth_public_key=EC_PUBLIC, auth_algorithm="RS256"))


@pytest.mark.parametrize(
    "changes",
    [
        {"auth_algorithm": "RS256"},  # a deployment that lost its key must not run open
        {"auth_algorithm": "ES256", "auth_public_key": "  "},
        {"auth_public_key": ""},
    ],
)
def test_a_missing_or_empty_key_is_refused_rather_than_auth_off(changes):
    with pytest.raises(ValueError):
        Settings(**changes)


def test_numeric_strings_for_iat_and_exp_are_refused():
    settings = Settings(auth_secret=SECRET)
    now = int(time.time())
    claims = {"sub": "cust-1", "roles": ["customer"], "iss": "ordersaga", "aud": "ordersaga-api"}
    token = jwt.encode({**claims, "iat": str(now), "exp": str(now + 60)}, SECRET, algorithm="HS256")
    with pytest.raises(TokenError):
        TokenVerifier(settings).verify(token)
