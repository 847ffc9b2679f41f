"""The board's other views: the branch filter, lifecycle KPIs, the daily sales report (每日销售报表) and the Excel
exports — scoped to the reader's branches, checked against hand-computed figures, and every export audited."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal

import openpyxl
import sqlalchemy as sa

from lifeloop.review import kpis as kpis_module
from lifeloop.store.ops.models import AuditEntry
from lifeloop.web import board
from tests.ops_fixtures import database_url, ops_db  # noqa: F401 - fixtures
from tests.web_world import D, bank, client_for, sign_in, system  # noqa: F401 - fixture

DAY1, DAY2 = D - dt.timedelta(days=1), D
SALES = [  # day, branch, RM, product type, accounts, customers, amount (kpis.daily_sales rows)
    (DAY1, "B01", "RM001", "wealth", 2, 2, "30000.00"),
    (DAY1, "B01", "RM002", "wealth", 1, 1, "5000.50"),
    (DAY1, "B02", "RM004", "wealth", 4, 3, "8000.00"),
    (DAY2, "B01", "RM003", "time_deposit", 1, 1, "100000.00"),
]


def fake_sales(_engine, start, end):
    """kpis.daily_sales over a bank with these new accounts (the test bank has no holdings)."""
    return [{"day": d, "branch_id": b, "rm_id": rm, "product_type": t, "accounts": a, "customers": c,
             "amount": Decimal(m)} for d, b, rm, t, a, c, m in SALES if start <= d <= end]


def fake_kpis(_self, start, end):
    return {"schema": "lifeloop.kpis/1", "from": start, "to": end, "snapshots": [DAY1], "stage_distribution": [
        {"as_of": DAY1, "stage": "growth", "customers": 6, "share": 1.0}], "transitions": [],
        "daily_sales": fake_sales(None, start, end), "sales_by_branch_rm": [], "churn": {}, "reactivation": {}}


def test_daily_sales_sum_the_rms_of_a_branch_per_day_and_product_type():
    got = board.daily_sales(fake_kpis(None, DAY1, DAY2))
    assert [(r["day"], r["branch_id"], r["product_type"], r["accounts"], r["customers"], r["amount"]) for r in got] == [
        (DAY1, "B01", "wealth", 3, 3, Decimal("35000.50")), (DAY1, "B02", "wealth", 4, 3, Decimal("8000.00")),
        (DAY2, "B01", "time_deposit", 1, 1, Decimal("100000.00"))]
    assert [r["branch_id"] for r in board.daily_sales(fake_kpis(None, DAY1, DAY2), {"B02"})] == ["B02"]


def test_a_branchs_kpis_hold_only_its_sales_and_no_bank_wide_flows():
    doc = fake_kpis(None, DAY1, DAY2)
    assert board.scoped_kpis(doc, None)["stage_distribution"] == doc["stage_distribution"]
    mine = board.scoped_kpis(doc, {"B02"})
    assert mine["bank_wide_hidden"] and "stage_distribution" not in mine
    assert [r["rm_id"] for r in mine["daily_sales"]] == ["RM004"]


def test_head_office_sees_every_branch_and_a_branch_manager_only_theirs(bank, monkeypatch):
    monkeypatch.setattr(kpis_module, "daily_sales", fake_sales)
    ws, clock = bank
    with client_for(ws, clock) as http:
        sign_in(http, "analyst")
        everything = http.get("/api/daily-sales", params={"days": "7"}).json()
        b02 = http.get("/api/daily-sales", params={"days": "7", "branch": "B02"}).json()
        page = http.get("/daily-sales", params={"days": "7"})
        kpis = http.get("/api/kpis", params={"days": "7"}).json()
    assert [(r["branch_id"], r["accounts"], float(r["amount"])) for r in everything["rows"]] == [
        ("B01", 3, 35000.5), ("B02", 4, 8000.0), ("B01", 1, 100000.0)]
    assert everything["from"] == (D - dt.timedelta(days=6)).isoformat() and everything["to"] == D.isoformat()
    assert [r["branch_id"] for r in b02["rows"]] == ["B02"]
    assert page.status_code == 200 and "每日销售报表" in page.text and page.text.count("<td>B0") == 3
    assert kpis["bank_wide_hidden"] is False and kpis["lifecycle_missing"] is True   # no snapshot: sales only
    with client_for(ws, clock) as http:
        sign_in(http, "bm1")
        own = http.get("/api/daily-sales", params={"days": "7"}).json()
        kpis = http.get("/api/kpis", params={"days": "7"}).json()
        other = http.get("/api/daily-sales", params={"branch": "B02"})
        unknown = http.get("/api/daily-sales", params={"branch": "B99"})
        board_other = http.get("/api/board", params={"branch": "B02"})
    assert {r["branch_id"] for r in own["rows"]} == {"B01"} and len(own["rows"]) == 2
    assert kpis["bank_wide_hidden"] is True and "stage_distribution" not in kpis
    assert {r["branch_id"] for r in kpis["daily_sales"]} == {"B01"}
    assert other.status_code == unknown.status_code == board_other.status_code == 404
    assert other.content == unknown.content   # "not yours" is "not found"


def test_the_daily_sales_export_is_the_report_in_excel_and_is_audited(bank, monkeypatch):
    monkeypatch.setattr(kpis_module, "daily_sales", fake_sales)
    ws, clock = bank
    with client_for(ws, clock) as http:
        sign_in(http, "bm1")
        got = http.get("/exports/daily-sales.xlsx", params={"days": "7"})
    assert got.status_code == 200 and got.headers["content-type"].startswith("application/vnd.openxmlformats")
    sheet = openpyxl.load_workbook(io.BytesIO(got.content)).active
    cells = [[c.value for c in row] for row in sheet.iter_rows()]
    assert cells[0] == list(board.SALES_COLUMNS)
    assert [(r[0].date(), r[1], r[2], r[3], r[4], r[5]) for r in cells[1:]] == [
        (DAY1, "B01", "wealth", 3, 3, 35000.5), (DAY2, "B01", "time_deposit", 1, 1, 100000.0)]
    with system(ws, clock) as ctx, ctx.ops()() as session:
        entry = session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "daily_sales.export")).one()
    assert entry.actor == "bm1" and entry.details["rows"] == 2 and entry.details["filters"]["days"] == "7"
    assert len(entry.details["sha256"]) == 64


def test_the_board_export_holds_the_boards_numbers_and_an_rm_may_not_export(bank):
    ws, clock = bank
    with client_for(ws, clock) as http:
        sign_in(http, "analyst")
        doc = http.get("/api/board", params={"owner": "零售客户部"}).json()
        got = http.get("/exports/board.xlsx", params={"owner": "零售客户部"})
    sheet = openpyxl.load_workbook(io.BytesIO(got.content)).active
    cells = [[c.value for c in row] for row in sheet.iter_rows()]
    s = doc["strategies"][0]
    assert cells[0] == list(board.BOARD_COLUMNS) and len(cells) == 2
    row = dict(zip(cells[0], cells[1], strict=True))
    assert (row["strategy"], row["uplift"], row["ci_low"], row["verdict"], row["cost"]) == (
        s["strategy"], s["headline"]["uplift"], s["headline"]["ci_low"], s["verdict"], s["money"]["cost"])
    with system(ws, clock) as ctx, ctx.ops()() as session:
        assert session.scalars(sa.select(AuditEntry.actor).where(AuditEntry.action == "board.export")).all() == [
            "analyst"]
    with client_for(ws, clock) as http:
        sign_in(http, "rm1")
        assert http.get("/exports/board.xlsx").status_code == 403


def lifecycle_kpis(_self, start, end):
    """A period with two lifecycle snapshots (what Context.kpis returns; its figures are its own tests')."""
    dist = [{"as_of": DAY1, "stage": "growth", "customers": 300, "share": 0.75},
            {"as_of": DAY1, "stage": "dormant", "customers": 100, "share": 0.25},
            {"as_of": DAY2, "stage": "growth", "customers": 290, "share": 0.725},
            {"as_of": DAY2, "stage": "churned", "customers": 5, "share": 0.0125},
            {"as_of": DAY2, "stage": "dormant", "customers": 105, "share": 0.2625}]
    return {"schema": "lifeloop.kpis/1", "from": start, "to": end, "snapshots": [DAY1, DAY2],
            "stage_distribution": dist, "transitions": [], "lifecycle_missing": False,
            "churn": {"periods": [], "window": {"customers": 400, "moved": 5, "rate": 0.0125}},
            "reactivation": {"periods": [], "window": {"customers": 100, "moved": 25, "rate": 0.25}},
            "activation": {"measured": 10, "activated": 5, "pending": 0, "rate": 0.5, "days": 30},
            "daily_sales": fake_sales(None, start, end), "sales_by_branch_rm": kpis_module.sales_totals(
                fake_sales(None, start, end))}


def test_the_kpi_page_shows_head_office_the_flows_and_a_branch_manager_only_their_sales(bank, monkeypatch):
    from lifeloop.context import Context

    monkeypatch.setattr(Context, "board_kpis", lifecycle_kpis)
    ws, clock = bank
    with client_for(ws, clock) as http:
        sign_in(http, "analyst")
        page = http.get("/kpis", params={"days": "7"}).text
    assert "生命周期流转与经营指标" in page and 'id="kpi-rates"' in page
    assert "1.25%" in page and "25.0%" in page and "50.0%" in page   # churn, reactivation, activation
    assert 'class="chart stack"' in page and "RM004" in page and "<script>" not in page
    with client_for(ws, clock) as http:
        sign_in(http, "bm1")
        page = http.get("/kpis", params={"days": "7"}).text
    assert 'id="bank-wide-hidden"' in page and 'id="kpi-rates"' not in page and "1.25%" not in page
    assert "RM001" in page and "RM004" not in page   # only their branch's sales
