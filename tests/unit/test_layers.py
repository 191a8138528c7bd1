"""Imports point down the layers: the lower packages never import the upper ones."""

from __future__ import annotations

import ast
from pathlib import Path

import ordersaga

ROOT = Path(ordersaga.__file__).parent
LOWER = ("schemas", "saga", "tables", "app")
UPPER = ("ordersaga.agents", "ordersaga.web", "ordersaga.ops", "ordersaga.cli")
# Within the lower layers each may import only the ones listed before it.
ORDER = {"schemas": (), "saga": ("schemas",), "tables": ("schemas", "saga")}


def imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_no_module_of_app_saga_schemas_or_tables_imports_agents_web_ops_or_the_cli() -> None:
    wrong = [
        f"{path.relative_to(ROOT)} imports {name}"
        for layer in LOWER
        for path in (ROOT / layer).rglob("*.py")
        for name in imports(path)
        if name.startswith(UPPER)
    ]
    assert wrong == []


def test_schemas_saga_and_tables_import_only_the_layers_below_them() -> None:
    wrong = []
    for layer, allowed in ORDER.items():
        for path in (ROOT / layer).rglob("*.py"):
            for name in imports(path):
                parts = name.split(".")
                if parts[0] != "ordersaga" or len(parts) < 2 or parts[1] == layer:
                    continue
                if parts[1] not in allowed:
                    wrong.append(f"{path.relative_to(ROOT)} imports {name}")
    assert wrong == []


def test_the_saga_rules_import_neither_faust_nor_kafka() -> None:
    wrong = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in (ROOT / "saga").rglob("*.py")
        for name in imports(path)
        if name.split(".")[0] in {"faust", "aiokafka", "mode", "redis"}
    ]
    assert wrong == []
