"""Imports point down the layers, and no module of ordersaga imports itself in a circle."""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest

import ordersaga

ROOT = Path(ordersaga.__file__).parent
# Bottom to top: each package may import only the ones before it (and itself).
LAYERS = (
    "schemas",
    "saga",
    "tables",
    "topology",
    "config",
    "edge",
    "observability",
    "adapters",
    "shell",
    "runtime",
)
UPPER = ("agents", "web", "ops", "cli")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Every ordersaga module ``path`` imports, TYPE_CHECKING and function-level ones too."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name.split(".")[0] == "ordersaga"}


MODULES = {module_name(path): path for path in ROOT.rglob("*.py")}


def graph() -> dict[str, set[str]]:
    """Each module and the ordersaga modules it imports."""
    # `from ordersaga.x import y` names a module only when y is one; a package's
    # __init__ importing its own modules is not a circle.
    return {
        name: {
            t for t in imports(path) if t in MODULES and t != name and not t.startswith(name + ".")
        }
        for name, path in MODULES.items()
    }


def edges() -> list[tuple[str, str]]:
    return [(source, target) for source, targets in graph().items() for target in targets]


def layer_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


@pytest.mark.parametrize("layer", LAYERS)
def test_each_lower_layer_imports_only_the_layers_below_it(layer: str) -> None:
    allowed = set(LAYERS[: LAYERS.index(layer) + 1]) | {""}
    wrong = [
        f"{source} imports {target}"
        for source, target in edges()
        if layer_of(source) == layer and layer_of(target) not in allowed
    ]
    assert wrong == []


def test_every_package_of_ordersaga_has_a_place_in_the_layers() -> None:
    packages = {p.name for p in ROOT.iterdir() if (p / "__init__.py").exists()}
    modules = {p.stem for p in ROOT.glob("*.py")} - {"__init__", "__main__"}
    assert packages | modules == set(LAYERS) | set(UPPER)


def test_no_module_imports_itself_through_others() -> None:
    try:
        tuple(graphlib.TopologicalSorter(graph()).static_order())
    except graphlib.CycleError as exc:
        pytest.fail("import circle: " + " -> ".join(exc.args[1]))


def test_the_saga_rules_import_neither_faust_nor_kafka_nor_redis() -> None:
    wrong = []
    for path in (ROOT / "saga").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            wrong += [
                f"{path.name} imports {n}"
                for n in names
                if n.split(".")[0] in {"faust", "aiokafka", "mode", "redis", "aiohttp"}
            ]
    assert wrong == []
