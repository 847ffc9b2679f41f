"""The strategy board in the web app: the ``lifeloop evaluate`` document as a page and as JSON, filtered by owner,
objective and period, a drill-down to one strategy's breakdowns with the report's SVG forest plots, and who may
see it (leaders: head office and branch managers; not an RM, not an approver)."""

from __future__ import annotations

import datetime as dt
import json

from tests.ops_fixtures import database_url, ops_db  # noqa: F401 - fixtures
from tests.web_world import REVIEW, bank, client_for, sign_in  # noqa: F401 - fixture

SAMPLE = json.loads(REVIEW.read_text(encoding="utf-8"))


def test_the_board_page_shows_every_strategy_with_uplift_ci_verdict_money_and_a_forest_plot(bank):
    ws, clock = bank
    with client_for(ws, clock) as http:
        sign_in(http, "analyst")
        page = http.get("/board")
    assert page.status_code == 200
    text = page.text
    assert text.count("<tr data-strategy=") == len(SAMPLE["strategies"]) == 3
    for s in SAMPLE["strategies"]:
        assert f'href="/board/{s["strategy"]}"' in text and s["name"]["zh"] in text
    assert "策略管理看板" in text and "提升（95% 置信区间）" in text and 'class="chart' in text
    assert "<script>" not in text and "https://" not in text   # nothing inline, nothing elsewhere


def test_filters_by_owner_and_objective_narrow_the_page_and_the_json_alike(bank):
    ws, clock = bank
    with client_for(ws, clock) as http:
        sign_in(http, "analyst")
        page = http.get("/board", params={"owner": "零售客户部"})
        api = http.get("/api/board", params={"owner": "零售客户部"}).json()
        by_objective = http.get("/api/board", params={"objective": "customers"}).json()
        nothing = http.get("/api/board", params={"owner": "零售客户部", "objective": "scale"}).json()
    assert page.text.count("<tr data-strategy=") == 1 and 'data-strategy="birthday_care"' in page.text
    assert [s["strategy"] for s in api["strategies"]] == ["birthday_care"]
    assert api["schema"] == "lifeloop.review/1" and api["strategies"][0] == next(
        s for s in SAMPLE["strategies"] if s["strategy"] == "birthday_care")
    assert {s["strategy"] for s in by_objective["strategies"]} == {"birthday_care", "dormant_reactivation"}
    assert nothing["strategies"] == []


def test_the_period_is_the_evaluations_as_of_date_and_a_bad_date_is_a_clear_refusal(bank):
    ws, clock = bank
    asked = []

    def review(_ctx, as_of, interim=False):
        asked.append(as_of)
        return SAMPLE

    with client_for(ws, clock, review=review) as http:
        sign_in(http, "bm1")
        assert http.get("/api/board", params={"as_of": "2025-03-01"}).status_code == 200
        bad = http.get("/api/board", params={"as_of": "March"})
    assert asked == [dt.date(2025, 3, 1)]
    assert bad.status_code == 422 and "not a date" in bad.json()["error"] and "YYYY-MM-DD" in bad.json()["hint"]


def test_the_drill_down_shows_a_strategys_breakdowns_by_wave_channel_and_segment(bank):
    ws, clock = bank
    with client_for(ws, clock) as http:
        sign_in(http, "analyst")
        page = http.get("/board/maturity_reinvestment")
        api = http.get("/api/board/maturity_reinvestment").json()
        unknown = http.get("/api/board/no_such_strategy")
    assert page.status_code == 200 and "分维度拆解" in page.text
    for dimension in ("波次", "渠道", "客群"):
        assert f"<h3>{dimension}</h3>" in page.text
    strategy = api["strategies"][0]
    assert strategy["strategy"] == "maturity_reinvestment" and strategy["breakdowns"]["channel"]
    assert page.text.count('class="chart') >= sum(len(v) for v in strategy["breakdowns"].values())
    assert unknown.status_code == 404


def test_the_real_evaluation_is_what_the_board_shows_by_default(bank):
    from lifeloop.web import evaluate

    ws, clock = bank
    with client_for(ws, clock, review=evaluate) as http:   # the workspace has no outcomes yet: a clear message
        sign_in(http, "analyst")
        answer = http.get("/api/board")
    assert answer.status_code == 422 and "no outcomes snapshot" in answer.json()["error"]


def test_relationship_managers_and_approvers_do_not_see_the_board(bank):
    ws, clock = bank
    for user in ("rm1", "approver"):
        with client_for(ws, clock) as http:
            sign_in(http, user)
            assert http.get("/api/board").status_code == 403
            assert http.get("/board").status_code == 403
            assert http.get("/board/birthday_care").status_code == 403
    with client_for(ws, clock) as http:
        assert http.get("/api/board").status_code == 401 and http.get("/board").headers["location"] == "/sign-in"


def test_the_board_is_in_english_when_the_user_chooses_english(bank):
    ws, clock = bank
    with client_for(ws, clock) as http:
        sign_in(http, "analyst")
        page = http.get("/board")
        from tests.web_world import csrf_of

        http.post("/language", data={"csrf": csrf_of(page.text), "lang": "en", "next": "/board"})
        english = http.get("/board").text
    assert '<html lang="en">' in english and "Strategy board" in english and "Birthday care" in english
    assert "策略管理看板" not in english


def test_the_interim_choice_asks_for_the_interim_review_and_the_page_says_windows_are_still_running(bank):
    """Off by default (closed windows only, as before); on, the board, its JSON, the drill-down and the export ask
    the evaluation for the interim review (``lifeloop evaluate --interim``) and the pages say so plainly."""
    ws, clock = bank
    asked = []

    def review(_ctx, as_of, interim=False):
        asked.append(interim)
        return {**SAMPLE, "interim": interim}

    with client_for(ws, clock, review=review) as http:
        sign_in(http, "analyst")
        closed = http.get("/board").text
        assert asked == [False]
        page = http.get("/board", params={"interim": "1"}).text
        api = http.get("/api/board", params={"interim": "true"}).json()
        drill = http.get("/board/maturity_reinvestment", params={"interim": "1"}).text
        one = http.get("/api/board/maturity_reinvestment", params={"interim": "true"}).json()
        export = http.get("/exports/board.xlsx", params={"interim": "true"})
    assert asked == [False, True]   # computed once per choice, then reused like every board
    assert 'id="interim-note"' not in closed and 'id="filter-interim"' in closed and "checked" not in closed.split(
        'id="filter-interim"')[1].split(">")[0]
    assert 'id="interim-note"' in page and "观察窗口尚未结束" in page and "期中：未结束的观察窗口按截至目前计算" in page
    assert 'id="filter-interim" checked' in page and "&interim=1" in page and "&interim=true" in page
    assert api["interim"] is True and one["interim"] is True and one["strategies"][0]["strategy"] == \
        "maturity_reinvestment"
    assert 'id="interim-note"' in drill and "interim=1" in drill
    assert export.status_code == 200 and export.content[:2] == b"PK"
