"""How `ordersaga run` hands its workers their settings: broker profiles and variables.

Each worker reads its settings back from the environment through
``get_settings``, like any process would; this is what puts them there.
"""

from __future__ import annotations

from typing import Any

from pydantic import SecretStr

from ordersaga.config.broker import BROKER_PROFILES
from ordersaga.config.settings import Settings, env_name

__all__ = ["BROKER_PROFILES", "SETTINGS_ENV", "as_env", "env_name", "with_profile"]

SETTINGS_ENV: frozenset[str] = frozenset(env_name(n) for n in Settings.model_fields)


def with_profile(settings: Settings, profile: str, **fixed: Any) -> Settings:
    """``settings`` with a broker profile's values where the user set none, then ``fixed``."""
    preset = {
        k: v for k, v in BROKER_PROFILES[profile].items() if k not in settings.model_fields_set
    }
    return settings.model_copy(update={**preset, **fixed})


def as_env(settings: Settings) -> dict[str, str]:
    """Every set or non-default field as the environment variables it is read from.

    This is how the runtime hands its workers their settings: each ``faust worker``
    reads them back through ``get_settings`` like any process would.
    """
    env: dict[str, str] = {}
    for name, field in Settings.model_fields.items():
        value = getattr(settings, name)
        if value is None or (name not in settings.model_fields_set and value == field.default):
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        env[env_name(name)] = str(value).lower() if isinstance(value, bool) else str(value)
    return env
