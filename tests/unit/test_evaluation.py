"""Post-evaluation numbers on a small hand-made experiment: by hand, with statsmodels directly, and ours.

The experiment: 30 customers, 10 per arm (control "ctl", arms "A" and "B").

  bought (0/1):   ctl 2 of 10, A 6 of 10, B 3 of 10
  aum_change:     ctl 100,200,300,400,500 twice   mean 300, squares about the mean 200,000, var 200,000/9
                  A   200,400,600,800,1000 twice  mean 600, squares 800,000,                var 800,000/9
                  B   150,250,350,450,550 twice   mean 350, squares 200,000,                var 200,000/9
"""

import math

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats import proportion
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

from lifeloop.errors import DataError
from lifeloop.review.evaluation import (
    compare_means,
    compare_rates,
    cuped_adjust,
    cuped_theta,
    evaluate,
    holm,
    sample_ratio,
)
from lifeloop.review.render import evaluation_json

TOL = 1e-12
Z975 = 1.959963984540054  # the 97.5% normal quantile, for hand-computed 95% intervals


def arms():
    return np.array(["ctl"] * 10 + ["A"] * 10 + ["B"] * 10)


def bought():
    return np.array([1, 1] + [0] * 8 + [1] * 6 + [0] * 4 + [1] * 3 + [0] * 7, dtype=float)


def aum_change():
    ctl = [100, 200, 300, 400, 500] * 2
    a = [200, 400, 600, 800, 1000] * 2
    b = [150, 250, 350, 450, 550] * 2
    return np.array(ctl + a + b, dtype=float)


def wilson(successes, n):
    """Wilson's score interval for one rate, by its closed form."""
    p = successes / n
    centre = (p + Z975**2 / (2 * n)) / (1 + Z975**2 / n)
    half = Z975 * math.sqrt(p * (1 - p) / n + Z975**2 / (4 * n * n)) / (1 + Z975**2 / n)
    return centre - half, centre + half


def test_a_rate_difference_matches_the_pooled_z_test_and_newcombes_interval_by_hand():
    # A 6/10 = 0.6 vs ctl 2/10 = 0.2: uplift 0.4. Pooled rate 8/20 = 0.4;
    # se0 = sqrt(0.4 * 0.6 * (1/10 + 1/10)) = sqrt(0.048) = 0.21909; z = 0.4 / 0.21909 = 1.82574; p = 0.0679
    d = compare_rates(6, 10, 2, 10)
    z = 0.4 / math.sqrt(0.4 * 0.6 * (1 / 10 + 1 / 10))
    assert d.estimate == pytest.approx(0.4, abs=TOL)
    assert d.statistic == pytest.approx(z, abs=TOL)
    assert d.p_value == pytest.approx(math.erfc(z / math.sqrt(2)), abs=TOL)
    assert round(d.p_value, 4) == 0.0679
    # Newcombe (1998) method 10: L = d - sqrt((p1 - l1)^2 + (u0 - p0)^2), U = d + sqrt((u1 - p1)^2 + (p0 - l0)^2)
    l1, u1 = wilson(6, 10)
    l0, u0 = wilson(2, 10)
    assert d.ci_low == pytest.approx(0.4 - math.sqrt((0.6 - l1) ** 2 + (u0 - 0.2) ** 2), abs=TOL)
    assert d.ci_high == pytest.approx(0.4 + math.sqrt((u1 - 0.6) ** 2 + (0.2 - l0) ** 2), abs=TOL)
    # and statsmodels, called directly
    sm = proportion.test_proportions_2indep(6, 10, 2, 10, method="score", correction=False)
    assert (d.statistic, d.p_value) == (pytest.approx(sm.statistic, abs=TOL), pytest.approx(sm.pvalue, abs=TOL))
    low, high = proportion.confint_proportions_2indep(6, 10, 2, 10, method="newcomb")
    assert (d.ci_low, d.ci_high) == (pytest.approx(low, abs=TOL), pytest.approx(high, abs=TOL))


def test_a_mean_difference_matches_welchs_t_test_by_hand_and_in_statsmodels_and_scipy():
    y = aum_change()
    a, ctl = y[10:20], y[:10]
    d = compare_means(a, ctl)
    # uplift 600 - 300 = 300; se = sqrt(800000/9/10 + 200000/9/10) = sqrt(11111.1) = 105.409
    # Welch-Satterthwaite df = (v1 + v0)^2 / (v1^2/9 + v0^2/9) with v1 = 4 v0: 25 * 9 / 17 = 13.2353
    se = math.sqrt(800000 / 90 + 200000 / 90)
    df = 225 / 17
    assert d.estimate == pytest.approx(300, abs=TOL)
    assert d.statistic == pytest.approx(300 / se, abs=TOL)
    assert d.p_value == pytest.approx(2 * stats.t.sf(300 / se, df), abs=TOL)
    half = stats.t.ppf(0.975, df) * se
    assert (d.ci_low, d.ci_high) == (pytest.approx(300 - half, abs=1e-9), pytest.approx(300 + half, abs=1e-9))
    cm = CompareMeans(DescrStatsW(a), DescrStatsW(ctl))
    low, high = cm.tconfint_diff(usevar="unequal")
    assert (d.ci_low, d.ci_high) == (pytest.approx(low, abs=TOL), pytest.approx(high, abs=TOL))
    assert d.p_value == pytest.approx(stats.ttest_ind(a, ctl, equal_var=False).pvalue, abs=TOL)


def test_cuped_theta_is_cov_over_var_and_removes_the_explained_variance():
    # y = 1,2,3,4; x = 1,1,2,2: sum (y - 2.5)(x - 1.5) = 2, sum (x - 1.5)^2 = 1 -> theta = 2
    # y' = y - 2 (x - 1.5) = 2,3,2,3: variance 1/3 instead of 5/3, a reduction of 80% (= rho^2)
    y, x = np.array([1.0, 2, 3, 4]), np.array([1.0, 1, 2, 2])
    theta = cuped_theta(y, x)
    assert theta == pytest.approx(2.0, abs=TOL)
    assert cuped_adjust(y, x, theta).tolist() == pytest.approx([2, 3, 2, 3], abs=TOL)


def test_the_sample_ratio_check_flags_a_control_share_far_from_the_plan_but_not_a_near_one():
    # 1,000 customers, 10% planned: expected 100 control / 900 treated.
    # 70 control: chi2 = 30^2/100 + 30^2/900 = 10, p = erfc(sqrt(5)) = 0.00157 -> not flagged (p >= 0.001)
    near = sample_ratio(70, 930, 0.1)
    assert near.chi2 == pytest.approx(10, abs=TOL)
    assert near.p_value == pytest.approx(math.erfc(math.sqrt(5)), abs=TOL)
    assert not near.mismatch
    # 60 control: chi2 = 16 + 1600/900 = 17.78, p = 2.5e-5 -> flagged
    far = sample_ratio(60, 940, 0.1)
    assert far.chi2 == pytest.approx(16 + 1600 / 900, abs=TOL)
    assert far.p_value == pytest.approx(math.erfc(math.sqrt((16 + 1600 / 900) / 2)), abs=TOL)
    assert far.mismatch and far.observed_holdout == 0.06


def test_holm_doubles_the_smallest_p_value_of_two_and_keeps_the_order():
    # two tests: smallest x 2; the next x 1 but never below the previous adjusted value
    assert holm([0.04, 0.01]) == pytest.approx([0.04, 0.02], abs=TOL)
    assert holm([0.03, 0.02]) == pytest.approx([0.04, 0.04], abs=TOL)
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06], abs=TOL)


def full_evaluation(**kwargs):
    return evaluate(arms(), {"bought": bought(), "aum_change": aum_change()}, control="ctl",
                    money=["aum_change"], cost_per_contact=50.0, **kwargs)


def test_each_arm_is_compared_with_the_control_and_the_arms_with_each_other():
    ev = full_evaluation()
    assert ev.arms == {"ctl": 10, "A": 10, "B": 10}
    rate, money = ev.outcomes
    assert (rate.name, rate.kind, money.name, money.kind) == ("bought", "binary", "aum_change", "amount")
    assert [(c.arm, c.against) for c in rate.versus_control] == [("A", "ctl"), ("B", "ctl")]
    assert [(c.arm, c.against) for c in rate.pairwise] == [("A", "B")]
    assert [a.successes for a in rate.arms] == [2, 6, 3]
    a_vs_ctl, b_vs_ctl = money.versus_control
    assert (a_vs_ctl.uplift.estimate, b_vs_ctl.uplift.estimate) == (pytest.approx(300), pytest.approx(50))
    assert money.pairwise[0].uplift.estimate == pytest.approx(250)


def test_holm_adjusts_within_each_family_and_decides_significance():
    ev = full_evaluation()
    money = ev.outcomes[1]
    raw = [c.uplift.p_value for c in money.versus_control]
    lo, hi = sorted(raw)
    expected = {lo: 2 * lo, hi: max(2 * lo, hi)}  # Holm with two tests
    assert [c.p_holm for c in money.versus_control] == pytest.approx([expected[p] for p in raw], abs=TOL)
    assert [c.significant for c in money.versus_control] == [c.p_holm < 0.05 for c in money.versus_control]
    assert money.pairwise[0].p_holm == pytest.approx(money.pairwise[0].uplift.p_value, abs=TOL)  # a family of one
    assert any("Holm" in n for n in ev.notes)


def test_incremental_money_is_uplift_times_treated_and_roi_is_after_channel_costs():
    ev = full_evaluation()
    a_money = ev.outcomes[1].versus_control[0]
    # A: uplift 300 per customer x 10 customers = 3,000; cost 50 x 10 = 500; ROI = (3000 - 500) / 500 = 5
    assert a_money.incremental == pytest.approx(3000, abs=1e-9)
    assert a_money.cost == 500 and a_money.roi == pytest.approx(5.0, abs=TOL)
    assert a_money.roi_ci == pytest.approx(((a_money.uplift.ci_low * 10 - 500) / 500,
                                            (a_money.uplift.ci_high * 10 - 500) / 500), abs=TOL)
    a_rate = ev.outcomes[0].versus_control[0]
    # A: 0.4 extra conversions per customer x 10 = 4; 500 / 4 = 125 per extra conversion; no ROI for a rate
    assert a_rate.incremental == pytest.approx(4.0, abs=TOL)
    assert a_rate.cost_per_incremental == pytest.approx(125.0, abs=TOL)
    assert a_rate.roi is None
    assert ev.outcomes[1].pairwise[0].roi is None  # pairwise: both cells paid the same contact


def test_cuped_is_used_when_the_pre_period_explains_the_outcome_and_matches_welch_on_adjusted_values():
    y = aum_change()
    rng = np.random.default_rng(3)
    pre = y + rng.normal(0, 50, size=y.size)  # last quarter's AUM change tracks this quarter's closely
    ev = evaluate(arms(), {"aum_change": y}, control="ctl", money=["aum_change"], pre=pre, pre_name="aum_q1")
    out = ev.outcomes[0]
    theta = np.cov(y, pre, ddof=1)[0, 1] / np.var(pre, ddof=1)
    adjusted = y - theta * (pre - pre.mean())
    assert out.cuped.covariate == "aum_q1" and out.cuped.used
    assert out.cuped.theta == pytest.approx(theta, abs=TOL)
    assert out.cuped.variance_reduction == pytest.approx(1 - np.var(adjusted, ddof=1) / np.var(y, ddof=1), abs=TOL)
    a = out.versus_control[0]
    sm = CompareMeans(DescrStatsW(adjusted[10:20]), DescrStatsW(adjusted[:10]))
    assert a.uplift.p_value == pytest.approx(sm.ttest_ind(usevar="unequal")[1], abs=TOL)
    assert (a.uplift.ci_low, a.uplift.ci_high) == pytest.approx(sm.tconfint_diff(usevar="unequal"), abs=TOL)
    plain = evaluate(arms(), {"aum_change": y}, control="ctl", money=["aum_change"]).outcomes[0].versus_control[0]
    assert a.uplift.ci_high - a.uplift.ci_low < (plain.uplift.ci_high - plain.uplift.ci_low) / 2


def test_cuped_is_not_used_when_the_pre_period_covariate_is_unrelated():
    y = aum_change()
    pre = np.tile([1.0, -1.0], 15)  # alternates within every arm: explains nothing of the outcome
    out = evaluate(arms(), {"aum_change": y}, control="ctl", pre=pre).outcomes[0]
    assert out.cuped.variance_reduction < 0.01 and not out.cuped.used
    assert out.versus_control[0].uplift.estimate == pytest.approx(300, abs=TOL)
    assert out.arms[0].adjusted_mean is None


def test_the_json_is_plain_types_with_the_documented_fields():
    import json

    doc = evaluation_json(full_evaluation(holdout=1 / 3))
    assert json.loads(json.dumps(doc)) == doc
    assert list(doc) == ["schema", "control", "alpha", "customers", "arms", "cost_per_contact", "sample_ratio",
                         "outcomes", "notes", "methods"]
    assert doc["sample_ratio"]["mismatch"] is False and doc["sample_ratio"]["chi2"] == pytest.approx(0, abs=TOL)
    comparison = doc["outcomes"][0]["versus_control"][0]
    assert list(comparison) == ["arm", "against", "arm_mean", "against_mean", "uplift", "ci_low", "ci_high",
                                "relative_uplift", "statistic", "p_value", "p_holm", "significant", "method",
                                "cuped", "incremental", "incremental_ci_low", "incremental_ci_high", "cost", "roi",
                                "roi_ci_low", "roi_ci_high", "cost_per_incremental"]
    assert comparison["relative_uplift"] == pytest.approx(2.0)  # 0.6 / 0.2 - 1


def test_a_control_value_with_no_customers_is_refused_with_the_arms_found():
    with pytest.raises(DataError) as err:
        evaluate(arms(), {"bought": bought()}, control="holdout")
    assert "holdout" in err.value.message and "A, B, ctl" in str(err.value)


def test_nobody_converting_anywhere_gives_a_zero_uplift_that_is_not_significant():
    out = evaluate(arms(), {"bought": np.zeros(30)}, control="ctl").outcomes[0]
    d = out.versus_control[0].uplift
    assert d.estimate == 0 and d.p_value == 1.0 and d.ci_low < 0 < d.ci_high


def test_every_json_field_is_documented_in_docs_review_md():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "review.md").read_text(encoding="utf-8")
    y = aum_change()
    doc = evaluation_json(evaluate(arms(), {"bought": bought(), "aum_change": y}, control="ctl", money=["aum_change"],
                                   pre=y[::-1].copy(), cost_per_contact=1.0, holdout=0.3))
    outcome = doc["outcomes"][1]
    fields = [*doc, *doc["sample_ratio"], *outcome, *outcome["cuped"], *outcome["arms"][0],
              *outcome["versus_control"][0], *doc["methods"]]
    undocumented = [f for f in fields if f"`{f}`" not in text]
    assert undocumented == [], "document these fields in docs/review.md"


def test_a_missing_outcome_value_is_refused_naming_the_outcome():
    y = aum_change()
    y[3] = np.nan
    with pytest.raises(DataError) as err:
        evaluate(arms(), {"aum_change": y}, control="ctl")
    assert [(p.column, p.message) for p in err.value.problems] == [("aum_change", "1 value(s) missing or not finite")]


def test_a_sample_ratio_mismatch_is_written_into_the_notes_as_untrustworthy():
    # 10 of 30 in control, 24 expected at 80%: chi2 = 14^2/24 + 14^2/6 = 8.17 + 32.67 = 40.8
    ev = full_evaluation(holdout=0.8)
    assert ev.sample_ratio.mismatch and ev.sample_ratio.chi2 == pytest.approx(14**2 / 24 + 14**2 / 6, abs=TOL)
    assert any(n.startswith("sample-ratio mismatch") and "not trustworthy" in n for n in ev.notes)
