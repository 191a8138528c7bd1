"""Apache Kafka with SASL_SSL for `ordersaga run --secure`: certificates, users and ACLs.

Made once under ``<data_dir>/kafka-secure/secrets`` (mode 0700) and kept across
runs: a CA and the broker's certificate (EC P-256, for 127.0.0.1 and localhost),
and a random password per user: ``admin`` (the broker's own and the operator's
super user) and one user per agent group, named like its consumer group. Each
group's user gets the ACLs ``ordersaga.topology.acls`` derives from the
declarations; the broker refuses everything else (``allow.everyone.if.no.acl.found``
is off). Clients authenticate with SCRAM-SHA-512 or PLAIN over TLS; the KRaft
controller's listener takes the admin alone (PLAIN, loopback).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from aiokafka.protocol.admin import CreateAclsRequestStruct
from aiokafka.protocol.api import Request
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pydantic import SecretStr

from ordersaga.adapters.kafka_clients import new_admin
from ordersaga.config.kafka_security import KafkaSecuritySettings, jaas_quote
from ordersaga.runtime.credentials import kept_passwords
from ordersaga.runtime.logs import write_private
from ordersaga.topology.acls import Acl

ADMIN: Final = "admin"
# Kafka's codes: a LITERAL resource pattern, an ALLOW rule.
_LITERAL, _ALLOW = 3, 3
_VALID_FOR = datetime.timedelta(days=825)
_SCRAM: Final = "org.apache.kafka.common.security.scram.ScramLoginModule"
_PLAIN: Final = "org.apache.kafka.common.security.plain.PlainLoginModule"


@dataclass(frozen=True)
class BrokerSecurity:
    """The secrets of a secured broker, and what its config and its clients need of them."""

    directory: Path
    passwords: dict[str, str]

    @property
    def ca_file(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def keystore_file(self) -> Path:
        """The broker's private key and certificate chain, one PEM file."""
        return self.directory / "broker.pem"

    def server_properties(self, port: int, controller_port: int) -> dict[str, str]:
        """What a KRaft node's server.properties says to listen with SASL_SSL only."""
        admin = self.passwords[ADMIN]
        plain_users = " ".join(
            f"user_{name}={jaas_quote(pw)}" for name, pw in sorted(self.passwords.items())
        )
        login = f"username={jaas_quote(ADMIN)} password={jaas_quote(admin)}"
        return {
            "listeners": f"SASL_SSL://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
            "advertised.listeners": f"SASL_SSL://127.0.0.1:{port}",
            "listener.security.protocol.map": "SASL_SSL:SASL_SSL,CONTROLLER:SASL_PLAINTEXT",
            "inter.broker.listener.name": "SASL_SSL",
            # PLAIN between the nodes and to the controller: it needs no SCRAM
            # credentials from the metadata that the controller itself serves.
            "sasl.mechanism.inter.broker.protocol": "PLAIN",
            "sasl.mechanism.controller.protocol": "PLAIN",
            "sasl.enabled.mechanisms": "SCRAM-SHA-512,PLAIN",
            "listener.name.controller.sasl.enabled.mechanisms": "PLAIN",
            "listener.name.controller.plain.sasl.jaas.config": (
                f"{_PLAIN} required {login} user_{ADMIN}={jaas_quote(admin)};"
            ),
            "listener.name.sasl_ssl.plain.sasl.jaas.config": (
                f"{_PLAIN} required {login} {plain_users};"
            ),
            "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": f"{_SCRAM} required;",
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": str(self.keystore_file),
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": str(self.ca_file),
            "ssl.client.auth": "none",
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "super.users": f"User:{ADMIN}",
            "allow.everyone.if.no.acl.found": "false",
        }

    def format_arguments(self) -> list[str]:
        """``kafka-storage format`` arguments giving every user its SCRAM credential."""
        return [
            f"--add-scram=SCRAM-SHA-512=[name={name},password={pw}]"
            for name, pw in sorted(self.passwords.items())
        ]

    def client_settings(self, user: str = ADMIN) -> dict[str, object]:
        """The Kafka security settings of a client logging in as ``user``."""
        return {
            "kafka_security_protocol": "SASL_SSL",
            "kafka_sasl_mechanism": "SCRAM-SHA-512",
            "kafka_sasl_username": user,
            "kafka_sasl_password": SecretStr(self.passwords[user]),
            "kafka_ssl_cafile": str(self.ca_file),
        }

    def write_admin_env(self) -> Path:
        """``admin.env``: the variables that make a shell's tools the broker's admin."""
        path = self.directory / "admin.env"
        shown = {**self.client_settings(), "kafka_sasl_password": self.passwords[ADMIN]}
        lines = [f"export ORDERSAGA_{k.upper()}='{v}'" for k, v in shown.items()]
        write_private(path, "\n".join(lines) + "\n")
        return path


def secure_broker(directory: Path, users: Iterable[str]) -> BrokerSecurity:
    """The secrets under ``directory``: made now where missing, else those of the last run."""
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    if not (directory / "broker.pem").exists():
        _write_certificates(directory)
    passwords = kept_passwords(directory / "users.json", [ADMIN, *users])
    return BrokerSecurity(directory, passwords)


class _CreateAcls(Request[CreateAclsRequestStruct]):
    """Kafka's CreateAcls with many creations in one request (aiokafka's sends one)."""

    API_KEY = 30

    def __init__(self, acls: Iterable[Acl]) -> None:
        self._creations = [
            (int(a.resource), a.name, _LITERAL, a.principal, "*", int(a.operation), _ALLOW)
            for a in acls
        ]

    def build(self, request_struct_class: type[CreateAclsRequestStruct]) -> CreateAclsRequestStruct:
        # Version 0 has no pattern type; Kafka 4 no longer takes it (KIP-896).
        return request_struct_class(self._creations)


async def grant(bootstrap: str, admin: KafkaSecuritySettings, acls: Iterable[Acl]) -> int:
    """Create ``acls`` on the broker as ``admin`` (existing ones stay); returns how many.

    One request: each creation is a write of the controller's metadata log, ~35 ms
    apiece when sent one by one.
    """
    wanted = list(acls)
    client = new_admin(bootstrap, settings=admin)
    await client.start()
    try:
        response = await client._send_request(_CreateAcls(wanted))
    finally:
        await client.close()
    failed = [
        f"{acl}: {code} {message}"
        for acl, (code, message) in zip(wanted, response.creation_responses, strict=True)
        if code
    ]
    if failed:
        raise RuntimeError("creating ACLs failed: " + "; ".join(failed))
    return len(wanted)


def _write_certificates(directory: Path) -> None:
    """A CA, and the broker's certificate for 127.0.0.1 and localhost signed by it."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ordersaga local CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + _VALID_FOR)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    broker = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + _VALID_FOR)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    ca_pem = ca.public_bytes(pem).decode()
    (directory / "ca.pem").write_text(ca_pem)
    # Kafka's PEM key store: the unencrypted PKCS#8 key, then the chain.
    key_pem = key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    write_private(directory / "broker.pem", key_pem + broker.public_bytes(pem).decode() + ca_pem)
