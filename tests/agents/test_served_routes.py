"""Every route a worker serves is one docs/http-api.md lists: nothing internal is on the network."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.harness import AGENT_MODULES

ROUTES_DOC = Path(__file__).resolve().parents[2] / "docs" / "http-api.md"
WORKER_ROUTES = {("GET", "/health"), ("GET", "/live"), ("GET", "/ready"), ("GET", "/metrics")}


def documented_webview_routes() -> set[tuple[str, str]]:
    text = ROUTES_DOC.read_text()
    block = text.split("<!-- served-routes: the web view -->")[1].split("<!-- /served-routes -->")[
        0
    ]
    return {(m, p) for m, p in re.findall(r"^- `([A-Z]+) (\S+)`$", block, re.MULTILINE)}


def served(module: Any) -> set[tuple[str, str]]:
    web = module.app.web
    routes = {
        (route.method, route.resource.canonical)
        for route in web.web_app.router.routes()
        if route.method != "HEAD"
    }
    return routes


@pytest.mark.parametrize("module", AGENT_MODULES, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_a_worker_serves_only_documented_routes(module: Any) -> None:
    expected = documented_webview_routes() if module.__name__.endswith("webview") else WORKER_ROUTES
    assert served(module) == expected
    # And Faust adds none of its own pages when the web server starts.
    assert module.app.web.blueprints._enabled == []


def test_head_is_served_only_where_get_is() -> None:
    for module in AGENT_MODULES:
        routes = module.app.web.web_app.router.routes()
        heads = {r.resource.canonical for r in routes if r.method == "HEAD"}
        gets = {r.resource.canonical for r in routes if r.method == "GET"}
        assert heads == gets, module.__name__


def test_every_table_has_its_changelog_created_up_front() -> None:
    from ordersaga.shell.topics import CHANGELOG_TOPICS

    declared = {
        table.changelog_topic.get_topic_name()
        for module in AGENT_MODULES
        for table in module.app.tables.values()
    }
    assert declared == set(CHANGELOG_TOPICS)
