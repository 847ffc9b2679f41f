"""The HTML report opens in headless Chromium with no console error and no network request.

Needs Debian's chromium and chromium-driver (/usr/bin/chromium, /usr/bin/chromedriver; elsewhere
set LIFELOOP_CHROMIUM and LIFELOOP_CHROMEDRIVER) and selenium; skips without them unless
LIFELOOP_REQUIRE_BROWSER=1 (CI), where it fails instead.
LIFELOOP_SCREENSHOTS=1 saves the page, full height, to docs/images/report.png; LIFELOOP_REPORT_FILE
opens that report instead of the one rendered from tests/fixtures/review_sample.json.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
CHROMIUM = os.environ.get("LIFELOOP_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("LIFELOOP_CHROMEDRIVER", "/usr/bin/chromedriver")
SCREENSHOT = ROOT / "docs" / "images" / "report.png"


def _unavailable(reason: str) -> None:
    if os.environ.get("LIFELOOP_REQUIRE_BROWSER") == "1":
        pytest.fail(f"LIFELOOP_REQUIRE_BROWSER=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium for the module, with browser and network logs; Selenium Manager stays offline."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _unavailable("selenium is not installed (pip install 'selenium>=4.20,<5')")
    for path in (CHROMIUM, CHROMEDRIVER):
        if not Path(path).is_file():
            _unavailable(f"{path} is missing (apt-get install chromium chromium-driver)")
    os.environ["SE_OFFLINE"] = "true"  # never let Selenium Manager download a driver
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--hide-scrollbars"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_window_size(1400, 1000)
    yield driver
    driver.quit()


def open_report(driver, path: Path) -> tuple[list[dict], list[str]]:
    """Load the file; return its SEVERE console entries and every URL the page asked for."""
    driver.get_log("performance")  # drop what earlier pages logged
    driver.get_log("browser")
    driver.get(path.resolve().as_uri())
    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return errors, urls


def sample_report(tmp_path: Path) -> Path:
    """The report of the fixture review with hand-made KPIs and coverage (every section filled)."""
    from lifeloop.review.report import render_report
    from tests.unit.test_report import coverage, kpis, review

    path = tmp_path / "report.html"
    path.write_text(render_report(bank_name="Demo Retail Bank", as_of="2025-03-20", review=review(), kpis=kpis(),
                                  coverage=coverage()), encoding="utf-8")
    return path


def assert_clean_and_visible(driver, path: Path) -> None:
    from selenium.webdriver.common.by import By

    errors, urls = open_report(driver, path)
    assert errors == []
    assert urls and all(u == path.resolve().as_uri() or u.startswith("data:") for u in urls), urls
    assert driver.find_element(By.ID, "board").is_displayed()
    for section in ("flows", "kpis", "coverage"):
        assert driver.find_element(By.ID, section).is_displayed()
    return None


def test_the_sample_report_opens_without_errors_or_requests_and_shows_board_and_heat_map(browser, tmp_path):
    from selenium.webdriver.common.by import By

    path = (Path(os.environ["LIFELOOP_REPORT_FILE"]) if os.environ.get("LIFELOOP_REPORT_FILE")
            else sample_report(tmp_path))
    assert_clean_and_visible(browser, path)
    if not os.environ.get("LIFELOOP_REPORT_FILE"):
        board = browser.find_element(By.ID, "strategy-board")
        assert board.is_displayed() and len(board.find_elements(By.CSS_SELECTOR, "tbody tr[data-strategy]")) == 3
        heat = browser.find_element(By.CSS_SELECTOR, "svg.heatmap.coverage")
        assert heat.is_displayed() and heat.size["width"] > 300 and heat.size["height"] > 150
        assert browser.find_element(By.CSS_SELECTOR, "svg.heatmap.transitions").is_displayed()
        # the board's text is really drawn (fonts present, nothing collapsed)
        assert "到期续作" in board.text and "1,200,000" in board.text
    if os.environ.get("LIFELOOP_SCREENSHOTS") == "1":
        height = browser.execute_script("return document.documentElement.scrollHeight")
        browser.set_window_size(1400, height)
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        assert browser.save_screenshot(str(SCREENSHOT))
        browser.set_window_size(1400, 1000)


def test_the_report_of_a_simulated_workspace_opens_cleanly(browser, tmp_path):
    from rich.console import Console

    from lifeloop.cli.report import report_command
    from lifeloop.context import Context

    with Context.init(tmp_path / "bank") as ctx:
        sim = ctx.simulate(tmp_path / "bank" / "extracts", customers=300, days=200, seed=3)
        ctx.ingest(tmp_path / "bank" / "extracts", as_of=sim.as_of)
        ctx.run(sim.as_of)
        path = report_command(ctx, Console(file=open(os.devnull, "w")), tmp_path / "report.html", None, None)
    from selenium.webdriver.common.by import By

    assert_clean_and_visible(browser, path)
    assert browser.find_element(By.CSS_SELECTOR, "svg.heatmap.coverage").is_displayed()
    assert browser.find_element(By.CSS_SELECTOR, "svg.stack").is_displayed()
