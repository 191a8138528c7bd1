"""One concern per module: the modules issue 20 split stay split.

Read from the source (no import), like test_layers: what each module defines
and imports, not how it behaves (the rules' and stores' own tests do that).
"""

from __future__ import annotations

import ast
from pathlib import Path

import ordersaga

ROOT = Path(ordersaga.__file__).parent


def tree(module: str) -> ast.Module:
    return ast.parse((ROOT / module).read_text())


def top_level_names(module: str) -> set[str]:
    """Functions, classes and names assigned anywhere in ``module``."""
    names: set[str] = set()
    for node in ast.walk(tree(module)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names


def imported_modules(module: str) -> set[str]:
    return {
        node.module
        for node in ast.walk(tree(module))
        if isinstance(node, ast.ImportFrom) and node.module
    }


def test_the_two_concern_modules_are_gone() -> None:
    assert not (ROOT / "saga" / "inventory.py").exists()
    assert not (ROOT / "web" / "store.py").exists()


def test_per_sku_holds_and_the_per_order_gather_are_apart() -> None:
    gather = {"OrderStockRecord", "GatherOp", "GatherStep", "begin_stock_command"}
    gather |= {"collect_sku_result", "direct_reply", "merge_lines", "skus_to_forget"}
    per_sku = {"Hold", "SkuLevels", "SkuTotals", "apply_sku_command", "restock"}
    per_sku |= {"forget_holds", "levels_of", "totals_of", "low_stock_crossing"}
    assert top_level_names("saga/sku_holds.py") & gather == set()
    assert top_level_names("saga/order_stock.py") & per_sku == set()
    # The gather may read a SKU's answers; a SKU never knows of orders' gathers.
    assert "ordersaga.saga.order_stock" not in imported_modules("saga/sku_holds.py")


def test_the_read_model_and_the_intake_are_apart() -> None:
    intake = {"remember_accepted", "accepted_ids", "claim_key", "await_confirmation"}
    intake |= {"claim_unconfirmed", "drop_unconfirmed", "unconfirmed_ids", "idempotency_key"}
    views = {"project_order", "project_stock", "order", "stock_page", "claim_stale_views"}
    assert top_level_names("web/read_model.py") & intake == set()
    assert top_level_names("web/intake.py") & views == set()
    assert "ordersaga.web.intake" not in imported_modules("web/read_model.py")
    assert "ordersaga.web.read_model" not in imported_modules("web/intake.py")


def test_the_payment_rules_hold_no_gateway_simulation() -> None:
    simulation = {"simulate_gateway", "DECLINE_TOKEN", "NO_REPLY_TOKEN", "ERROR_TOKEN"}
    assert top_level_names("saga/payments.py") & simulation == set()
    strings = [
        node.value
        for node in ast.walk(tree("saga/payments.py"))
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    ]
    assert [s for s in strings if "tok_" in s] == []
    assert "simulate_gateway" in top_level_names("adapters/gateway.py")


def test_the_repair_loops_are_defined_in_one_module_only() -> None:
    loops = {"redrive_unconfirmed_orders", "refresh_stale_order_views", "republish_changed_stock"}
    where = {
        str(path.relative_to(ROOT)): loops & top_level_names(str(path.relative_to(ROOT)))
        for path in ROOT.rglob("*.py")
    }
    assert {module: found for module, found in where.items() if found} == {
        "agents/repairs.py": loops
    }
