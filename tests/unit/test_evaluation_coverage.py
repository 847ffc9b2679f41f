"""The 95% intervals cover a known uplift in about 95% of synthetic experiments; a broken holdout is caught.

400 experiments per check: the share covered has a standard error of sqrt(0.95 * 0.05 / 400) = 1.1
points, so 92%..98% is about +-2.7 standard errors. Seeded, so the outcome is the same on every run.
"""

import numpy as np

from lifeloop.review.evaluation import compare_means, compare_rates, evaluate, sample_ratio

RUNS = 400


def covered(low, high, truth):
    return low <= truth <= high


def test_the_rate_interval_covers_a_known_uplift_in_about_95_percent_of_experiments():
    # a 5% base rate lifted to 8% (+3 points), 2,000 treated and a 10% holdout of ~222: low rates, small control
    rng = np.random.default_rng(20261123)
    hits = 0
    for _ in range(RUNS):
        t = rng.binomial(2000, 0.08)
        c = rng.binomial(222, 0.05)
        d = compare_rates(t, 2000, c, 222)
        hits += covered(d.ci_low, d.ci_high, 0.03)
    assert 0.92 <= hits / RUNS <= 0.98, hits / RUNS


def test_the_money_interval_covers_a_known_uplift_in_about_95_percent_of_experiments():
    # skewed money (gamma, mean 1,000, sd 707) with a true uplift of 60 per customer; 600 treated, 200 control
    rng = np.random.default_rng(2026)
    hits = 0
    for _ in range(RUNS):
        treated = rng.gamma(2.0, 500.0, 600) + 60.0
        control = rng.gamma(2.0, 500.0, 200)
        d = compare_means(treated, control)
        hits += covered(d.ci_low, d.ci_high, 60.0)
    assert 0.92 <= hits / RUNS <= 0.98, hits / RUNS


def test_the_cuped_interval_covers_a_known_uplift_and_is_narrower_than_without_it():
    rng = np.random.default_rng(11)
    hits, widths, plain_widths = 0, [], []
    arms = np.array(["treated"] * 600 + ["control"] * 200)
    for _ in range(RUNS):
        pre = rng.gamma(2.0, 500.0, 800)  # last quarter's AUM change, unaffected by the campaign
        y = 0.8 * pre + rng.normal(0, 300, 800) + np.where(arms == "treated", 60.0, 0.0)
        out = evaluate(arms, {"aum": y}, control="control", money=["aum"], pre=pre).outcomes[0]
        d = out.versus_control[0].uplift
        hits += covered(d.ci_low, d.ci_high, 60.0)
        widths.append(d.ci_high - d.ci_low)
        plain = compare_means(y[:600], y[600:])
        plain_widths.append(plain.ci_high - plain.ci_low)
    assert 0.92 <= hits / RUNS <= 0.98, hits / RUNS
    # var(0.8 x) = 0.64 * 500,000 = 320,000 of 410,000 is explained: the interval is about sqrt(0.22) = 0.47 as wide
    assert 0.4 < np.mean(widths) / np.mean(plain_widths) < 0.55


def test_a_holdout_drawn_from_a_different_population_is_caught_by_the_sample_ratio_check():
    # 10,000 customers, 10% planned holdout. Broken: the control list was taken from a copy of the base that
    # had already dropped customers with no AUM (30% of them), so the control holds ~7% instead of 10%.
    rng = np.random.default_rng(5)
    caught = 0
    for _ in range(50):
        has_aum = rng.random(10_000) >= 0.3
        in_control = rng.random(10_000) < 0.1
        broken_control = in_control & has_aum
        caught += sample_ratio(int(broken_control.sum()), int((~in_control).sum()), 0.1).mismatch
    assert caught == 50


def test_a_fair_holdout_is_rarely_flagged_by_the_sample_ratio_check():
    # the alarm fires at p < 0.001: among 400 fair assignments, expect 0.4 false alarms
    rng = np.random.default_rng(6)
    alarms = 0
    for _ in range(RUNS):
        control = int((rng.random(10_000) < 0.1).sum())
        alarms += sample_ratio(control, 10_000 - control, 0.1).mismatch
    assert alarms <= 3
