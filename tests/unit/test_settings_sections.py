"""The settings in sections: each field in one, each described, the saga policy's numbers once."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import ordersaga
from ordersaga.config.describe import REGENERATE, markdown, readme_block, with_readme_block
from ordersaga.config.fields import mask_url_password
from ordersaga.config.saga_policy import SagaPolicySettings
from ordersaga.config.settings import SECTIONS, Settings, env_name
from ordersaga.saga.state import Policy

README = Path(__file__).resolve().parents[2] / "README.md"
POLICY_VARIABLES = [env_name(name) for name in SagaPolicySettings.model_fields]


def test_every_setting_is_in_exactly_one_section() -> None:
    seen: list[str] = [name for _, section in SECTIONS for name in section.model_fields]
    assert sorted(seen) == sorted(Settings.model_fields)
    assert len(seen) == len(set(seen))
    assert {section for _, section in SECTIONS} <= set(Settings.__mro__)


@pytest.mark.parametrize("name", sorted(Settings.model_fields))
def test_every_setting_says_what_it_does_in_one_line(name: str) -> None:
    description = Settings.model_fields[name].description or ""
    assert description, f"{name} has no description"
    assert "\n" not in description and len(description) <= 120, description
    # What it does, not which variable it is: the table already names it.
    assert env_name(name) not in description, description


def test_the_saga_policy_defaults_are_the_policys_own(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in POLICY_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    assert Settings().saga_policy() == Policy()


def test_the_environment_changes_the_saga_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDERSAGA_STEP_TIMEOUT_S", "2.5")
    monkeypatch.setenv("ORDERSAGA_STEP_QUEUE_TIMEOUT_S", "30")
    monkeypatch.setenv("ORDERSAGA_STEP_MAX_ATTEMPTS", "5")
    monkeypatch.setenv("ORDERSAGA_COMPENSATION_STUCK_AFTER", "7")
    policy = Settings().saga_policy()
    assert (
        policy.step_timeout_s,
        policy.queue_timeout_s,
        policy.step_max_attempts,
        policy.compensation_stuck_after,
        policy.max_backoff_s,
    ) == (2.5, 30.0, 5, 7, Policy().max_backoff_s)


def test_a_section_reads_the_same_variables_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDERSAGA_STEP_MAX_ATTEMPTS", "9")
    assert SagaPolicySettings().step_max_attempts == Settings().step_max_attempts == 9


def test_the_readme_settings_table_is_generated_from_the_fields() -> None:
    block = readme_block(README.read_text(encoding="utf-8"))
    assert block is not None, (
        f"README.md lost its settings markers; add them and run `{REGENERATE}`"
    )
    assert block == markdown().strip("\n"), (
        f"README.md's settings tables differ from the settings' fields: run `{REGENERATE}`"
    )


def test_the_readme_block_is_replaced_between_its_markers_only() -> None:
    text = "intro\n<!-- settings:begin -->\nold\n<!-- settings:end -->\nafter\n"
    replaced = with_readme_block(text, "new table")
    assert replaced == "intro\n<!-- settings:begin -->\nnew table\n<!-- settings:end -->\nafter\n"
    assert readme_block(replaced) == "new table"
    with pytest.raises(ValueError, match="settings:begin"):
        with_readme_block("no markers", "table")


def test_only_the_password_of_a_url_is_masked() -> None:
    assert mask_url_password("redis://:pw@h:6379/0") == "redis://:****@h:6379/0"
    assert mask_url_password("redis://user:pw@h:6379/0") == "redis://user:****@h:6379/0"
    assert mask_url_password("redis://h:6379/0") == "redis://h:6379/0"


def test_only_the_config_package_builds_settings() -> None:
    # Everything else asks get_settings(), so a process reads its settings once.
    root = Path(ordersaga.__file__).parent
    builders = []
    for path in root.rglob("*.py"):
        if path.is_relative_to(root / "config"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Settings":
                builders.append(f"{path.relative_to(root)}:{node.lineno}")
    assert builders == []
