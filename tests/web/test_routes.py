"""The route table: each view is served on its path, answering from the webview's desk."""

from __future__ import annotations

from ordersaga.agents import webview
from ordersaga.web.routes import ROUTES


def test_every_view_is_served_on_its_path_from_the_webview_desk() -> None:
    served = webview.app.web.views
    for path, view in ROUTES:
        instance = served[path]
        assert isinstance(instance, view)
        assert type(instance).__name__ == view.__name__
        assert instance.desk is webview.desk
