"""The operators' page in a real headless browser (Debian's chromium, through selenium)."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from ordersaga.shell.groups import GROUPS
from tests.integration.conftest import System
from tests.integration.support import final, new_sku, order_body, place

pytestmark = pytest.mark.integration
# The picture in docs/observability.md; a run rewrites it only when asked
# (UPDATE_SCREENSHOT=1), so that running the tests leaves the working tree clean.
DOCS_SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "dashboard.png"


def browser_binaries() -> tuple[str, str]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not chromium or not driver:
        raise AssertionError("no chromium/chromedriver: `make test` installs Debian's")
    return chromium, driver


@contextmanager
def open_browser() -> Iterator[webdriver.Chrome]:
    """Headless chromium through its chromedriver, quit on the way out."""
    chromium, driver = browser_binaries()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--window-size=1400,1000"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    chrome = webdriver.Chrome(service=Service(driver), options=options)
    try:
        yield chrome
    finally:
        chrome.quit()


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    with open_browser() as chrome:
        yield chrome


def test_the_page_shows_live_services_and_an_order_reaching_completed(
    system: System, client: httpx.Client, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    # The page is one of the web view's own, with a policy that forbids fetching elsewhere
    page = client.get("/dashboard")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.headers["Content-Security-Policy"].startswith("default-src 'self'")
    assert "http://" not in page.text and "https://" not in page.text

    browser.get(f"{system.base_url}/dashboard")
    wait = WebDriverWait(browser, 30, poll_frequency=0.25)

    def rows(driver: webdriver.Chrome, table: str) -> list[list[str]]:
        # Read in one script: the page re-renders its tables every second.
        return list(
            driver.execute_script(
                "return [...document.querySelectorAll(arguments[0])]"
                ".map(r => [...r.cells].map(c => c.textContent))",
                f"#{table} tbody tr",
            )
        )

    def up_groups(driver: webdriver.Chrome) -> set[str]:
        return {row[0] for row in rows(driver, "services") if row[2] == "up"}

    wait.until(lambda d: up_groups(d) >= {g.name for g in GROUPS})

    # An order placed now appears on the page and reaches COMPLETED there
    sku = new_sku(client, 5, 250)
    order_id = place(client, order_body([(sku, 1)]))

    def status_on_page(driver: webdriver.Chrome) -> str | None:
        for row in rows(driver, "recent"):
            if row and row[0] == order_id:
                return row[2]
        return None

    wait.until(lambda d: status_on_page(d) is not None)
    assert final(client, order_id)["status"] == "COMPLETED"
    wait.until(lambda d: status_on_page(d) == "COMPLETED")

    # Looking the order up shows its history
    box = browser.find_element(By.ID, "lookup-id")
    box.send_keys(order_id)
    browser.find_element(By.CSS_SELECTOR, "#lookup button").click()
    wait.until(lambda d: "OrderCompleted" in d.find_element(By.ID, "order-history").text)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#latency tbody tr"))
    time.sleep(1.5)  # one more refresh, so the screenshot shows settled figures
    screenshot = DOCS_SCREENSHOT if os.environ.get("UPDATE_SCREENSHOT") else tmp_path / "page.png"
    assert browser.save_screenshot(str(screenshot))

    # And the page logged no error
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == [], errors


def test_the_api_page_renders_every_operation_under_its_policy(
    system: System, client: httpx.Client, browser: webdriver.Chrome
) -> None:
    document = client.get("/openapi.json").json()
    operations = sum(len(item) for item in document["paths"].values())
    page = client.get("/docs")
    assert page.headers["Content-Security-Policy"].startswith("default-src 'self'")
    assert "http://" not in page.text and "https://" not in page.text

    browser.get(f"{system.base_url}/docs")
    wait = WebDriverWait(browser, 30, poll_frequency=0.25)
    # Swagger UI read the 3.1 document from this web view and shows every operation.
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".opblock")) == operations)
    assert "OAS 3.1" in browser.find_element(By.CSS_SELECTOR, ".info .title").text
    # Nothing was refused by the policy, and nothing else went wrong.
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == [], errors
