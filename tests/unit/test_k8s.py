"""deploy/k8s: generated from the groups and topic declarations, probes and secrets as meant."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ordersaga.ops.manifests import PARTITIONS, REPLICATION, USES_REDIS, topics, workloads
from ordersaga.runtime.topic_admin import declared_topics
from ordersaga.shell.groups import GROUPS

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"


def committed(name: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all((K8S / name).read_text()) if doc]


def test_the_committed_manifests_are_what_the_code_generates() -> None:
    # `ordersaga manifests --out deploy/k8s` writes them.
    assert committed("workloads.yaml") == workloads()
    assert committed("topics.yaml") == topics()


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
