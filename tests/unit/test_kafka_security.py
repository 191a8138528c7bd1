"""Kafka security: the settings every client is made with, and each group's ACLs."""

from __future__ import annotations

import ssl
from pathlib import Path

import faust
import pytest
from pydantic import ValidationError

from ordersaga.config.kafka_security import KafkaSecuritySettings, jaas_quote
from ordersaga.config.settings import Settings
from ordersaga.runtime.kafka_security import ADMIN, secure_broker
from ordersaga.shell.faust_app import broker_credentials
from ordersaga.topology import TOPOLOGY
from ordersaga.topology.acls import Operation, Resource, all_acls, group_acls, principal
from ordersaga.topology.topics import ORDERS_COMMANDS, ORDERS_EVENTS, PAYMENTS_COMMANDS

SASL = {
    "kafka_security_protocol": "SASL_SSL",
    "kafka_sasl_username": "ordersaga-payments",
    "kafka_sasl_password": 'p"w\\d',
}


def writers(topic: str) -> set[str]:
    return {
        acl.principal
        for acl in all_acls(TOPOLOGY)
        if acl.resource is Resource.TOPIC and acl.name == topic and acl.operation is Operation.WRITE
    }


def allowed(group: str, operation: Operation, topic: str) -> bool:
    return any(
        acl.resource is Resource.TOPIC and acl.name == topic and acl.operation is operation
        for acl in group_acls(TOPOLOGY, group)
    )


def test_plaintext_is_the_default_and_adds_nothing() -> None:
    settings = KafkaSecuritySettings()
    assert settings.aiokafka_security() == {"security_protocol": "PLAINTEXT"}
    assert settings.java_client_properties() == {"security.protocol": "PLAINTEXT"}
    assert broker_credentials(Settings()) is None


def test_a_sasl_protocol_needs_a_user_and_a_password() -> None:
    with pytest.raises(ValidationError, match="ORDERSAGA_KAFKA_SASL_USERNAME"):
        KafkaSecuritySettings(kafka_security_protocol="SASL_SSL", kafka_sasl_username="u")
    with pytest.raises(ValidationError, match="go together"):
        KafkaSecuritySettings(kafka_ssl_certfile="/c.pem")


def test_every_aiokafka_client_gets_sasl_over_tls() -> None:
    options = KafkaSecuritySettings(**SASL).aiokafka_security()  # type: ignore[arg-type]
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert options["sasl_plain_username"] == "ordersaga-payments"
    assert options["sasl_plain_password"] == 'p"w\\d'
    context = options["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.check_hostname and context.verify_mode is ssl.CERT_REQUIRED


def test_faust_gets_the_same_credentials() -> None:
    credentials = broker_credentials(Settings(**SASL))  # type: ignore[arg-type]
    assert isinstance(credentials, faust.SASLCredentials)
    assert (credentials.username, credentials.mechanism.value) == (
        "ordersaga-payments",
        "SCRAM-SHA-512",
    )
    assert credentials.ssl_context is not None
    tls_only = broker_credentials(Settings(kafka_security_protocol="SSL"))
    assert isinstance(tls_only, faust.SSLCredentials)


def test_the_java_tools_get_a_quoted_jaas_line() -> None:
    props = KafkaSecuritySettings(
        **SASL,
        kafka_ssl_cafile="/tmp/ca.pem",
        kafka_sasl_mechanism="PLAIN",  # type: ignore[arg-type]
    ).java_client_properties()
    assert props["sasl.jaas.config"] == (
        "org.apache.kafka.common.security.plain.PlainLoginModule required "
        'username="ordersaga-payments" password="p\\"w\\\\d";'
    )
    assert props["ssl.truststore.location"] == "/tmp/ca.pem"
    assert jaas_quote('a"b') == '"a\\"b"'


def test_only_the_web_view_and_the_orchestrator_itself_write_its_commands() -> None:
    assert writers(ORDERS_COMMANDS) == {principal("webview"), principal("orders")}


def test_a_step_s_command_topic_is_written_by_the_orchestrator_alone() -> None:
    assert writers(PAYMENTS_COMMANDS) == {principal("orders")}
    assert writers(ORDERS_EVENTS) == {principal("orders")}


@pytest.mark.parametrize("p", TOPOLOGY.participants, ids=lambda p: p.name)
def test_each_group_reads_what_it_consumes_and_writes_what_it_sends(p: object) -> None:
    group = p.name  # type: ignore[attr-defined]
    participant = TOPOLOGY.participant(group)
    for topic in participant.consumes:
        assert allowed(group, Operation.READ, topic)
        assert allowed(group, Operation.WRITE, f"{topic}.dlq")
    for topic, _ in participant.sends():
        if topic not in participant.consumes:  # a consumed type is sent by others
            assert allowed(group, Operation.WRITE, topic)
    for message_type in participant.also_sends:
        assert allowed(group, Operation.WRITE, TOPOLOGY.topic_of(message_type))
    for table in participant.tables:
        assert allowed(group, Operation.READ, table.changelog_topic)
        assert allowed(group, Operation.WRITE, table.changelog_topic)
    others = [t.changelog_topic for t in TOPOLOGY.tables if t.group != group]
    assert not any(allowed(group, op, t) for t in others for op in Operation)
    groups = {a.name for a in group_acls(TOPOLOGY, group) if a.resource is Resource.GROUP}
    reads = {
        a.name
        for a in group_acls(TOPOLOGY, group)
        if a.resource is Resource.GROUP and a.operation is Operation.READ
    }
    assert reads == {participant.app_id} and participant.app_id in groups


def test_payments_can_neither_write_commands_nor_read_events() -> None:
    assert not allowed("payments", Operation.WRITE, ORDERS_COMMANDS)
    assert not allowed("payments", Operation.READ, ORDERS_EVENTS)


def test_the_secured_broker_listens_with_sasl_ssl_only(tmp_path: Path) -> None:
    security = secure_broker(tmp_path, ["ordersaga-orders"])
    props = security.server_properties(9093, 9094)
    assert props["listeners"] == "SASL_SSL://127.0.0.1:9093,CONTROLLER://127.0.0.1:9094"
    assert props["allow.everyone.if.no.acl.found"] == "false"
    assert props["super.users"] == f"User:{ADMIN}"
    assert (tmp_path / "users.json").stat().st_mode & 0o077 == 0
    assert (tmp_path / "broker.pem").stat().st_mode & 0o077 == 0
    # Kept across runs: the broker was formatted with these passwords.
    assert secure_broker(tmp_path, ["ordersaga-orders"]).passwords == security.passwords
    # The CA verifies the broker's certificate for 127.0.0.1.
    context = ssl.create_default_context(cafile=str(security.ca_file))
    assert context.cert_store_stats()["x509_ca"] == 1


def test_the_tools_properties_file_escapes_backslashes() -> None:
    text = KafkaSecuritySettings(**SASL).java_client_properties_file()  # type: ignore[arg-type]
    assert "security.protocol=SASL_SSL\n" in text
    # The JAAS quoting's backslashes, each doubled again for java.util.Properties.
    assert 'password="p\\\\"w\\\\\\\\d";' in text
