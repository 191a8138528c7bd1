"""Kubernetes manifests for ordersaga, generated from the groups and the topic declarations.

``ordersaga manifests`` writes them (the kustomize base, deploy/k8s/base); a test holds
the committed copies equal to what this module generates, so a group or topic added in code
is in the manifests too. They assume a Kafka cluster run by Strimzi (topics as
``KafkaTopic`` resources, a ``KafkaUser`` per group with SCRAM-SHA-512 and the
ACLs ``ordersaga.topology.acls`` derives, reached over TLS), the Prometheus
Operator (``ServiceMonitor``, ``PrometheusRule``) and KEDA (scaling a group on
its consumer lag); Redis and the other secrets come from outside
(docs/operations.md, "Kubernetes").
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ordersaga.config.sealing import KEY_READERS
from ordersaga.config.settings import env_name
from ordersaga.runtime.redis_users import GROUP_USERS
from ordersaga.runtime.topic_admin import TopicShape, declared_topics
from ordersaga.shell.groups import GROUPS, AgentGroup
from ordersaga.topology import TOPOLOGY
from ordersaga.topology.acls import Acl, group_acls

NAMESPACE = "ordersaga"
IMAGE = "ordersaga:dev"
KAFKA_CLUSTER = "ordersaga"  # the Strimzi Kafka resource's name
BASE_PORT = 6066
PARTITIONS = 4
REPLICATION = 3
SECRETS = "ordersaga-secrets"
# Groups that talk to Redis: the web view (its read model) and payments (the gateway's journal).
USES_REDIS = frozenset(GROUP_USERS)
# Lag per worker above which KEDA adds one, up to one worker per partition.
LAG_PER_WORKER = 1000

LABELS = {"app.kubernetes.io/part-of": "ordersaga"}
# Strimzi's TLS listener (named "tls", port 9093) with SCRAM-SHA-512 authentication.
BOOTSTRAP = f"{KAFKA_CLUSTER}-kafka-bootstrap:9093"
# The cluster CA's certificate, which Strimzi keeps in this Secret, mounted here.
CLUSTER_CA = f"{KAFKA_CLUSTER}-cluster-ca-cert"
CA_DIR = "/etc/ordersaga/kafka-ca"


def _group_labels(group: str) -> dict[str, str]:
    """The labels of a group's objects, which its selectors match."""
    return {**LABELS, "app.kubernetes.io/name": group}


def _meta(name: str, group: str | None = None) -> dict[str, Any]:
    labels = _group_labels(group) if group else dict(LABELS)
    return {"name": name, "namespace": NAMESPACE, "labels": labels}


def settings() -> dict[str, Any]:
    """The settings every worker reads (the secrets are in ``ordersaga-secrets``)."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _meta("ordersaga-settings"),
        "data": {
            "KAFKA_BROKER": BOOTSTRAP,
            "ORDERSAGA_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "ORDERSAGA_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
            "ORDERSAGA_KAFKA_SSL_CAFILE": f"{CA_DIR}/ca.crt",
            "ORDERSAGA_WEB_HOST": "0.0.0.0",
            "ORDERSAGA_WEB_PORT": str(BASE_PORT),
            "ORDERSAGA_PARTITIONS": str(PARTITIONS),
            "ORDERSAGA_REPLICATION_FACTOR": str(REPLICATION),
            "ORDERSAGA_LOG_FORMAT": "json",
            "ORDERSAGA_LOG_LEVEL": "info",
            # Probes and Prometheus reach a pod by its IP; the API by the Service's name.
            "ORDERSAGA_ALLOWED_HOSTS": "ordersaga-webview",
        },
    }


def _secret_env(group: AgentGroup) -> list[dict[str, Any]]:
    names = (["REDIS_URL"] if group.name in USES_REDIS else []) + (
        ["ORDERSAGA_AUTH_SECRET"] if group.name == "webview" else []
    )
    # The web view seals, payments and shipping each open their own (edge/sealing.py).
    names += [env_name(key) for key, readers in KEY_READERS.items() if group.name in readers]
    # Its own Kafka user: Strimzi's user operator keeps the password in a Secret
    # named like the KafkaUser.
    return [
        {"name": "ORDERSAGA_KAFKA_SASL_USERNAME", "value": group.app_id},
        {
            "name": "ORDERSAGA_KAFKA_SASL_PASSWORD",
            "valueFrom": {"secretKeyRef": {"name": group.app_id, "key": "password"}},
        },
        *({"name": n, "valueFrom": {"secretKeyRef": {"name": SECRETS, "key": n}}} for n in names),
    ]


def deployment(group: AgentGroup) -> dict[str, Any]:
    """One group's workers: two replicas, probed on /live and /ready."""
    port = group.web_port(BASE_PORT)
    name = f"ordersaga-{group.name}"

    def probe(path: str, period: int, failures: int) -> dict[str, Any]:
        return {
            "httpGet": {"path": path, "port": "http"},
            "periodSeconds": period,
            "failureThreshold": failures,
            "timeoutSeconds": 2,
        }

    container = {
        "name": group.name,
        "image": IMAGE,
        "command": [
            "faust",
            "-A",
            group.module,
            "worker",
            "-l",
            "info",
            "--web-port",
            str(port),
            "--web-bind",
            "0.0.0.0",
        ],
        "envFrom": [{"configMapRef": {"name": "ordersaga-settings"}}],
        "env": _secret_env(group),
        "ports": [{"name": "http", "containerPort": port}],
        # Liveness is the process, never its dependencies: a Kafka or Redis outage must
        # not restart every replica. A worker whose recovery overruns exits by itself.
        "startupProbe": probe("/live", 2, 60),
        "livenessProbe": probe("/live", 10, 3),
        "readinessProbe": probe("/ready", 5, 2),
        "resources": {
            "requests": {"cpu": "250m", "memory": "256Mi"},
            "limits": {"memory": "1Gi"},
        },
        "securityContext": {
            "runAsNonRoot": True,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [
            {"name": "data", "mountPath": "/var/lib/ordersaga"},
            {"name": "kafka-ca", "mountPath": CA_DIR, "readOnly": True},
        ],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(name, group.name),
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": _group_labels(group.name)},
            "template": {
                "metadata": {"labels": _group_labels(group.name)},
                "spec": {
                    # A stopping worker leaves its group and commits before it goes.
                    "terminationGracePeriodSeconds": 60,
                    "containers": [container],
                    # Table data is rebuilt from the changelogs on every start.
                    "volumes": [
                        {"name": "data", "emptyDir": {}},
                        {"name": "kafka-ca", "secret": {"secretName": CLUSTER_CA}},
                    ],
                },
            },
        },
    }


def service(group: AgentGroup) -> dict[str, Any]:
    """The group's port: the API for the web view, /metrics for every group."""
    port = group.web_port(BASE_PORT)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(f"ordersaga-{group.name}", group.name),
        "spec": {
            "selector": _group_labels(group.name),
            "ports": [{"name": "http", "port": port, "targetPort": "http"}],
        },
    }


def scaled_object(group: AgentGroup) -> dict[str, Any]:
    """KEDA: one more worker per LAG_PER_WORKER messages behind, up to one per partition."""
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": _meta(f"ordersaga-{group.name}", group.name),
        "spec": {
            "scaleTargetRef": {"name": f"ordersaga-{group.name}"},
            "minReplicaCount": 2,
            "maxReplicaCount": PARTITIONS,
            "triggers": [
                {
                    "type": "kafka",
                    "metadata": {
                        "bootstrapServers": BOOTSTRAP,
                        "consumerGroup": group.app_id,
                        "lagThreshold": str(LAG_PER_WORKER),
                        "sasl": "scram_sha512",
                        "tls": "enable",
                    },
                    "authenticationRef": {"name": f"ordersaga-{group.name}"},
                }
            ],
        },
    }


def trigger_authentication(group: AgentGroup) -> dict[str, Any]:
    """KEDA reads the group's lag as the group's own user (it may describe its group)."""
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "TriggerAuthentication",
        "metadata": _meta(f"ordersaga-{group.name}", group.name),
        "spec": {
            # The user's name is the workers' own setting (the Secret holds no name).
            "env": [
                {
                    "parameter": "username",
                    "name": "ORDERSAGA_KAFKA_SASL_USERNAME",
                    "containerName": group.name,
                }
            ],
            "secretTargetRef": [
                {"parameter": "password", "name": group.app_id, "key": "password"},
                {"parameter": "ca", "name": CLUSTER_CA, "key": "ca.crt"},
            ],
        },
    }


def service_monitor() -> dict[str, Any]:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": _meta("ordersaga"),
        "spec": {
            "selector": {"matchLabels": LABELS},
            "endpoints": [{"port": "http", "path": "/metrics", "interval": "15s"}],
        },
    }


def disruption_budget(group: AgentGroup) -> dict[str, Any]:
    """One voluntary eviction at a time: a group's partitions move once, not all at once."""
    spec: dict[str, Any] = {"selector": {"matchLabels": _group_labels(group.name)}}
    if group.name == "webview":
        spec["minAvailable"] = 1  # the API stays up (the production overlay: 2 of 3)
    else:
        spec["maxUnavailable"] = 1
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _meta(f"ordersaga-{group.name}", group.name),
        "spec": spec,
    }


def kafka_topic(name: str, shape: TopicShape) -> dict[str, Any]:
    """A Strimzi KafkaTopic as `ordersaga topics --create` would make it."""
    return {
        "apiVersion": "kafka.strimzi.io/v1beta2",
        "kind": "KafkaTopic",
        "metadata": {
            # Resource names may not hold "_": the topic's own name is spec.topicName.
            "name": name.replace("_", "-").replace(".", "-").lower(),
            "namespace": NAMESPACE,
            "labels": {**LABELS, "strimzi.io/cluster": KAFKA_CLUSTER},
        },
        "spec": {
            "topicName": name,
            "partitions": shape.partitions,
            "replicas": shape.replication,
            "config": dict(shape.configs),
        },
    }


def kafka_user(group: AgentGroup) -> dict[str, Any]:
    """A Strimzi KafkaUser: the group's SCRAM-SHA-512 user and the ACLs of its declaration."""
    by_resource: dict[tuple[str, str], list[str]] = {}
    for acl in group_acls(TOPOLOGY, group.name):
        by_resource.setdefault((acl.resource.name.lower(), acl.name), []).append(_operation(acl))
    return {
        "apiVersion": "kafka.strimzi.io/v1beta2",
        "kind": "KafkaUser",
        "metadata": {
            "name": group.app_id,
            "namespace": NAMESPACE,
            "labels": {**_group_labels(group.name), "strimzi.io/cluster": KAFKA_CLUSTER},
        },
        "spec": {
            "authentication": {"type": "scram-sha-512"},
            "authorization": {
                "type": "simple",
                "acls": [
                    {
                        "resource": {"type": kind, "name": name, "patternType": "literal"},
                        "operations": sorted(operations),
                        "host": "*",
                    }
                    for (kind, name), operations in sorted(by_resource.items())
                ],
            },
        },
    }


def _operation(acl: Acl) -> str:
    return acl.operation.name.capitalize()  # Strimzi's spelling: Read, Write, ...


def prometheus_rule(alerts: dict[str, Any]) -> dict[str, Any]:
    """deploy/alerts.yml as the Prometheus Operator's PrometheusRule (same groups)."""
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": _meta("ordersaga"),
        "spec": {"groups": alerts["groups"]},
    }


def workloads() -> list[dict[str, Any]]:
    """Everything but the topics, users and monitoring, in the order to apply it."""
    objects: list[dict[str, Any]] = [settings()]
    for group in GROUPS:
        objects += [deployment(group), service(group)]
    objects += [disruption_budget(g) for g in GROUPS]
    for g in GROUPS:
        if g.name != "webview":
            objects += [trigger_authentication(g), scaled_object(g)]
    return objects


def users() -> list[dict[str, Any]]:
    """A KafkaUser per group."""
    return [kafka_user(g) for g in GROUPS]


def monitoring(alerts: dict[str, Any]) -> list[dict[str, Any]]:
    """The ServiceMonitor scraping every group, and the alerts (``alerts``: alerts.yml)."""
    return [service_monitor(), prometheus_rule(alerts)]


def topics() -> list[dict[str, Any]]:
    """Every declared topic, changelogs and dead letters included."""
    declared = declared_topics(PARTITIONS, replication=REPLICATION)
    return [kafka_topic(name, shape) for name, shape in sorted(declared.items())]


def base(alerts: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """The kustomize base's files: name -> its objects (``alerts``: alerts.yml)."""
    return {
        "workloads.yaml": workloads(),
        "topics.yaml": topics(),
        "users.yaml": users(),
        "monitoring.yaml": monitoring(alerts),
    }


def kustomization(files: list[str]) -> dict[str, Any]:
    """The base's kustomization.yaml: its files, in the order to apply them."""
    return {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "namespace": NAMESPACE,
        "resources": files,
    }


def write_base(out: str, alerts_path: str) -> list[str]:
    """Write the base's files under ``out``; one line per file written.

    Raises ImportError without PyYAML (a dev dependency; the image has none).
    """
    import yaml

    directory = Path(out)
    directory.mkdir(parents=True, exist_ok=True)
    header = f"# Generated by `ordersaga manifests --out {out}`; edit ordersaga, not this.\n"
    files = base(yaml.safe_load(Path(alerts_path).read_text()))
    written = []
    for name, objects in (*files.items(), ("kustomization.yaml", [kustomization([*files])])):
        text = yaml.safe_dump_all(objects, sort_keys=False, width=100)
        (directory / name).write_text(header + text)
        written.append(f"{directory / name} ({len(objects)} objects)")
    return written
