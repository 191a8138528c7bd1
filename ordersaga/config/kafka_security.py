"""The Kafka security section: how every client of the broker authenticates and encrypts.

One set of settings reaches every Kafka client ordersaga makes: the Faust apps
(``faust_credentials``), the aiokafka producers, consumers and admin clients of
the tools, the bench and the audit (``aiokafka_security``), and Apache Kafka's
console tools (``java_client_properties``). Each worker group runs as its own
user, so the broker's ACLs can hold each to the topics it owns.
"""

from __future__ import annotations

import ssl
from typing import Any, Literal, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings

from ordersaga.config.fields import SECTION_CONFIG

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


class KafkaSecuritySettings(BaseSettings):
    """Kafka's listener protocol, SASL user and TLS trust, as Kafka's clients name them."""

    model_config = SECTION_CONFIG

    kafka_security_protocol: SecurityProtocol = Field(
        default="PLAINTEXT",
        description="Kafka's security.protocol: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL",
    )
    kafka_sasl_mechanism: SaslMechanism = Field(
        default="SCRAM-SHA-512",
        description="SASL mechanism with a SASL protocol: SCRAM-SHA-512, SCRAM-SHA-256 or PLAIN",
    )
    kafka_sasl_username: str | None = Field(
        default=None,
        max_length=256,
        description="SASL user (each worker group its own, so ACLs can tell them apart)",
    )
    kafka_sasl_password: SecretStr | None = Field(
        default=None, description="SASL password of that user"
    )
    kafka_ssl_cafile: str | None = Field(
        default=None,
        description="PEM file of the CA(s) the broker's certificate is checked against "
        "(unset: the system's trusted CAs)",
    )
    # Mutual TLS: a client certificate, for brokers that authenticate by it.
    kafka_ssl_certfile: str | None = Field(
        default=None, description="PEM client certificate (mutual TLS; unset: none)"
    )
    kafka_ssl_keyfile: str | None = Field(
        default=None, description="PEM private key of the client certificate"
    )

    @model_validator(mode="after")
    def _sasl_needs_a_user(self) -> Self:
        if self.kafka_uses_sasl and not (self.kafka_sasl_username and self.kafka_sasl_password):
            raise ValueError(
                f"ORDERSAGA_KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol} needs "
                "ORDERSAGA_KAFKA_SASL_USERNAME and ORDERSAGA_KAFKA_SASL_PASSWORD"
            )
        if bool(self.kafka_ssl_certfile) != bool(self.kafka_ssl_keyfile):
            raise ValueError(
                "ORDERSAGA_KAFKA_SSL_CERTFILE and ORDERSAGA_KAFKA_SSL_KEYFILE go together"
            )
        return self

    @property
    def kafka_uses_sasl(self) -> bool:
        return self.kafka_security_protocol.startswith("SASL_")

    @property
    def kafka_uses_tls(self) -> bool:
        return self.kafka_security_protocol in ("SSL", "SASL_SSL")

    def kafka_ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context of a client (None on a plaintext listener).

        The broker's name is checked against its certificate, as Kafka's Java
        clients do by default (ssl.endpoint.identification.algorithm=https).
        """
        if not self.kafka_uses_tls:
            return None
        context = ssl.create_default_context(cafile=self.kafka_ssl_cafile)
        if self.kafka_ssl_certfile and self.kafka_ssl_keyfile:
            context.load_cert_chain(self.kafka_ssl_certfile, self.kafka_ssl_keyfile)
        return context

    def aiokafka_security(self) -> dict[str, Any]:
        """The keyword arguments every aiokafka client is made with."""
        options: dict[str, Any] = {"security_protocol": self.kafka_security_protocol}
        if self.kafka_uses_tls:
            options["ssl_context"] = self.kafka_ssl_context()
        if self.kafka_uses_sasl:
            assert self.kafka_sasl_password is not None  # the validator saw to it
            options["sasl_mechanism"] = self.kafka_sasl_mechanism
            options["sasl_plain_username"] = self.kafka_sasl_username
            options["sasl_plain_password"] = self.kafka_sasl_password.get_secret_value()
        return options

    def java_client_properties(self) -> dict[str, str]:
        """The same settings as a Java client's properties (the console tools)."""
        props: dict[str, str] = {"security.protocol": self.kafka_security_protocol}
        if self.kafka_uses_tls and self.kafka_ssl_cafile:
            props["ssl.truststore.type"] = "PEM"
            props["ssl.truststore.location"] = self.kafka_ssl_cafile
        if self.kafka_uses_sasl:
            assert self.kafka_sasl_password is not None
            module = (
                "org.apache.kafka.common.security.plain.PlainLoginModule"
                if self.kafka_sasl_mechanism == "PLAIN"
                else "org.apache.kafka.common.security.scram.ScramLoginModule"
            )
            props["sasl.mechanism"] = self.kafka_sasl_mechanism
            props["sasl.jaas.config"] = (
                f"{module} required username={jaas_quote(self.kafka_sasl_username or '')} "
                f"password={jaas_quote(self.kafka_sasl_password.get_secret_value())};"
            )
        return props

    def java_client_properties_file(self) -> str:
        """Those properties as a java.util.Properties file's text (backslashes doubled)."""
        props = self.java_client_properties()
        escaped = {k: v.replace("\\", "\\\\") for k, v in props.items()}
        return "".join(f"{k}={v}\n" for k, v in escaped.items())


def jaas_quote(value: str) -> str:
    """``value`` as a quoted JAAS option value (quotes and backslashes escaped)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
