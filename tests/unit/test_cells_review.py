"""Cells in the review (lifeloop.review/1): every cell against the control, every pair of cells, and the two
suggestions drawn from them (``wave_adds_nothing``, ``cell_wins``) — on hand-made outcomes, against statsmodels."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
from statsmodels.stats import proportion
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

from lifeloop.review.lake_evaluation import review_table
from lifeloop.review.suggestions import suggest
from tests.fixtures.outcomes_tables import AS_OF, config, flags, rows, strategy, table

TOL = 1e-12
DOC = Path(__file__).resolve().parents[2] / "docs" / "review.md"
JOURNEY = [{"id": "short", "share": 0.5, "waves": ["w1"]}, {"id": "long", "share": 0.5}]
SCRIPTS = [{"id": "script_a", "share": 0.5}, {"id": "script_b", "share": 0.5,
                                              "scripts": {"sms": {"zh": "B", "en": "B"}}}]


def cell_rows(sid, cell, n, buyers, start, **columns):
    """``n`` treated entries of one cell, the first ``buyers`` of them bought."""
    out = rows(sid, "treated", n, purchased=flags(buyers, n), start=start, **columns)
    for r in out:
        r["cell"] = cell
    return out


def review(*parts, cells=JOURNEY, interim=False, holdout=0.5):
    s = strategy("buy", holdout=holdout, cells=cells)
    return review_table(table(*parts), config(s), AS_OF, interim=interim)


def journey(short=(25, 250), long=(28, 250), control=(5, 60), short_cost=0.05, long_cost=3.05, **kw):
    """Short cell (w1 only) and long cell (w1 + w2): (buyers, entries) each, and the control."""
    planned = control[1] / (control[1] + short[1] + long[1])   # the planned holdout: no sample-ratio alarm
    return review(cell_rows("buy", "short", short[1], short[0], 0, cost=short_cost),
                  cell_rows("buy", "long", long[1], long[0], 1000, cost=long_cost),
                  rows("buy", "control", control[1], purchased=flags(*control)), holdout=planned, **kw)


def test_each_cell_against_control_and_the_pair_of_cells_equal_statsmodels_with_holm_within_each_family():
    doc = review(cell_rows("buy", "script_a", 40, 20, 0), cell_rows("buy", "script_b", 40, 12, 100),
                 rows("buy", "control", 40, purchased=flags(10, 40)), cells=SCRIPTS)
    s = doc["strategies"][0]
    # the headline stays all treated against control: 32 of 80 against 10 of 40
    assert (s["headline"]["treated_mean"], s["headline"]["control_mean"]) == (0.4, 0.25)
    assert [c["cell"] for c in s["cells"]] == ["script_a", "script_b"]
    a, b = s["cells"]
    assert (a["treated"], a["waves"], a["scripts"], a["planned_share"]) == (40, ["w1", "w2"], [], 0.5)
    assert (b["scripts"], a["cost"], a["cost_per_entry"]) == (["sms"], 80.0, 2.0)
    p = {}
    for cell, (x, n) in (("script_a", (20, 40)), ("script_b", (12, 40))):
        low, high = proportion.confint_proportions_2indep(x, n, 10, 40, method="newcomb")
        p[cell] = proportion.test_proportions_2indep(x, n, 10, 40, method="score", correction=False).pvalue
        got = {c["cell"]: c for c in s["cells"]}[cell]["versus_control"]
        assert (got["outcome"], got["kind"], got["cell_mean"], got["against_mean"]) == ("purchased", "binary",
                                                                                        x / n, 0.25)
        assert got["uplift"] == pytest.approx(x / n - 0.25, abs=TOL)
        assert (got["ci_low"], got["ci_high"], got["p_value"]) == (
            pytest.approx(low, abs=TOL), pytest.approx(high, abs=TOL), pytest.approx(p[cell], abs=TOL))
    holm = multipletests([p["script_a"], p["script_b"]], method="holm")[1]
    assert [c["versus_control"]["p_holm"] for c in s["cells"]] == [pytest.approx(h, abs=TOL) for h in holm]
    # Holm by hand: the smaller p doubled, the larger kept (not below the first)
    small, large = sorted(p.values())
    assert sorted(holm) == [pytest.approx(2 * small), pytest.approx(max(2 * small, large))]
    (pair,) = s["pairwise"]
    low, high = proportion.confint_proportions_2indep(20, 40, 12, 40, method="newcomb")
    test = proportion.test_proportions_2indep(20, 40, 12, 40, method="score", correction=False)
    assert (pair["cell"], pair["against"], pair["cell_mean"], pair["against_mean"]) == ("script_a", "script_b",
                                                                                        0.5, 0.3)
    assert (pair["uplift"], pair["ci_low"], pair["ci_high"], pair["p_value"], pair["p_holm"]) == (
        pytest.approx(0.2, abs=TOL), pytest.approx(low, abs=TOL), pytest.approx(high, abs=TOL),
        pytest.approx(test.pvalue, abs=TOL), pytest.approx(test.pvalue, abs=TOL))   # a family of one
    assert pair["significant"] is False and round(test.pvalue, 4) == 0.0679


def test_a_money_primary_compares_cells_with_welch():
    grow = strategy("grow", metric="inflow", product=None, cells=SCRIPTS)
    a, b, c = [10.0, 20, 30, 40, 50], [5.0, 6, 7, 8, 30], [1.0, 2, 3, 4, 5]
    parts = [rows("grow", "treated", 5, product=False, inflow=a), rows("grow", "treated", 5, product=False,
                                                                        inflow=b, start=10),
             rows("grow", "control", 5, product=False, inflow=c)]
    for r in parts[0]:
        r["cell"] = "script_a"
    for r in parts[1]:
        r["cell"] = "script_b"
    s = review_table(table(*parts), config(grow), AS_OF)["strategies"][0]
    cm = CompareMeans(DescrStatsW(np.array(a)), DescrStatsW(np.array(b)))
    _, p, _ = cm.ttest_ind(usevar="unequal")
    low, high = cm.tconfint_diff(usevar="unequal")
    (pair,) = s["pairwise"]
    assert (pair["kind"], pair["cuped"], pair["uplift"]) == ("amount", False, pytest.approx(30 - 11.2, abs=1e-9))
    assert (pair["ci_low"], pair["ci_high"], pair["p_value"]) == (pytest.approx(low, abs=1e-9),
                                                                  pytest.approx(high, abs=1e-9),
                                                                  pytest.approx(p, abs=1e-12))


def test_cells_too_small_to_compare_are_counted_without_comparisons():
    s = review(cell_rows("buy", "short", 1, 1, 0), cell_rows("buy", "long", 30, 3, 10),
               rows("buy", "control", 30, purchased=flags(3, 30)))["strategies"][0]
    assert [(c["cell"], c["treated"]) for c in s["cells"]] == [("short", 1), ("long", 30)]
    assert s["cells"][0]["versus_control"] is None and s["cells"][1]["versus_control"]["uplift"] == 0.0
    assert s["pairwise"] == []


def test_a_strategy_without_cells_has_no_cell_keys():
    s = review_table(table(rows("buy", "treated", 4, purchased=flags(2, 4)),
                           rows("buy", "control", 4, purchased=flags(1, 4))), config(strategy("buy")),
                     AS_OF)["strategies"][0]
    assert "cells" not in s and "pairwise" not in s


# ------------------------------------------------------------------------------------------ suggestions
def kinds(doc, kind):
    return [x for x in doc["suggestions"] if x["kind"] == kind]


def test_a_later_wave_that_adds_nothing_but_cost_is_named_with_its_evidence():
    doc = journey()
    (x,) = kinds(doc, "wave_adds_nothing")
    low, high = proportion.confint_proportions_2indep(28, 250, 25, 250, method="newcomb")
    e = x["evidence"]
    assert (x["strategy"], x["severity"]) == ("buy", "warning")
    assert (e["shorter_cell"], e["shorter_waves"], e["shorter_treated"], e["shorter_mean"]) == (
        "short", ["w1"], 250, 0.1)
    assert (e["longer_cell"], e["longer_waves"], e["longer_treated"], e["longer_mean"]) == (
        "long", ["w1", "w2"], 250, 0.112)
    assert e["added_waves"] == ["w2"] and e["uplift"] == pytest.approx(0.012, abs=TOL)
    assert (e["ci_low"], e["ci_high"]) == (pytest.approx(low, abs=TOL), pytest.approx(high, abs=TOL))
    assert (e["shorter_cost_per_entry"], e["longer_cost_per_entry"]) == (0.05, 3.05)
    assert (e["extra_cost_per_entry"], e["extra_cost"]) == (pytest.approx(3.0), pytest.approx(750.0))
    assert "w2" in x["text"]["zh"] and "not significantly better on purchased" in x["text"]["en"]
    assert "750.00 RMB in all" in x["text"]["en"]
    assert kinds(doc, "cell_wins") == []


@pytest.mark.parametrize("change, why", [
    (dict(long=(60, 250)), "the longer journey is significantly better"),
    (dict(long_cost=0.05), "the longer journey costs no more"),
    (dict(short=(25, 199)), "the shorter cell has fewer than 200 entries"),
    (dict(interim=True), "windows still running"),
])
def test_no_wave_adds_nothing_without_its_evidence(change, why):
    assert kinds(journey(**change), "wave_adds_nothing") == [], why


def test_a_significantly_better_longer_journey_is_a_cell_that_wins():
    (x,) = kinds(journey(long=(60, 250)), "cell_wins")
    e = x["evidence"]
    assert (e["winner_cell"], e["loser_cell"], e["winner_mean"], e["loser_mean"]) == ("long", "short", 0.24, 0.1)
    assert e["uplift"] == pytest.approx(0.14, abs=TOL) and e["p_holm"] < 0.05
    low, high = proportion.confint_proportions_2indep(60, 250, 25, 250, method="newcomb")
    assert (e["ci_low"], e["ci_high"]) == (pytest.approx(low, abs=TOL), pytest.approx(high, abs=TOL))


def test_script_b_beating_script_a_is_a_cell_that_wins_and_no_wave_finding():
    doc = review(cell_rows("buy", "script_a", 250, 30, 0), cell_rows("buy", "script_b", 250, 60, 1000),
                 rows("buy", "control", 60, purchased=flags(6, 60)), cells=SCRIPTS, holdout=60 / 560)
    (x,) = kinds(doc, "cell_wins")
    assert (x["evidence"]["winner_cell"], x["evidence"]["loser_cell"]) == ("script_b", "script_a")
    assert "script_b beats cell script_a" in x["text"]["en"]
    assert kinds(doc, "wave_adds_nothing") == []
    assert suggest(doc) == doc["suggestions"]


def test_a_cell_split_far_from_its_planned_shares_is_the_only_cell_finding():
    # 250 and 150 entries where 200 and 200 were planned: chi2 = 50^2/200 x 2 = 25, p = exp(-12.5) (1 degree of freedom)
    doc = journey(long=(15, 150))
    s = doc["strategies"][0]
    assert [c["observed_share"] for c in s["cells"]] == [pytest.approx(250 / 400), pytest.approx(150 / 400)]
    ratio = s["cell_sample_ratio"]
    assert ratio["chi2"] == pytest.approx(25.0) and ratio["mismatch"] is True
    assert ratio["p_value"] == pytest.approx(math.erfc(5 / math.sqrt(2)), rel=1e-9)
    (x,) = kinds(doc, "cell_split_mismatch")
    assert x["severity"] == "critical" and x["evidence"]["observed_shares"] == [0.625, 0.375]
    assert kinds(doc, "wave_adds_nothing") == [] and kinds(doc, "cell_wins") == []
    assert journey()["strategies"][0]["cell_sample_ratio"]["mismatch"] is False


# ------------------------------------------------------------------------------------------ the documentation
def documented_cell_fields() -> list[str]:
    text = DOC.read_text(encoding="utf-8")
    start = text.index("### Cells in the review")
    end = text.find("\n### ", start + 1)
    fields = []
    for line in text[start:end].splitlines():
        if line.startswith("| `"):
            fields += re.findall(r"`([^`]+)`", line.split("|")[1])
    return fields


def paths(doc, prefix=""):
    out = []
    if isinstance(doc, dict):
        for key, value in doc.items():
            path = f"{prefix}.{key}" if prefix else key
            out.append(path)
            out += paths(value, path)
    elif isinstance(doc, list):
        for item in doc:
            out += paths(item, prefix + "[]")
    return out


def test_every_cell_key_and_cell_suggestion_evidence_is_documented_and_produced():
    docs = [journey(), journey(long=(60, 250)), journey(long=(15, 150))]
    produced = set()
    for doc in docs:
        assert json.loads(json.dumps(doc)) == doc
        for s in doc["strategies"]:
            produced |= {f"strategies[].{p}" for p in paths({k: s[k] for k in ("cells", "pairwise",
                                                                               "cell_sample_ratio")})}
        for x in doc["suggestions"]:
            if x["kind"] in ("wave_adds_nothing", "cell_wins", "cell_split_mismatch"):
                produced |= {f"suggestions[].evidence.{k}" for k in x["evidence"]}
    documented = set(documented_cell_fields())
    assert sorted(produced - documented) == [], "document these keys in docs/review.md, 'Cells in the review'"
    assert sorted(documented - produced) == [], "docs/review.md documents cell keys the review no longer writes"


def test_the_board_shows_each_cell_and_the_pair_and_the_html_report_shows_the_finding():
    from rich.console import Console

    from lifeloop.review.board import print_board
    from lifeloop.review.report import render_report

    doc = journey()
    console = Console(record=True, width=200)
    print_board(console, doc, detail=True)
    text = console.export_text()
    assert "buy: purchased by cell (实验分组)" in text
    assert "│ short │ w1     │ –           │     250 │     50.0% (50%) │" in text and "│ long  │ w1, w2 │" in text
    assert "long vs short: 11.20% vs 10.00%, +1.20pp (-4.28pp .. +6.69pp), p (Holm) 0.6630" in text
    assert "drop w2 or change its channel or script" in text
    html = render_report(bank_name="B", as_of=AS_OF, review=doc, kpis=None, coverage=None)
    assert "wave adds nothing" in html and "extra cost" in html
