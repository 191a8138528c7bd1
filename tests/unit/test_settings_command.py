"""`ordersaga settings`: the effective configuration by section, secrets never shown."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from ordersaga.config.describe import as_json, as_text
from ordersaga.config.settings import Settings

SECRET = "s3cret-" + "k" * 40
REDIS_PASSWORD = "hunter2-redis-pw"


def ordersaga_settings(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ORDERSAGA_")}
    return subprocess.run(
        [sys.executable, "-m", "ordersaga.cli", "settings", *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_command_masks_secrets_read_from_the_environment() -> None:
    env = {
        "ORDERSAGA_AUTH_SECRET": SECRET,
        "REDIS_URL": f"redis://:{REDIS_PASSWORD}@cache:6380/2",
        "ORDERSAGA_PARTITIONS": "7",
    }
    text = ordersaga_settings(**env)
    shown = ordersaga_settings("--json", **env)
    for done in (text, shown):
        assert done.returncode == 0, done.stderr
        assert SECRET not in done.stdout and REDIS_PASSWORD not in done.stdout
    assert "[Auth]" in text.stdout and "[Broker]" in text.stdout
    doc = json.loads(shown.stdout)
    assert doc["Auth"]["ORDERSAGA_AUTH_SECRET"] == {
        "value": "****",
        "source": "environment",
        "masked": True,
    }
    assert doc["Redis"]["REDIS_URL"]["value"] == "redis://:****@cache:6380/2"
    assert doc["Broker"]["ORDERSAGA_PARTITIONS"] == {
        "value": 7,
        "source": "environment",
        "masked": False,
    }
    assert doc["Broker"]["ORDERSAGA_REPLICATION_FACTOR"]["source"] == "default"


def test_every_setting_is_shown_once() -> None:
    doc = json.loads(as_json(Settings(auth_secret=SECRET)))
    variables = [v for section in doc.values() for v in section]
    assert len(variables) == len(set(variables)) == len(Settings.model_fields)
    assert SECRET not in as_text(Settings(auth_secret=SECRET))


def test_invalid_settings_are_reported_not_shown() -> None:
    done = ordersaga_settings(ORDERSAGA_AUTH_SECRET="short")
    assert done.returncode == 2
    assert "at least 32 characters" in done.stderr and "short" not in done.stdout
