"""Kubernetes manifests for ordersaga, generated from the groups and the topic declarations.

``ordersaga manifests --out deploy/k8s`` writes them; a test holds the committed
copies equal to what this module generates, so a group or topic added in code
is in the manifests too. They assume a Kafka cluster run by Strimzi (topics as
``KafkaTopic`` resources), the Prometheus Operator (``ServiceMonitor``) and KEDA
(scaling a group on its consumer lag); Redis and the secrets come from outside
(docs/operations.md, "Kubernetes").
"""

from __future__ import annotations

from typing import Any

from ordersaga.runtime.topic_admin import TopicShape, declared_topics
from ordersaga.shell.groups import GROUPS, AgentGroup

NAMESPACE = "ordersaga"
IMAGE = "ordersaga:dev"
KAFKA_CLUSTER = "ordersaga"  # the Strimzi Kafka resource's name
BASE_PORT = 6066
PARTITIONS = 4
REPLICATION = 3
SECRETS = "ordersaga-secrets"
# Groups that talk to Redis: the web view (its read model) and payments (the gateway's journal).
USES_REDIS = frozenset({"webview", "payments"})
# Lag per worker above which KEDA adds one, up to one worker per partition.
LAG_PER_WORKER = 1000

LABELS = {"app.kubernetes.io/part-of": "ordersaga"}
BOOTSTRAP = f"{KAFKA_CLUSTER}-kafka-bootstrap:9092"


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
    return [{"name": n, "valueFrom": {"secretKeyRef": {"name": SECRETS, "key": n}}} for n in names]


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
        "volumeMounts": [{"name": "data", "mountPath": "/var/lib/ordersaga"}],
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
                    "volumes": [{"name": "data", "emptyDir": {}}],
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
                    },
                }
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


def webview_disruption_budget() -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _meta("ordersaga-webview", "webview"),
        "spec": {
            "minAvailable": 1,
            "selector": {"matchLabels": _group_labels("webview")},
        },
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


def workloads() -> list[dict[str, Any]]:
    """Everything but the topics, in the order to apply it."""
    objects: list[dict[str, Any]] = [settings()]
    for group in GROUPS:
        objects += [deployment(group), service(group)]
    objects += [webview_disruption_budget(), service_monitor()]
    objects += [scaled_object(g) for g in GROUPS if g.name != "webview"]
    return objects


def topics() -> list[dict[str, Any]]:
    """Every declared topic, changelogs and dead letters included."""
    declared = declared_topics(PARTITIONS, replication=REPLICATION)
    return [kafka_topic(name, shape) for name, shape in sorted(declared.items())]
