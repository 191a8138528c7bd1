"""deploy/alerts.yml: valid rules for promtool, each alert firing on the series it watches."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def promtool() -> str:
    """The promtool `make` unpacks into .tools, or one on PATH (ORDERSAGA_PROMTOOL names one)."""
    for candidate in (
        os.environ.get("ORDERSAGA_PROMTOOL"),
        str(ROOT / ".tools/prometheus/usr/bin/promtool"),
        shutil.which("promtool"),
    ):
        if candidate and Path(candidate).is_file():
            return candidate
    raise AssertionError("no promtool: `make test` installs it (Debian's prometheus package)")


def run(*args: str) -> str:
    done = subprocess.run([promtool(), *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.mark.needs_promtool
def test_the_alert_rules_pass_promtools_check() -> None:
    assert "SUCCESS" in run("check", "rules", str(DEPLOY / "alerts.yml"))


@pytest.mark.needs_promtool
def test_each_alert_fires_on_the_series_it_watches() -> None:
    assert "SUCCESS" in run("test", "rules", str(DEPLOY / "alerts.test.yml"))


def test_every_alert_is_tested_and_compose_prometheus_loads_the_rules() -> None:
    rules = yaml.safe_load((DEPLOY / "alerts.yml").read_text())
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"]}
    tests = yaml.safe_load((DEPLOY / "alerts.test.yml").read_text())
    tested = {t["alertname"] for case in tests["tests"] for t in case["alert_rule_test"]}
    assert alerts - tested <= {"WebViewDown"}, alerts - tested
    config = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    assert config["rule_files"] == ["/etc/prometheus/alerts.yml"]
    compose = (ROOT / "docker-compose.yml").read_text()
    assert "./deploy/alerts.yml:/etc/prometheus/alerts.yml:ro" in compose


def test_every_alert_names_its_runbook_section() -> None:
    rules = yaml.safe_load((ROOT / "deploy" / "alerts.yml").read_text())
    headings = {
        re.sub(r"[^a-z0-9 -]", "", line[3:].strip().lower()).replace(" ", "-")
        for line in (ROOT / "docs" / "runbooks.md").read_text().splitlines()
        if line.startswith("## ")
    }
    for rule in rules["groups"][0]["rules"]:
        path, _, anchor = rule["annotations"]["runbook_url"].partition("#")
        assert path == "docs/runbooks.md", rule["alert"]
        assert anchor in headings, f"{rule['alert']}: no section #{anchor} in docs/runbooks.md"
