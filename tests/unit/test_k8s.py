"""deploy/k8s: generated from the groups and topic declarations, probes and secrets as meant.

The base and the production overlay are also checked against the schemas of
Kubernetes, Strimzi, KEDA and the Prometheus Operator (``needs_k8s_tools``: the
npm models ``make`` installs, and kustomize to render the overlay).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from ordersaga.ops.manifests import (
    PARTITIONS,
    REPLICATION,
    USES_REDIS,
    base,
    kustomization,
    topics,
    users,
    workloads,
)
from ordersaga.runtime.topic_admin import declared_topics
from ordersaga.shell.groups import GROUPS
from ordersaga.topology import TOPOLOGY
from ordersaga.topology.acls import group_acls

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
ALERTS = yaml.safe_load((ROOT / "deploy" / "alerts.yml").read_text())


def committed(name: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all((K8S / "base" / name).read_text()) if doc]


def test_the_committed_manifests_are_what_the_code_generates() -> None:
    # `ordersaga manifests` writes them (into deploy/k8s/base).
    files = base(ALERTS)
    for name, objects in files.items():
        assert committed(name) == objects, name
    assert committed("kustomization.yaml") == [kustomization([*files])]


def test_each_group_is_a_kafka_user_with_the_acls_of_its_declaration() -> None:
    found = {u["metadata"]["name"]: u["spec"] for u in users()}
    assert set(found) == {g.app_id for g in GROUPS}
    for group in GROUPS:
        spec = found[group.app_id]
        assert spec["authentication"] == {"type": "scram-sha-512"}
        granted = {
            (rule["resource"]["type"], rule["resource"]["name"], op.upper())
            for rule in spec["authorization"]["acls"]
            for op in rule["operations"]
        }
        derived = {
            (a.resource.name.lower(), a.name, a.operation.name)
            for a in group_acls(TOPOLOGY, group.name)
        }
        assert granted == derived, group.name


def test_each_worker_logs_in_as_its_own_user_over_tls() -> None:
    for name, deployment in by_kind("Deployment").items():
        pod = deployment["spec"]["template"]["spec"]
        [container] = pod["containers"]
        env = {e["name"]: e for e in container["env"]}
        assert env["ORDERSAGA_KAFKA_SASL_USERNAME"]["value"] == name
        assert env["ORDERSAGA_KAFKA_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
            "name": name,
            "key": "password",
        }
        assert {"name": "kafka-ca", "secret": {"secretName": "ordersaga-cluster-ca-cert"}} in pod[
            "volumes"
        ]
    data = by_kind("ConfigMap")["ordersaga-settings"]["data"]
    assert data["ORDERSAGA_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert data["KAFKA_BROKER"].endswith(":9093")


def test_the_prometheus_rule_is_deploy_alerts_yml() -> None:
    [rule] = [o for o in committed("monitoring.yaml") if o["kind"] == "PrometheusRule"]
    assert rule["spec"]["groups"] == ALERTS["groups"]


def k8s_tool(env: str, *candidates: Path) -> str:
    for path in (os.environ.get(env), *map(str, candidates)):
        if path and Path(path).exists():
            return path
    raise AssertionError(f"no {candidates[0].name}: `make test` installs it ({env} names one)")


def validate(objects: list[dict[str, Any]]) -> subprocess.CompletedProcess[str]:
    """The objects checked by deploy/checks (the schemas of their kinds)."""
    k8s_tool("ORDERSAGA_K8S_MODELS", ROOT / "deploy" / "checks" / "node_modules")
    return subprocess.run(
        ["node", str(ROOT / "deploy" / "checks" / "validate.mjs")],
        input=json.dumps(objects),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.needs_k8s_tools
def test_the_base_passes_the_schemas_of_its_kinds() -> None:
    objects = [o for files in base(ALERTS).values() for o in files]
    done = validate(objects)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{len(objects)} objects, 0 problems" in done.stdout


@pytest.mark.needs_k8s_tools
def test_the_validator_refuses_what_the_schemas_refuse() -> None:
    [user, *_] = users()
    user["spec"]["authentication"]["type"] = "scram-sha-1"
    [deployment] = [o for o in workloads() if o["kind"] == "Deployment"][:1]
    deployment["spec"]["replicas"] = "two"
    done = validate([user, deployment])
    assert done.returncode == 1
    assert "KafkaUser/ordersaga-webview: data/spec/authentication/type" in done.stdout
    assert "Deployment/ordersaga-webview: data/spec/replicas must be integer" in done.stdout


@pytest.mark.needs_k8s_tools
def test_the_production_overlay_renders_and_passes_the_schemas() -> None:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    kustomize = k8s_tool(
        "ORDERSAGA_KUSTOMIZE", cache / "ordersaga" / "kustomize-v5.7.1" / "kustomize"
    )
    rendered = subprocess.run(
        [kustomize, "build", str(K8S / "overlays" / "production")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert rendered.returncode == 0, rendered.stderr
    objects = [o for o in yaml.safe_load_all(rendered.stdout) if o]
    done = validate(objects)
    assert done.returncode == 0, done.stdout + done.stderr
    deployments = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Deployment"}
    assert deployments["ordersaga-webview"]["spec"]["replicas"] == 3
    for deployment in deployments.values():
        [container] = deployment["spec"]["template"]["spec"]["containers"]
        assert container["image"] == "registry.example.com/ordersaga:1.0.0"
        assert container["resources"]["limits"]["memory"] == "2Gi"
    assert len(objects) == sum(len(o) for o in base(ALERTS).values())


def by_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in workloads() if o["kind"] == kind}


def test_each_group_runs_its_module_on_its_port_probed_on_live_and_ready() -> None:
    deployments = by_kind("Deployment")
    assert set(deployments) == {f"ordersaga-{g.name}" for g in GROUPS}
    for group in GROUPS:
        [container] = deployments[f"ordersaga-{group.name}"]["spec"]["template"]["spec"][
            "containers"
        ]
        assert container["command"][:3] == ["faust", "-A", group.module]
        port = group.web_port(6066)
        assert container["ports"] == [{"name": "http", "containerPort": port}]
        assert container["livenessProbe"]["httpGet"]["path"] == "/live"
        assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
        assert container["securityContext"]["runAsNonRoot"] is True


def test_only_the_web_view_gets_the_auth_secret_and_redis_goes_to_its_users() -> None:
    for name, deployment in by_kind("Deployment").items():
        [container] = deployment["spec"]["template"]["spec"]["containers"]
        secrets = {e["name"] for e in container["env"]}
        group = name.removeprefix("ordersaga-")
        assert ("ORDERSAGA_AUTH_SECRET" in secrets) == (group == "webview"), name
        assert ("REDIS_URL" in secrets) == (group in USES_REDIS), name


def test_lag_scaling_stops_at_one_worker_per_partition() -> None:
    scaled = by_kind("ScaledObject")
    assert set(scaled) == {f"ordersaga-{g.name}" for g in GROUPS if g.name != "webview"}
    for obj in scaled.values():
        assert obj["spec"]["maxReplicaCount"] == PARTITIONS
        [trigger] = obj["spec"]["triggers"]
        assert (
            trigger["metadata"]["consumerGroup"]
            == f"ordersaga-{obj['metadata']['labels']['app.kubernetes.io/name']}"
        )


def test_the_topics_are_the_declared_ones() -> None:
    declared = declared_topics(PARTITIONS, replication=REPLICATION)
    found = {t["spec"]["topicName"]: t["spec"] for t in topics()}
    assert set(found) == set(declared)
    for name, shape in declared.items():
        assert found[name]["partitions"] == shape.partitions
        assert found[name]["replicas"] == shape.replication
        assert found[name]["config"] == dict(shape.configs)
    names = [t["metadata"]["name"] for t in topics()]
    assert len(set(names)) == len(names)


def test_each_sealing_key_reaches_the_web_view_and_its_reader_only() -> None:
    readers = {
        "ORDERSAGA_PAYMENT_TOKEN_KEYS": {"webview", "payments"},
        "ORDERSAGA_ADDRESS_KEYS": {"webview", "shipping"},
    }
    for name, deployment in by_kind("Deployment").items():
        [container] = deployment["spec"]["template"]["spec"]["containers"]
        given = {e["name"] for e in container["env"]}
        for key, groups in readers.items():
            assert (key in given) == (name.removeprefix("ordersaga-") in groups), (name, key)


def test_every_group_has_a_disruption_budget() -> None:
    budgets = by_kind("PodDisruptionBudget")
    assert set(budgets) == {f"ordersaga-{g.name}" for g in GROUPS}
    assert budgets["ordersaga-webview"]["spec"]["minAvailable"] == 1
    assert budgets["ordersaga-orders"]["spec"]["maxUnavailable"] == 1
