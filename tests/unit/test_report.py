"""The HTML report: every section from hand-made inputs, numbers as a banker reads them, plain empty states."""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lifeloop.review import svg
from lifeloop.review.kpis_render import kpis_json
from lifeloop.review.report import DEFAULT_LABELS, render_report

FIXTURE = Path(__file__).parents[1] / "fixtures" / "review_sample.json"
D1, D2, D3 = dt.date(2025, 1, 31), dt.date(2025, 2, 28), dt.date(2025, 3, 20)


def review() -> dict:
    return json.loads(FIXTURE.read_text(encoding="utf-8"))


def kpis() -> dict:
    """A small KPI result as ``review.kpis.compute`` returns it (dates, Decimal money)."""
    dist = [(D1, "growing", 8), (D1, "mature", 2), (D2, "growing", 6), (D2, "mature", 4), (D3, "growing", 5),
            (D3, "mature", 4), (D3, "churned", 1)]
    totals = {D1: 10, D2: 10, D3: 10}
    return {
        "schema": "lifeloop.kpis/1", "from": D1, "to": D3, "snapshots": [D1, D2, D3],
        "stage_distribution": [{"as_of": d, "stage": s, "customers": n, "share": n / totals[d]} for d, s, n in dist],
        # two periods: growing -> growing 8 + 9 = 17, growing -> mature 2 + 1 = 3 (of 20 growing: 85% / 15%)
        "transitions": [
            {"from": D1, "to": D2, "from_stage": "growing", "to_stage": "growing", "customers": 8, "rate": 0.8},
            {"from": D1, "to": D2, "from_stage": "growing", "to_stage": "mature", "customers": 2, "rate": 0.2},
            {"from": D1, "to": D2, "from_stage": "mature", "to_stage": "mature", "customers": 2, "rate": 1.0},
            {"from": D2, "to": D3, "from_stage": "growing", "to_stage": "growing", "customers": 9, "rate": 0.9},
            {"from": D2, "to": D3, "from_stage": "growing", "to_stage": "mature", "customers": 1, "rate": 0.1},
            {"from": D2, "to": D3, "from_stage": "mature", "to_stage": None, "customers": 1, "rate": 0.25},
            {"from": D2, "to": D3, "from_stage": "mature", "to_stage": "mature", "customers": 3, "rate": 0.75}],
        "churn": {"periods": [], "window": {"customers": 10, "moved": 1, "rate": 0.1}},
        "reactivation": {"periods": [], "window": {"customers": 0, "moved": 0, "rate": None}},
        "activation": {"entered": 4, "measured": 3, "pending": 1, "activated": 2, "rate": 2 / 3, "days": 30},
        "retention": [{"cohort": "2024-11", "customers": 5, "retained_1m": 5, "rate_1m": 1.0, "retained_3m": 4,
                       "rate_3m": 0.8, "retained_6m": None, "rate_6m": None, "retained_12m": None, "rate_12m": None}],
        "products_per_customer": {"as_of": D3, "customers": 9, "average": 1.7778,
                                  "distribution": [{"products": 1, "customers": 4, "share": 4 / 9},
                                                   {"products": 2, "customers": 3, "share": 3 / 9},
                                                   {"products": 3, "customers": 2, "share": 2 / 9}]},
        "aum_by_tier": [{"as_of": D3, "tier": "wealth", "customers": 2, "aum": Decimal("1234567.89"),
                         "average_aum": Decimal("617283.95")},
                        {"as_of": D3, "tier": "mass", "customers": 8, "aum": Decimal("80000.00"),
                         "average_aum": Decimal("10000.00")}],
        "daily_sales": [
            {"day": D2, "branch_id": "BR0006", "rm_id": "RM00028", "product_type": "wealth", "accounts": 2,
             "customers": 1, "amount": Decimal("1300000.00")},
            {"day": D3, "branch_id": "BR0002", "rm_id": None, "product_type": "insurance", "accounts": 1,
             "customers": 1, "amount": Decimal("5000.00")},
            {"day": D3, "branch_id": "BR0006", "rm_id": "RM00028", "product_type": "time_deposit", "accounts": 1,
             "customers": 1, "amount": Decimal("60300.00")}],
        "sales_by_branch_rm": [{"branch_id": "BR0006", "rm_id": "RM00028", "accounts": 3,
                                "amount": Decimal("1360300.00"), "by_product_type": {"wealth": 2, "time_deposit": 1}},
                               {"branch_id": "BR0002", "rm_id": None, "accounts": 1, "amount": Decimal("5000.00"),
                                "by_product_type": {"insurance": 1}}],
    }


def coverage() -> dict:
    """Two tiers x two stages, one featured group: a gap (wealth x declining) and an overlap (mass x growing)."""
    cells = [
        {"kind": "tier", "segment": "mass", "stage": "growing", "customers": 1200, "aum": 3.5e6,
         "strategies": {"maturity_reinvestment": 40, "birthday_care": 12}, "contested": 7,
         "wins": {"maturity_reinvestment": 5, "birthday_care": 2}},
        {"kind": "tier", "segment": "mass", "stage": "declining", "customers": 300, "aum": 9.0e5,
         "strategies": {}, "contested": 0, "wins": {}},
        {"kind": "tier", "segment": "wealth", "stage": "declining", "customers": 40, "aum": 6.0e7,
         "strategies": {}, "contested": 0, "wins": {}},
        {"kind": "group", "segment": "payroll", "stage": "growing", "customers": 500, "aum": 2.0e6,
         "strategies": {"maturity_reinvestment": 9}, "contested": 0, "wins": {}},
    ]
    return {"as_of": "2025-03-20", "stages": ["growing", "declining"],
            "segments": [{"kind": "tier", "segment": "mass"}, {"kind": "tier", "segment": "wealth"},
                         {"kind": "group", "segment": "payroll"}],
            "cells": cells,
            "gaps": [{"kind": "tier", "segment": "wealth", "stage": "declining", "customers": 40, "aum": 6.0e7},
                     {"kind": "tier", "segment": "mass", "stage": "declining", "customers": 300, "aum": 9.0e5}],
            "overlaps": [{"kind": "tier", "segment": "mass", "stage": "growing", "contested": 7,
                          "strategies": {"birthday_care": 12, "maturity_reinvestment": 40},
                          "wins": {"birthday_care": 2, "maturity_reinvestment": 5}, "winner": "maturity_reinvestment"}],
            "thresholds": {"gap_min_customers": 100, "gap_min_aum": 5e7, "overlap_min_customers": 1}}


def full(**changes) -> str:
    args = {"bank_name": "Demo Retail Bank", "as_of": D3, "review": review(), "kpis": kpis(), "coverage": coverage()}
    return render_report(**{**args, **changes})


def section(html: str, name: str) -> str:
    match = re.search(rf'<section id="{name}">(.*?)</section>', html, re.S)
    assert match, f"section {name} missing"
    return match.group(1)


def board_row(html: str, strategy: str) -> str:
    match = re.search(rf'<tr class="[a-z]+" data-strategy="{strategy}">(.*?)</tr>', html, re.S)
    assert match, f"no board row for {strategy}"
    return match.group(1)


@pytest.fixture(scope="module")
def html() -> str:
    return full()


# ---------------------------------------------------------------------------- the page
def test_every_section_is_present_with_its_chinese_and_english_title(html):
    for name, zh, en in (("board", "策略管理看板", "Strategy board"), ("flows", "生命周期流转", "Lifecycle flows"),
                         ("kpis", "经营指标", "KPIs"), ("coverage", "策略覆盖", "Strategy-map coverage")):
        body = section(html, name)
        assert zh in body and en in body
    assert '<table class="board" id="strategy-board">' in html
    assert "策略优化建议" in html and "Suggestions" in html
    assert html.count('class="chart') >= 10  # forest plots, bars, two heat maps, lines
    assert "Demo Retail Bank" in html and "2025-03-20" in html


def test_the_board_has_one_row_per_strategy_with_owner_objective_and_entries(html):
    row = board_row(html, "maturity_reinvestment")
    assert "到期续作" in row and "Maturity reinvestment" in row and "财富管理部" in row
    assert "规模 Scale" in row and "reinvested_aum · 30d" in row
    assert '<td class="num entries">812 / 90<br><small>140 in window' in row
    assert '<td class="num entries">3,000 / 330<br><small>0 in window' in board_row(html, "birthday_care")
    assert "1,500" in board_row(html, "dormant_reactivation")


def test_uplift_money_rates_and_p_values_are_formatted_for_a_banker(html):
    row = board_row(html, "maturity_reinvestment")
    assert "+5.0 pp" in row and "+1.2 pp .. +7.9 pp" in row       # 0.05, CI 0.012 .. 0.079
    assert "purchased: 8.1% vs 3.1%" in row
    assert '<td class="num">0.030</td>' in row
    assert ">1,200,000<" in row and ">9,000<" in row and ">4,750<" in row   # the column headers say RMB
    assert "Incr. AUM, RMB" in html and "Cost, RMB" in html
    assert "+89%" in row and "-79% .. +258%" in row                # ROI 0.89, CI -0.79 .. 2.58
    assert ">150<" in board_row(html, "birthday_care")            # cost 150.0: whole RMB at 100 and over
    srm = re.search(r'<tr class="srm-row">(.*?)</tr>', html, re.S).group(1)
    assert "planned 10.0%" in srm and "p &lt;0.001" in srm


def test_a_number_not_computable_yet_is_a_dash(html):
    row = board_row(html, "birthday_care")
    cells = re.findall(r'<td class="num">([^<]*)</td>', row)
    assert cells[-4:] == ["–", "–", "150", "–"]  # incremental AUM, fee income and ROI are null; cost is not


def test_only_the_significant_strategy_is_coloured_and_the_mismatch_is_flagged(html):
    assert '<tr class="sig" data-strategy="maturity_reinvestment">' in html
    assert '<tr class="ns" data-strategy="birthday_care">' in html
    assert 'class="point sig"' in board_row(html, "maturity_reinvestment")
    assert 'class="point ns"' in board_row(html, "dormant_reactivation")
    assert 'badge works">有效<br>Works' in html and 'badge untrustworthy">分组异常<br>Untrustworthy' in html
    after = html.split('data-strategy="dormant_reactivation"', 1)[1]
    assert after.index('class="srm-row"') < after.index("</tbody>")  # the warning row follows its strategy
    assert html.count('class="srm-row"') == 1


def test_the_forest_plots_share_one_axis_with_a_zero_line(html):
    board = section(html, "board").split("<tfoot>")[0]
    zeros = set(re.findall(r'<line x1="([\d.]+)" y1="1.0" x2="[\d.]+" y2="21.0" class="zero"/>', board))
    assert len(zeros) == 1  # the same x in every row
    # domain: every interval and 0 = [-0.021, 0.079], padded by 8% of 0.1 each side -> [-0.029, 0.087]
    lo, hi = -0.029, 0.087
    assert float(zeros.pop()) == pytest.approx(6 + (0 - lo) / (hi - lo) * 178, abs=0.05)  # 190 px wide


def test_a_forest_row_places_point_and_whiskers_on_the_scale():
    domain = svg.forest_domain([{"uplift": 0.01, "ci_low": -0.01, "ci_high": 0.03}])
    assert domain == pytest.approx((-0.0132, 0.0332))
    shapes = svg.forest_row({"uplift": 0.01, "ci_low": -0.01, "ci_high": 0.03, "significant": False}, domain,
                            svg.pp)["shapes"]
    x = lambda v: 6 + (v + 0.0132) / 0.0464 * 228  # noqa: E731  width 240, 6 px margins
    assert shapes[0]["x1"] == pytest.approx(x(0))
    assert (shapes[1]["x1"], shapes[1]["x2"]) == pytest.approx((x(-0.01), x(0.03)))
    point = shapes[-1]
    assert point["cx"] == pytest.approx(x(0.01)) and point["cls"] == "point ns"
    assert point["title"] == "uplift +1.0 pp, 95% CI -1.0 pp .. +3.0 pp"


def test_suggestions_show_their_severity_text_and_evidence(html):
    items = re.findall(r'<li class="(\w+)">(.*?)</li>', section(html, "board"), re.S)
    assert [k for k, _ in items] == ["warning", "critical", "info"]
    warning, critical, info = (body for _, body in items)
    assert "生日关怀已触达3,000位客户" in warning and "Birthday care reached 3,000 customers" in warning
    assert "uplift <b>+0.1 pp</b>" in warning and "treated <b>3,000</b>" in warning
    assert "observed holdout <b>3.9%</b>" in critical or "observed holdout <b>3.8%</b>" in critical
    assert "p value <b>&lt;0.001</b>" in critical
    assert "cost per incremental <b>RMB 1.80</b>" in info and "against cost per incremental <b>RMB 235</b>" in info


def test_a_cheaper_channel_suggestion_shows_both_channels_evidence():
    doc = review()
    doc["suggestions"] = [{"kind": "cheaper_channel", "strategy": "maturity_reinvestment", "severity": "info",
                           "text": {"zh": "短信更省", "en": "sms is cheaper"},
                           "evidence": {"segment": "mass",
                                        "cheaper": {"channel": "sms", "treated": 400, "control": 90, "uplift": 0.02,
                                                    "cost": 20.0, "cost_per_incremental": 2.5},
                                        "dearer": {"channel": "rm", "treated": 50, "control": 12, "uplift": 0.08,
                                                   "cost": 1000.0, "cost_per_incremental": 250.0}}}]
    board = section(full(review=doc), "board")
    assert "sms is cheaper" in board
    assert "channel sms" in board and "channel rm" in board
    assert "RMB 2.50" in board and "RMB 250" in board


def test_each_strategy_has_its_wave_channel_and_segment_breakdown(html):
    board = section(html, "board")
    assert board.count('<details class="breakdown" open>') == 2  # the third has no breakdown yet
    first = board.split('<details class="breakdown" open>')[1]
    for text in ("波次</span>", "渠道</span>", "客群</span>", "reminder", "短信", "客户经理", "财富", "潜力",
                 "+8.5 pp", "+1.8 pp .. +13.1 pp", "40 RM feedback forms"):
        assert text in first
    assert re.search(r"No breakdown yet[^<]*:\s*沉睡客户唤醒 Dormant reactivation\.", board)


# ---------------------------------------------------------------------------- flows and KPIs
def test_stage_distribution_is_a_stacked_bar_per_snapshot(html):
    flows = section(html, "flows")
    assert "<title>2025-01-31 · 成长期 Growing: 8 (80.0%)</title>" in flows
    assert "<title>2025-03-20 · 流失 Churned: 1 (10.0%)</title>" in flows
    assert "(3 snapshots)" in flows


def test_the_transition_heat_map_pools_the_periods_as_shares_of_the_from_stage(html):
    flows = section(html, "flows")
    assert "<title>成长期 Growing → 成长期 Growing: 17 customers (85.0% of 20)</title>" in flows
    assert "<title>成长期 Growing → 成熟期 Mature: 3 customers (15.0% of 20)</title>" in flows
    assert "<title>成熟期 Mature → 离开 left: 1 customers (16.7% of 6)</title>" in flows  # 1 of 2 + 1 + 3
    assert "2 periods pooled" in flows
    assert ">85%</text>" in flows and ">15%</text>" in flows


def test_activation_reactivation_and_churn_are_shown_as_rates(html):
    flows = section(html, "flows")
    assert "66.7%" in flows and "2 of 3 new customers" in flows
    assert "10.00%" in flows and "1 of 10 active customers churned" in flows
    assert "激活率" in flows and "沉睡唤醒率" in flows and "流失率" in flows


def test_kpis_show_retention_products_aum_and_sales(html):
    k = section(html, "kpis")
    assert "<title>2024-11 · 1 m: 100.0%</title>" in k and "<title>2024-11 · 3 m: 80.0%</title>" in k
    assert k.count("<polyline") == 1  # one cohort, its 6 and 12 month points are not there yet
    assert "1.78" in k and "over 9 customers" in k
    assert "RMB 1,234,568" in k and "RMB 617,284" in k and "123.5万" in k
    assert "RMB 1,360,300" in k and "RM00028" in k and "time_deposit 1, wealth 2" in k
    assert "(top 2 of 2; all: RMB 1,365,300)" in k


def test_daily_sales_are_columns_per_day_and_the_newest_days_rows(html):
    k = section(html, "kpis")
    assert "<title>2025-02-28: RMB 1,300,000, 2 accounts</title>" in k
    assert "<title>2025-03-20: RMB 65,300, 2 accounts</title>" in k           # 5,000 + 60,300
    daily = re.search(r'<table class="daily">(.*?)</table>', k, re.S).group(1)
    assert "the rows of 2025-03-20" in k
    assert daily.index("time_deposit") < daily.index("insurance")             # largest amount first
    assert "RMB 60,300" in daily and "no RM" in daily and "wealth" not in daily


def test_kpis_from_compute_and_from_their_json_render_the_same():
    assert full(kpis=kpis(), generated="x") == full(kpis=json.loads(json.dumps(kpis_json(kpis()))), generated="x")


# ---------------------------------------------------------------------------- coverage
def test_the_coverage_heat_map_marks_the_gap_and_the_overlap_with_its_winner(html):
    cov = section(html, "coverage")
    assert cov.count('class="cov gap"') == 2 and cov.count("GAP 缺口") == 2
    assert cov.count('class="cov overlap"') == 1 and "won: 到期续作" in cov
    assert ("<title>财富 Wealth × 衰退期 Declining: 40 customers, AUM RMB 60,000,000; "
            "no strategy reaches it — GAP</title>" in cov)
    assert "到期续作 40</text>" in cov and "生日关怀 12</text>" in cov   # the strategies reaching the cell
    assert "1,200 · 350.0万" in cov                                     # customers and AUM in 万
    gaps = re.search(r'<table class="gaps">(.*?)</table>', cov, re.S).group(1)
    assert gaps.index("财富 Wealth") < gaps.index("大众 Mass") and "RMB 60,000,000" in gaps and "RMB 900,000" in gaps
    overlaps = re.search(r'<table class="overlaps">(.*?)</table>', cov, re.S).group(1)
    assert "到期续作 Maturity reinvestment" in overlaps and '<td class="num">7</td>' in overlaps


def test_coverage_colour_follows_the_customers_on_a_square_root_scale(html):
    cells = {c["segment"] + "/" + c["stage"]: c for c in coverage()["cells"]}
    assert cells["mass/growing"]["customers"] == 1200
    cov = section(html, "coverage")
    assert f'fill="{svg.ramp(1.0)}" class="cov overlap"' in cov                # the biggest cell is the darkest
    assert f'fill="{svg.ramp((500 / 1200) ** 0.5)}" class="cov"' in cov       # payroll x growing


def test_the_ramp_runs_from_near_white_to_navy():
    assert svg.ramp(0) == "#eef3f9" and svg.ramp(1) == "#1f4e79" and svg.ramp(2) == "#1f4e79"


# ---------------------------------------------------------------------------- empty states, safety
def test_missing_inputs_give_plain_empty_state_text_instead_of_failing():
    html = render_report(bank_name="Bank", as_of=None, review=None, kpis=None, coverage=None)
    assert "No post-evaluation is available yet" in section(html, "board")
    assert "No lifecycle KPIs" in section(html, "flows") and "No KPIs for the period" in section(html, "kpis")
    assert "No coverage: no audiences snapshot" in section(html, "coverage")
    assert "<svg" not in html


def test_the_reason_given_for_a_missing_input_is_shown():
    html = render_report(bank_name="Bank", as_of=D3, review=None, kpis=None, coverage=None,
                         missing={"review": "No post-evaluation: no outcomes snapshot to evaluate"})
    assert "No post-evaluation: no outcomes snapshot to evaluate" in section(html, "board")


def test_a_review_with_no_strategy_says_no_strategy_has_entries_yet():
    doc = review() | {"strategies": [], "suggestions": []}
    board = section(full(review=doc), "board")
    assert "No strategy has entries yet" in board and "No suggestion" in board


def test_a_strategy_with_no_headline_yet_renders_dashes():
    doc = review()
    s = doc["strategies"][1]
    s.update(headline=None, verdict="too_early", sample_ratio=None, money=None, breakdowns=None, feedback=None)
    row = board_row(full(review=doc), "birthday_care")
    assert 'badge too_early">数据不足<br>Too early' in row and ">–</text>" in row


def test_the_report_loads_nothing_from_outside_the_file(html):
    for page in (html, render_report(bank_name="B", as_of=None, review=None, kpis=None, coverage=None)):
        targets = re.findall(r'(?:src|href)\s*=\s*"([^"]*)"', page) + re.findall(r"url\(([^)]*)\)", page)
        assert targets and all(t.startswith("#") or t.startswith("data:") for t in targets), targets
        assert "http://" not in page and "https://" not in page and not re.search(r'["(\s]//', page)
        assert "<script" not in page and "@import" not in page and "<link" not in page


def test_text_from_the_data_is_escaped():
    doc = review()
    doc["strategies"][0]["name"] = {"zh": "<script>alert(1)</script>", "en": 'A & "B"'}
    doc["strategies"][0]["owner"] = "<b>HQ</b>"
    html = full(review=doc)
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;b&gt;HQ&lt;/b&gt;" in html and "A &amp; &#34;B&#34;" in html


def test_rendering_does_not_change_its_inputs():
    r, k, c = review(), kpis(), coverage()
    before = copy.deepcopy((r, k, c))
    render_report(bank_name="B", as_of=D3, review=r, kpis=k, coverage=c)
    assert (r, k, c) == before


def test_number_formats():
    assert svg.amount(-150000.0) == "-150,000" and svg.amount(None) == "–"
    assert svg.money(1200000.0) == "RMB 1,200,000" and svg.money(1.8) == "RMB 1.80" and svg.money(None) == "–"
    assert svg.money(0.0) == "RMB 0" and svg.money(-99.5) == "RMB -99.50"
    assert svg.wan(75992849.52) == "7,599.3万" and svg.wan(1.2e9) == "12.00亿" and svg.wan(320) == "320元"
    assert svg.pp(-0.021) == "-2.1 pp" and svg.pct(0.0998) == "10.0%" and svg.pval(0.00099) == "<0.001"
    assert svg.roi(0.89) == "+89%" and svg.num(1234567) == "1,234,567" and svg.num(float("nan")) == "–"
    assert svg.nice_ticks(-0.029, 0.087, 6) == pytest.approx([-0.02, 0.0, 0.02, 0.04, 0.06, 0.08])
    assert svg.nice_ticks(0, 1, 5) == pytest.approx([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    assert svg.tick_points(0.02) == "+2" and svg.tick_points(-0.005) == "-0.5" and svg.tick_money(12000) == "+1.2万"
    assert svg.tick_money(-1.5e6) == "-150万" and svg.tick_money(2000) == "+2,000" and svg.tick_money(3e8) == "+3亿"
    assert svg.tick_money(-2.5) == "-2.5"


# ---------------------------------------------------------------------------- the command
class _Lake:
    def __init__(self, dates):
        self._dates = dates

    def dates(self, area):
        return sorted(self._dates.get(area, []))


class _Ctx:
    """Just enough of a Context for the KPI window: published lifecycle dates, and kpis() recording its window."""

    def __init__(self, lifecycle):
        self.lake = _Lake({"lifecycle": lifecycle})
        self.asked = None

    def kpis(self, start, end):
        self.asked = (start, end)
        return {"window": (start, end)}


def test_the_kpi_window_is_the_last_90_days_of_snapshots_clamped_to_what_is_published():
    from lifeloop.cli.report import load_kpis

    month_ends = [dt.date(2024, m, 28) for m in range(1, 13)]
    ctx, missing = _Ctx(month_ends), {}
    load_kpis(ctx, None, None, missing)
    assert ctx.asked == (dt.date(2024, 12, 28) - dt.timedelta(days=90), dt.date(2024, 12, 28)) and not missing
    load_kpis(ctx, dt.date(2024, 2, 10), None, missing)          # --as-of: the newest snapshot on or before it
    assert ctx.asked == (dt.date(2024, 1, 28), dt.date(2024, 1, 28))
    load_kpis(ctx, None, dt.date(2024, 6, 1), missing)           # --from
    assert ctx.asked == (dt.date(2024, 6, 1), dt.date(2024, 12, 28))
    assert load_kpis(ctx, dt.date(2023, 12, 31), None, missing) is None
    assert "No lifecycle snapshot is published on or before 2023-12-31" in missing["kpis"]


def test_from_after_the_newest_snapshot_is_an_error_that_says_what_to_do():
    from lifeloop.cli.report import load_kpis
    from lifeloop.errors import LifeloopError

    with pytest.raises(LifeloopError, match="--from 2025-01-01 is after the newest lifecycle snapshot 2024-01-28") as e:
        load_kpis(_Ctx([dt.date(2024, 1, 28)]), None, dt.date(2025, 1, 1), {})
    assert "2024-01-28" in e.value.hint


def test_the_command_writes_the_report_of_an_empty_workspace_and_says_why_sections_are_empty(tmp_path):
    from rich.console import Console

    from lifeloop.cli.report import report_command
    from lifeloop.context import Context

    out = Console(record=True, width=200)
    target = tmp_path / "reports" / "board.html"
    with Context.init(tmp_path / "bank") as ctx:
        report_command(ctx, out, target, None, None)
    html = target.read_text(encoding="utf-8")
    assert "Demo Retail Bank" in html
    assert "No lifecycle snapshot is published" in section(html, "flows")
    assert "No audiences snapshot is published" in section(html, "coverage")
    assert "post-evaluation" in section(html, "board").lower()
    assert [p.name for p in target.parent.iterdir()] == ["board.html"]  # no temporary file left behind
    text = out.export_text()
    assert f"{target} ({len(html.encode('utf-8')):,} bytes)" in text.replace("\n", "")


def test_an_amount_headline_gets_its_own_axis_in_rmb():
    doc = review()
    s = doc["strategies"][1]
    s["headline"] = {"outcome": "aum_change", "kind": "amount", "treated_mean": 5200.0, "control_mean": 4000.0,
                     "uplift": 1200.0, "ci_low": -300.0, "ci_high": 2700.0, "p_value": 0.12, "significant": False}
    s["breakdowns"] = {"wave": [], "channel": [], "segment": []}
    html = full(review=doc)
    row = board_row(html, "birthday_care")
    assert "+RMB 1,200" in row and "-RMB 300 .. +RMB 2,700" in row and "RMB 5,200 vs RMB 4,000" in row
    foot = section(html, "board").split("<tfoot>")[1].split("</tfoot>")[0]
    assert "one shared axis" in foot and "each on its own scale" in foot
    assert ">+8</text>" in foot and "RMB" not in re.sub(r"<td[^>]*>[^<]*(<br>[^<]*)?</td>", "", foot)
    # the amount row draws its own scale, 0 included: domain -300 .. 2,700 padded by 240 each side
    assert ">0</text>" in row and ">+2,000</text>" in row and ">+1,000</text>" in row
    shared = svg.forest_domain([s["headline"] for s in doc["strategies"] if s["headline"]["kind"] == "binary"])
    assert shared == pytest.approx((-0.029, 0.087))  # the rate rows' axis ignores the RMB interval


def test_a_cell_reached_by_many_strategies_lists_the_biggest_and_counts_the_rest():
    cov = coverage()
    cov["cells"][3]["strategies"] = {"a": 5, "b": 9, "c": 1, "d": 2}
    payroll = section(full(coverage=cov), "coverage")
    assert "b 9</text>" in payroll and "a 5</text>" in payroll and "+2 more</text>" in payroll
    assert "c 1</text>" not in payroll and "<title>代发 Payroll × 成长期 Growing" in payroll


def _numeric_paths(node, path=()):
    if isinstance(node, bool) or node is None:
        return
    if isinstance(node, (int, float)):
        yield path
    elif isinstance(node, dict):
        for k, v in node.items():
            yield from _numeric_paths(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _numeric_paths(v, (*path, i))


NUMBERS = sorted(_numeric_paths(review()), key=str)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(NUMBERS), unique=True, max_size=len(NUMBERS)))
def test_any_numeric_field_of_the_review_may_be_null(nulls):
    doc = review()
    for path in nulls:
        node = doc
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = None
    html = full(review=doc)
    for s in doc["strategies"]:
        assert f'data-strategy="{s["strategy"]}"' in html
    assert "nan" not in re.sub(r"<[^>]+>", "", html).lower().split()


def test_the_review_comes_from_the_lake_evaluation_interim_on_request_and_its_error_becomes_the_reason(monkeypatch):
    import lifeloop.cli.report as cli_report
    from lifeloop.cli.report import load_review
    from lifeloop.errors import DataError

    calls = []

    def fake(ctx, as_of=None, strategies=(), interim=False):
        calls.append((as_of, interim))
        if as_of == D1:
            raise DataError("no outcomes snapshot to evaluate on or before 2025-01-31", hint="run the daily steps")
        return review()

    monkeypatch.setattr(cli_report, "evaluate_lake", fake)
    missing: dict = {}
    assert load_review(None, D3, missing)["schema"] == "lifeloop.review/1" and not missing
    assert load_review(None, D3, missing, interim=True) is not None
    assert load_review(None, D1, missing) is None
    assert calls == [(D3, False), (D3, True), (D1, False)]
    assert missing["review"] == ("No post-evaluation: no outcomes snapshot to evaluate on or before 2025-01-31 "
                                 "(run the daily steps)")


def test_a_featured_group_named_like_a_tier_is_its_own_row_and_not_marked_by_the_tiers_gap():
    cov = coverage()
    cov["segments"].append({"kind": "group", "segment": "wealth"})
    cov["cells"].append({"kind": "group", "segment": "wealth", "stage": "declining", "customers": 30, "aum": 1e6,
                         "strategies": {"birthday_care": 3}, "contested": 0, "wins": {}})
    html = section(full(coverage=cov), "coverage")
    assert html.count('class="cov gap"') == 2 and html.count("GAP 缺口") == 2  # the tier's gap only
    assert "生日关怀 3</text>" in html


def test_a_stage_keeps_its_colour_whichever_stages_are_present(html):
    churned = svg.PALETTE[list(DEFAULT_LABELS["stage"]).index("churned")]
    assert f'<i style="background:{churned}"></i>流失 Churned' in section(html, "flows")


def test_selection_cells_show_each_selection_against_its_control_and_the_difference_with_its_verdict():
    doc = review()
    doc["strategies"][0]["selections"] = {
        "outcome": "retained", "kind": "binary", "alpha": 0.05, "control_without_cell": 0,
        "cells": [{"cell": "model", "select": "score('churn') >= 0.6", "treated": 1000, "control": 400,
                   "treated_mean": 0.75, "control_mean": 0.55, "uplift": 0.2, "se": 0.03, "ci_low": 0.14,
                   "ci_high": 0.26},
                  {"cell": "rule", "select": "stage = 'declining'", "treated": 1500, "control": 600,
                   "treated_mean": 0.8, "control_mean": 0.75, "uplift": 0.05, "se": 0.02, "ci_low": 0.01,
                   "ci_high": 0.09}],
        "differences": [{"cell": "model", "against": "rule", "difference": 0.15, "se": 0.036, "ci_low": 0.08,
                         "ci_high": 0.22, "p_value": 0.00003, "verdict": "differs", "better": "model"}]}
    board = section(full(review=doc), "board")
    assert "模型组 vs 非模型组" in board and "score(&#39;churn&#39;) &gt;= 0.6" in board
    assert "+20.0 pp (+14.0 pp .. +26.0 pp)" in board and "75.0% vs 55.0%" in board
    assert "model − rule" in board and "+15.0 pp (+8.0 pp .. +22.0 pp)" in board
    assert "有差异 differs" in board and "model selects better" in board
    assert "模型组 vs 非模型组" not in section(full(), "board")   # only strategies with selection cells


# ---------------------------------------------------------------------------- section 5: model lift
def evaluation(lift_values: list[float], in_sample: bool = False) -> dict:
    metric = {"value": 0.8, "ci95": [0.7, 0.9]}
    return {"model": "churn", "version": "v2", "label": "stage becomes dormant or churned within 90 days",
            "in_sample": in_sample, "window": {"features_as_of": "2024-09-23", "outcomes_until": "2024-12-22"},
            "metrics": {"customers": 1000, "positives": 50, "auc": metric, "pr_auc": metric, "top_decile_lift": metric},
            "rule_declining": {"auc": metric, "pr_auc": metric, "top_decile_lift": metric},
            "lift": [{"decile": i + 1, "customers": 100, "positives": round(v * 5), "rate": v * 0.05, "lift": v,
                      "cumulative_capture": 0.1 * (i + 1)} for i, v in enumerate(lift_values)]}


def test_the_models_section_draws_one_bar_per_decile_proportional_to_the_lift():
    lifts = [4.0, 2.0, 1.0, 1.0, 0.5, 0.5, 0.4, 0.3, 0.2, 0.1]
    chart = svg.lift_chart(evaluation(lifts)["lift"], "lift")
    bars = [s for s in chart["shapes"] if s["kind"] == "rect"]
    assert len(bars) == 10
    assert [b["height"] / bars[0]["height"] for b in bars] == pytest.approx([v / 4.0 for v in lifts])
    [one] = [s for s in chart["shapes"] if s["kind"] == "line" and s.get("cls") == "zero"]
    assert bars[2]["y"] == pytest.approx(one["y1"])                  # lift 1 reaches the random-targeting line
    html = render_report(bank_name="Bank", as_of=None, review=None, kpis=None, coverage=None,
                         models=[evaluation(lifts, in_sample=True)])
    body = section(html, "models")
    assert "模型" in body and "churn v2" in body and body.count("<rect") == 10 and "In sample" in body
    assert "0.800 [0.700, 0.900]" in body and "decile 1: 100 customers, 20 positive" in body


def test_without_an_evaluated_model_the_section_says_so():
    html = render_report(bank_name="Bank", as_of=None, review=None, kpis=None, coverage=None)
    assert "No active classifier" in section(html, "models")
