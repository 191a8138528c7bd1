"""The settings shown to people: by section, secrets masked, and as the README's table.

``ordersaga settings`` prints :func:`effective` (text or JSON); the README's
``## Settings`` block is :func:`markdown` between :data:`README_BEGIN` and
:data:`README_END`, rewritten by ``ordersaga settings --markdown --update-readme``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Final, Literal

from pydantic import SecretStr
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings

from ordersaga.config.fields import masked, secrecy
from ordersaga.config.settings import SECTIONS, Settings, env_name

README_BEGIN: Final = "<!-- settings:begin -->"
README_END: Final = "<!-- settings:end -->"
REGENERATE: Final = "ordersaga settings --markdown --update-readme README.md"

Source = Literal["default", "environment"]
Shown = str | int | float | bool | None


@dataclass(frozen=True)
class Entry:
    """One setting as shown: its variable, its value (masked if secret), where it came from."""

    variable: str
    value: Shown
    source: Source
    masked: bool


def section_fields(section: type[BaseSettings]) -> dict[str, FieldInfo]:
    """The fields a section declares (each section inherits none from another)."""
    return dict(section.model_fields)


def _shown(field: FieldInfo, value: object) -> Shown:
    value = masked(field, value)
    if isinstance(value, SecretStr):  # one that escaped its mark still prints as stars
        return str(value)
    return value if isinstance(value, str | int | float | bool) or value is None else str(value)


def effective(settings: Settings) -> dict[str, list[Entry]]:
    """Every setting's variable and value by section title; secret values masked.

    A field is "environment" when it was read from a variable (or passed when
    building ``settings``), else "default".
    """
    shown: dict[str, list[Entry]] = {}
    for title, section in SECTIONS:
        shown[title] = [
            Entry(
                variable=env_name(name),
                value=_shown(field, getattr(settings, name)),
                source="environment" if name in settings.model_fields_set else "default",
                masked=secrecy(field) is not None,
            )
            for name, field in section_fields(section).items()
        ]
    return shown


def as_text(settings: Settings) -> str:
    """:func:`effective` for a terminal: one section after another, one line a setting."""
    shown = effective(settings)
    width = max(len(e.variable) for entries in shown.values() for e in entries)
    # Values line up too, unless one is long (a PEM key, a URL list).
    value_width = min(max(len(_plain(e.value)) for es in shown.values() for e in es), 24)
    lines: list[str] = []
    for title, entries in shown.items():
        lines.append(f"[{title}]")
        for e in entries:
            value = _plain(e.value).replace("\n", "\\n")  # a PEM key stays on its line
            lines.append(f"  {e.variable:<{width}}  {value:<{value_width}}  ({e.source})")
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


def as_json(settings: Settings) -> str:
    """:func:`effective` as JSON: {section: {variable: {value, source, masked}}}."""
    doc = {
        title: {
            e.variable: {k: v for k, v in asdict(e).items() if k != "variable"} for e in entries
        }
        for title, entries in effective(settings).items()
    }
    return json.dumps(doc, indent=2)


def _plain(value: Shown) -> str:
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value) if value != "" else '""'


def markdown() -> str:
    """The README's settings table: a row per variable (default, description) under a
    row per section, one table so the README stays short enough to read."""
    parts = ["| Variable | Default | Description |", "|---|---|---|"]
    for title, section in SECTIONS:
        summary = (section.__doc__ or "").strip().splitlines()[0].replace("|", "\\|")
        parts.append(f"| **{title}** | | *{summary}* |")
        for name, field in section_fields(section).items():
            shown = _shown(field, field.default)
            default = "unset" if shown is None else f"`{_plain(shown)}`"
            description = (field.description or "").replace("|", "\\|")
            parts.append(f"| `{env_name(name)}` | {default} | {description} |")
    return "\n".join(parts) + "\n"


def readme_block(text: str) -> str | None:
    """What stands between the README's settings markers (None: no markers)."""
    start, end = text.find(README_BEGIN), text.find(README_END)
    if start < 0 or end < start:
        return None
    return text[start + len(README_BEGIN) : end].strip("\n")


def with_readme_block(text: str, block: str) -> str:
    """``text`` with its settings block replaced by ``block``."""
    start, end = text.find(README_BEGIN), text.find(README_END)
    if start < 0 or end < start:
        raise ValueError(f"no {README_BEGIN} ... {README_END} block to fill")
    return f"{text[: start + len(README_BEGIN)]}\n{block.strip()}\n{text[end:]}"
