"""The web app in a real headless Chromium, in zh-CN and in English: a leader signs in, opens the board and drills
down to a strategy's breakdowns; an RM, on a phone-sized screen, opens the worklist, the customer, records a
refusal on the marketing form — and the row is in the operations database. Every page: 0 console errors and
0 requests to anything but the app's own origin.

Chromium, chromedriver and selenium as tests/e2e/test_report_browser.py finds them (skipped without them
unless LIFELOOP_REQUIRE_BROWSER=1). The server is uvicorn on 127.0.0.1, as `lifeloop serve` runs it; SQLite.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from lifeloop.api import create_app
from lifeloop.context import Context
from lifeloop.store.ops import web_sessions
from lifeloop.store.ops.models import Feedback, StrategyVersion, Task, WebSession
from tests.e2e.test_report_browser import browser  # noqa: F401 - fixture (skips without Chromium)
from tests.oidc_stub import CLIENT_SECRET, SECRET_ENV, StubProvider, configure
from tests.web_world import PASSWORD, Clock, D, cheap_argon2, fixture_review, local, make_bank, system

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The test bank served by uvicorn on a free loopback port: (origin, workspace, clock)."""
    import uvicorn

    mp = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("web")
    mp.setenv("LIFELOOP_DATABASE_URL", f"sqlite:///{root / 'ops.db'}")
    mp.setattr(web_sessions, "_hasher", cheap_argon2)
    clock = Clock(local(D, 18))
    make_bank(root / "ws", clock)
    with system(root / "ws", clock) as ctx:   # the day's snapshots: the editor counts audiences on them
        ctx.run(D, steps=["features", "lifecycle", "segments"])
    # the bank's identity provider: a stub on another loopback port (single sign-on, the last test)
    mp.setenv(SECRET_ENV, CLIENT_SECRET)
    stub = StubProvider(clock).__enter__()
    configure(root / "ws", stub)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app(lambda: Context(root / "ws", clock=clock), decide=False, review=fixture_review)
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.05)
    SSO.append(stub)
    yield f"http://127.0.0.1:{port}", root / "ws", clock
    srv.should_exit = True
    thread.join(timeout=30)
    stub.__exit__(None, None, None)
    mp.undo()


SSO: list[StubProvider] = []   # the module's stub provider
IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"


def screenshot(driver, name: str, lang: str) -> None:
    """docs/images/web-<name>-<lang>.png, the page as the browser shows it — only with LIFELOOP_SCREENSHOTS=1
    (docs/web.md), so an ordinary test run never changes the repository."""
    if os.environ.get("LIFELOOP_SCREENSHOTS") == "1":
        IMAGES.mkdir(parents=True, exist_ok=True)
        assert driver.save_screenshot(str(IMAGES / f"web-{name}-{lang.replace('_', '-').lower()}.png"))


class Watch:
    """Every console error and every URL the browser asked for, page after page."""

    def __init__(self, driver, origin: str):
        self.driver, self.origin, self.errors, self.urls = driver, origin, [], []
        driver.get_log("browser")
        driver.get_log("performance")

    def collect(self) -> None:
        self.errors += [e for e in self.driver.get_log("browser") if e["level"] == "SEVERE"]
        for entry in self.driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            if message["method"] == "Network.requestWillBeSent":
                self.urls.append(message["params"]["request"]["url"])

    def assert_clean(self, also: tuple[str, ...] = ()) -> None:
        """0 console errors; 0 requests off the app's origin (and those of ``also``)."""
        self.collect()
        assert self.errors == []
        origins = (self.origin, *also)
        assert self.urls and [u for u in self.urls if not (any(u.startswith(o + "/") for o in origins)
                                                           or u.startswith("data:"))] == []


def sign_in(driver, origin: str, user: str, lang: str) -> None:
    """Sign in through the form; waits for each page to be replaced (a loaded machine is slow to navigate)."""
    from selenium.webdriver.common.by import By

    driver.delete_all_cookies()
    driver.get(origin + "/sign-in")
    if lang == "en":
        go(driver, driver.find_element(By.CSS_SELECTOR, "form.lang button[value=en]"))
    driver.find_element(By.ID, "user").send_keys(user)
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    go(driver, driver.find_element(By.CSS_SELECTOR, "#sign-in button[type=submit]"))


def go(driver, element) -> None:
    """Click what leaves the page (a link, a form's button) and wait until the next page replaced it: the element is
    gone when the driver can no longer reach it — stale, or (chromedriver, mid-navigation) "Node with given id does
    not belong to the document", which Selenium raises as a plain WebDriverException."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.support.ui import WebDriverWait

    def gone(_driver) -> bool:
        try:
            element.is_enabled()
        except WebDriverException:
            return True
        return False

    element.click()
    WebDriverWait(driver, 15).until(gone)


WORDS = {"zh_CN": {"html": "zh-CN", "board": "策略管理看板", "breakdowns": "分维度拆解", "worklist": "今日工作清单",
                   "form": "营销表单", "recorded": "已记录"},
         "en": {"html": "en", "board": "Strategy board", "breakdowns": "Breakdowns", "worklist": "Today's worklist",
                "form": "Marketing form", "recorded": "Recorded"}}


@pytest.mark.parametrize(("lang", "rm", "customer"), [("zh_CN", "rm1", "C001"), ("en", "rm2", "C002")])
def test_sign_in_board_drill_down_and_the_rm_form_in_a_real_browser(browser, server, lang, rm, customer):  # noqa: F811
    from selenium.webdriver.common.by import By

    origin, ws, clock = server
    words = WORDS[lang]
    browser.set_window_size(1280, 900)
    watch = Watch(browser, origin)

    sign_in(browser, origin, "analyst", lang)
    assert browser.current_url == origin + "/board"
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == words["html"]
    board = browser.find_element(By.ID, "strategy-board")
    assert board.is_displayed() and words["board"] in browser.find_element(By.TAG_NAME, "h1").text
    assert len(board.find_elements(By.CSS_SELECTOR, "tbody tr[data-strategy]")) == 3
    screenshot(browser, "board", lang)
    # the owner filter, applied by htmx (a GET of this origin swapped into the page; the URL follows)
    from selenium.webdriver.support.ui import Select, WebDriverWait

    Select(browser.find_element(By.ID, "filter-owner")).select_by_value("零售客户部")
    browser.find_element(By.CSS_SELECTOR, "form.filters button[type=submit]").click()
    WebDriverWait(browser, 10).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "tbody tr[data-strategy]")) == 1)
    assert "owner=" in browser.current_url and len(browser.find_elements(By.TAG_NAME, "main")) == 1
    # the interim choice: ticked, the board says the windows are still running, and the drill-down and the Excel
    # export carry it; the control fits a phone's width
    browser.get(origin + "/board")
    assert not browser.find_elements(By.ID, "interim-note")
    browser.find_element(By.ID, "filter-interim").click()
    browser.find_element(By.CSS_SELECTOR, "form.filters button[type=submit]").click()
    WebDriverWait(browser, 10).until(lambda d: d.find_elements(By.ID, "interim-note"))
    assert "interim=1" in browser.current_url and browser.find_element(By.ID, "filter-interim").is_selected()
    assert "interim=true" in browser.find_element(By.ID, "export-board").get_attribute("href")
    assert "interim=1" in browser.find_element(
        By.CSS_SELECTOR, "tr[data-strategy=maturity_reinvestment] a.drill").get_attribute("href")
    browser.set_window_size(390, 844)
    assert browser.find_element(By.ID, "filter-interim").is_displayed()
    assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth + 1")
    browser.set_window_size(1280, 900)
    browser.get(origin + "/board")
    board = browser.find_element(By.ID, "strategy-board")
    go(browser, board.find_element(By.CSS_SELECTOR, "tr[data-strategy=maturity_reinvestment] a.drill"))
    assert browser.current_url == origin + "/board/maturity_reinvestment"
    assert words["breakdowns"] in browser.page_source
    assert browser.find_elements(By.CSS_SELECTOR, "table.breakdown svg.chart")
    assert browser.execute_script("return typeof htmx") == "object"   # the vendored htmx ran, from this origin
    screenshot(browser, "strategy", lang)
    # the board's other views: lifecycle flows and KPIs (the server's day ran the lifecycle step: one snapshot, its
    # stage table), the daily sales report (no new accounts: its empty state), each with its Excel export
    browser.get(origin + "/board")
    assert browser.find_element(By.ID, "export-board").get_attribute("href").startswith(origin + "/exports/board.xlsx")
    go(browser, browser.find_element(By.ID, "tab-kpis"))
    assert browser.current_url == origin + "/kpis" and browser.find_element(By.ID, "kpi-rates").is_displayed()
    assert browser.find_elements(By.CSS_SELECTOR, "#stage-latest tbody tr")
    go(browser, browser.find_element(By.ID, "tab-sales"))
    assert browser.current_url == origin + "/daily-sales" and browser.find_element(By.ID, "daily-sales")
    assert browser.find_element(By.ID, "export-sales").get_attribute("href").startswith(
        origin + "/exports/daily-sales.xlsx")
    assert browser.find_element(By.ID, "filter-branch")   # head office may pick a branch
    browser.get(origin + "/board/maturity_reinvestment")
    go(browser, browser.find_element(By.ID, "sign-out"))
    assert browser.current_url == origin + "/sign-in"

    browser.set_window_size(390, 844)   # a phone
    sign_in(browser, origin, rm, lang)
    assert browser.current_url == origin + "/worklist"
    assert words["worklist"] in browser.find_element(By.TAG_NAME, "h1").text
    items = browser.find_elements(By.CSS_SELECTOR, "#worklist li.task")
    assert len(items) == 1
    screenshot(browser, "worklist", lang)
    go(browser, items[0].find_element(By.CSS_SELECTOR, "a.customer"))
    assert browser.current_url == origin + f"/customers/{customer}"
    assert words["form"] in browser.page_source
    assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth + 1")
    screenshot(browser, "customer", lang)
    form = browser.find_element(By.CSS_SELECTOR, "form.outcome")
    form.find_element(By.CSS_SELECTOR, "input[value=refused]").click()
    form.find_element(By.NAME, "note").send_keys("no, thank you")
    go(browser, form.find_element(By.CSS_SELECTOR, "button[type=submit]"))
    assert browser.current_url.startswith(origin + "/worklist?done=")
    assert words["recorded"] in browser.find_element(By.ID, "recorded").text
    watch.assert_clean()
    assert origin + "/static/htmx-2.0.11.min.js" in watch.urls

    with system(ws, clock).ops()() as s:
        [row] = s.scalars(sa.select(Feedback).where(Feedback.customer_id == customer)).all()
        assert (row.outcome, row.recorded_by, row.note, row.source) == ("refused", rm, "no, thank you", "web")
        assert s.scalar(sa.select(Task.status).where(Task.customer_id == customer)) == "done"


def test_single_sign_on_with_the_stub_provider_lands_on_the_board(browser, server):  # noqa: F811
    """The button on the sign-in page, the provider (approving at once), back to the board. The provider is a
    second origin by design: its loopback origin is the only one allowed besides the app's."""
    from selenium.webdriver.common.by import By

    origin, ws, clock = server
    [stub] = SSO
    stub.user = "analyst"
    browser.set_window_size(1280, 900)
    browser.delete_all_cookies()
    watch = Watch(browser, origin)
    browser.get(origin + "/sign-in")
    button = browser.find_element(By.ID, "sign-in-sso")
    assert "Bank SSO" in button.text
    button.click()
    assert browser.current_url == origin + "/board"
    assert browser.find_element(By.ID, "strategy-board").is_displayed()
    watch.collect()
    assert any(u.startswith(stub.origin + "/authorize?") for u in watch.urls)   # it did go through the provider
    watch.assert_clean(also=(stub.origin,))
    with system(ws, clock).ops()() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(WebSession).where(
            WebSession.user_id == "analyst", WebSession.revoked_at.is_(None))) == 1


EDITOR_WORDS = {"zh_CN": {"map": "策略图谱", "valid": "校验通过", "approved": "已批准"},
                "en": {"map": "Strategy map", "valid": "Valid", "approved": "approved"}}
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "images" / "editor.png"


@pytest.mark.parametrize(("lang", "rule", "expected"), [
    ("zh_CN", "customer_id <> ''", {"C001", "C002", "C003", "C004", "C005", "C006"}),
    ("en", "branch_id = 'B02'", {"C004", "C005", "C006"})])
def test_the_owner_drafts_submits_a_second_user_approves_and_the_next_run_uses_it(browser, server, lang, rule,  # noqa: F811
                                                                                   expected):
    """Strategy map editor (maker-checker): an analyst opens the map, drafts birthday_care with a new audience rule
    (checked live by htmx, with the audience count), saves and submits it; the approver, who lands on the map,
    approves it; the next run's audiences file has the new rule's customers."""
    import os

    import pyarrow.parquet as pq
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    origin, ws, clock = server
    words = EDITOR_WORDS[lang]
    browser.set_window_size(1280, 1000)
    watch = Watch(browser, origin)
    sign_in(browser, origin, "analyst", lang)
    go(browser, browser.find_element(By.ID, "nav-strategies"))
    assert browser.current_url == origin + "/strategies"
    assert words["map"] in browser.find_element(By.TAG_NAME, "h1").text
    go(browser, browser.find_element(By.CSS_SELECTOR, "#strategy-list tr[data-strategy=birthday_care] a"))
    go(browser, browser.find_element(By.ID, "new-draft"))
    assert browser.current_url == origin + "/strategies/birthday_care/edit"
    field = browser.find_element(By.ID, "field-audience")
    field.clear()
    field.send_keys(rule)
    count = str(len(expected))
    # (read in one script: htmx swaps the fragment while we look)
    WebDriverWait(browser, 15).until(lambda d: d.execute_script(
        "var n = document.querySelector('#audience-count strong');"
        "return document.getElementById('check-valid') && n ? n.textContent : null;") == count)
    assert words["valid"] in browser.find_element(By.ID, "check-valid").text
    if lang == "zh_CN" and os.environ.get("LIFELOOP_SCREENSHOTS") == "1":   # the whole form, with its live check
        browser.set_window_size(1280, browser.execute_script("return document.body.scrollHeight") + 140)
        assert browser.save_screenshot(str(SCREENSHOT))
        browser.set_window_size(1280, 1000)
    browser.find_element(By.ID, "field-note").send_keys("e2e")
    go(browser, browser.find_element(By.ID, "save-draft"))
    assert browser.current_url.startswith(origin + "/strategies/birthday_care?done=draft")
    with system(ws, clock).ops()() as s:
        version = s.scalar(sa.select(sa.func.max(StrategyVersion.version)).where(
            StrategyVersion.strategy_id == "birthday_care"))
    go(browser, browser.find_element(By.CSS_SELECTOR, f"tr[data-version='{version}'] button.submit"))
    assert browser.find_element(By.CSS_SELECTOR, f"tr[data-version='{version}']").get_attribute(
        "data-status") == "submitted"
    assert not browser.find_elements(By.CSS_SELECTOR, "button.approve")   # the maker is not the checker
    go(browser, browser.find_element(By.ID, "sign-out"))

    sign_in(browser, origin, "approver", lang)
    assert browser.current_url == origin + "/strategies"
    browser.get(origin + "/strategies/birthday_care")
    row = browser.find_element(By.CSS_SELECTOR, f"tr[data-version='{version}']")
    row.find_element(By.CSS_SELECTOR, "input[name=comment]").send_keys("ok")
    go(browser, row.find_element(By.CSS_SELECTOR, "button.approve"))
    row = browser.find_element(By.CSS_SELECTOR, f"tr[data-version='{version}']")
    assert row.get_attribute("data-status") == "approved" and words["approved"] in row.text
    watch.assert_clean()

    with system(ws, clock) as ctx:   # the next run
        ctx.run(D, steps=["audiences"])
        table = pq.read_table(ctx.lake.snapshot_file("audiences", D)).to_pylist()
    assert {r["customer_id"] for r in table if r["strategy"] == "birthday_care"} == expected
