"""The sample-ratio check tests every arm against its planned share (multi-arm chi-square), not control vs pooled."""

import numpy as np
import pytest
from scipy.stats import chisquare

from lifeloop.review.evaluation import evaluate, planned_shares, sample_ratio, sample_ratio_arms
from lifeloop.review.from_file import evaluate_file
from lifeloop.review.render import evaluation_json
from tests.fixtures.outcomes_tables import flags, rows
from tests.unit.test_cells_review import cell_rows, review

TOL = 1e-12


def campaign_csv(path, counts):
    lines = ["cell,bought"] + [f"{arm},{i % 2}" for arm, n in counts.items() for i in range(n)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_the_check_equals_scipy_chisquare_over_every_arm_against_its_planned_share():
    counts = {"ctl": 95, "sms": 470, "rm_call": 435}
    planned = planned_shares(list(counts), "ctl", 0.1)
    assert planned == {"ctl": 0.1, "sms": 0.45, "rm_call": 0.45}
    srm = sample_ratio_arms(counts, planned, control="ctl")
    chi2, p = chisquare([95, 470, 435], f_exp=[100, 450, 450])
    assert (srm.chi2, srm.p_value, srm.degrees_of_freedom) == (pytest.approx(chi2, abs=TOL),
                                                             pytest.approx(p, abs=TOL), 2)
    assert [(a.arm, a.customers, a.expected) for a in srm.arms] == [("ctl", 95, 100), ("sms", 470, 450),
                                                                     ("rm_call", 435, 450)]


def test_two_thousand_rows_moved_between_treated_arms_is_a_mismatch_though_the_pooled_split_is_exact(tmp_path):
    # planned: 10% control, the rest equal between sms and rm_call; 20,000 customers
    planned = {"ctl": 2_000, "sms": 9_000, "rm_call": 9_000}
    moved = {"ctl": 2_000, "sms": 7_000, "rm_call": 11_000}
    assert not sample_ratio(2_000, 18_000, 0.1).mismatch   # what the pooled check said: "ok"
    ev = evaluate_file(campaign_csv(tmp_path / "moved.csv", moved), arm="cell", control="ctl", outcomes=["bought"],
                       holdout=0.1)
    chi2, p = chisquare([2_000, 11_000, 7_000], f_exp=[2_000, 9_000, 9_000])   # control first, then arms by name
    assert ev.sample_ratio.chi2 == pytest.approx(chi2, abs=1e-9) == pytest.approx(2 * 2_000**2 / 9_000)
    assert ev.sample_ratio.p_value == pytest.approx(p, rel=1e-9) and p < 1e-100
    assert ev.sample_ratio.mismatch
    assert any("arm rm_call is 55.00%, planned 45.00%" in n for n in ev.notes)
    fine = evaluate_file(campaign_csv(tmp_path / "planned.csv", planned), arm="cell", control="ctl",
                         outcomes=["bought"], holdout=0.1)
    assert not fine.sample_ratio.mismatch and fine.sample_ratio.chi2 == pytest.approx(0, abs=TOL)


def test_the_json_lists_every_arm_of_the_check():
    arms = np.array(["ctl"] * 30 + ["a"] * 40 + ["b"] * 50)
    doc = evaluation_json(evaluate(arms, {"y": np.arange(120.0)}, control="ctl", holdout=0.25))
    srm = doc["sample_ratio"]
    assert srm["arms"] == [
        {"arm": "ctl", "customers": 30, "planned_share": 0.25, "observed_share": 0.25, "expected": 30.0},
        {"arm": "a", "customers": 40, "planned_share": 0.375, "observed_share": 40 / 120, "expected": 45.0},
        {"arm": "b", "customers": 50, "planned_share": 0.375, "observed_share": 50 / 120, "expected": 45.0}]
    assert srm["degrees_of_freedom"] == 2
    assert srm["p_value"] == pytest.approx(chisquare([30, 40, 50], f_exp=[30, 45, 45]).pvalue, abs=TOL)


def test_the_lake_review_tests_control_and_each_cell_against_holdout_and_cell_shares():
    # 60 control, cells planned 50/50 of the rest at a 10% holdout; the control share is exact, the cells are not
    doc = review(cell_rows("buy", "short", 330, 30, 0), cell_rows("buy", "long", 210, 20, 1000),
                 rows("buy", "control", 60, purchased=flags(6, 60)), holdout=0.1)
    s = doc["strategies"][0]
    srm = s["sample_ratio"]
    assert [(a["arm"], a["customers"], a["expected"]) for a in srm["arms"]] == [
        ("control", 60, pytest.approx(60)), ("short", 330, pytest.approx(270)), ("long", 210, pytest.approx(270))]
    assert srm["p_value"] == pytest.approx(chisquare([60, 330, 210], f_exp=[60, 270, 270]).pvalue, rel=1e-9)
    assert srm["mismatch"] and s["verdict"] == "untrustworthy"
    assert sample_ratio(60, 540, 0.1).p_value == pytest.approx(1.0)   # control vs treated pooled saw nothing
    assert [x["kind"] for x in doc["suggestions"]] == ["cell_split_mismatch"]


def test_a_strategy_without_cells_is_checked_as_control_against_treated():
    doc = review(rows("buy", "treated", 180, purchased=flags(30, 180)), rows("buy", "control", 20,
                                                                               purchased=flags(2, 20)),
                 cells=[], holdout=0.1)
    srm = doc["strategies"][0]["sample_ratio"]
    assert [a["arm"] for a in srm["arms"]] == ["control", "treated"] and srm["p_value"] == pytest.approx(1.0)
