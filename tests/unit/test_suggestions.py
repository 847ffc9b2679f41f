"""Suggestions (策略优化建议): each finding appears when its evidence is in the review, and only then."""

from __future__ import annotations

import pytest

from lifeloop.review.lake_evaluation import MIN_FOR_VERDICT, verdict
from lifeloop.review.suggestions import CHEAPER, MIN_CONTROL, MIN_TREATED, SEVERITY, suggest


def headline(uplift, significant, ci=(None, None), p=None, kind="binary"):
    low, high = ci
    return {"outcome": "purchased", "kind": kind, "treated_mean": None, "control_mean": None, "uplift": uplift,
            "ci_low": uplift - 0.02 if low is None else low, "ci_high": uplift + 0.02 if high is None else high,
            "p_value": (0.01 if significant else 0.4) if p is None else p, "significant": significant, "cuped": False}


def srm(mismatch, control=50, treated=50, planned=0.1):
    return {"planned_holdout": planned, "observed_holdout": control / (control + treated), "control": control,
            "treated": treated, "p_value": 1e-20 if mismatch else 0.5, "mismatch": mismatch}


def cell(segment, channel, cost_per_incremental, uplift=0.05, treated=100, control=20, cost=None):
    return {"key": f"{segment} / {channel}", "treated": treated, "control": control, "treated_mean": None,
            "control_mean": None, "uplift": uplift, "ci_low": None, "ci_high": None, "p_value": None,
            "significant": False, "cost": cost if cost is not None else (cost_per_incremental or 0) * uplift * treated,
            "cost_per_incremental": cost_per_incremental}


def review(sid="s", *, head=None, ratio=None, treated=400, control=50, cells=(), fee=None, cost=100.0):
    """One strategy's part of a lifeloop.review/1 document, with only what suggestions read."""
    ratio = ratio if ratio is not None else srm(False)
    ruled = verdict(head, ratio["mismatch"], min(treated, control) >= MIN_FOR_VERDICT) if head else "too_early"
    return {"strategy": sid, "name": {"zh": f"{sid}策略", "en": f"{sid} strategy"}, "verdict": ruled,
            "entries": {"treated": treated, "control": control, "in_window": 0},
            "headline": head, "sample_ratio": ratio,
            "money": {"cost": cost, "incremental_fee_income": fee},
            "breakdowns": {"wave": [], "channel": [], "segment": [], "segment_channel": list(cells)}}


def kinds(*strategies, interim=False):
    return [(x["kind"], x["strategy"]) for x in suggest({"interim": interim, "strategies": list(strategies)})]


def test_a_significant_positive_uplift_works_and_says_its_money():
    (item,) = suggest({"interim": False, "strategies": [review(head=headline(0.04, True, (0.01, 0.07)), fee=1234.0)]})
    assert (item["kind"], item["severity"]) == ("works", "info")
    assert item["evidence"] == {"outcome": "purchased", "uplift": 0.04, "ci_low": 0.01, "ci_high": 0.07,
                                "p_value": 0.01,
                                "treated": 400, "control": 50, "incremental_fee_income": 1234.0, "cost": 100.0}
    assert "+4.00pp (95% CI +1.00pp .. +7.00pp)" in item["text"]["en"]
    assert "1,234 RMB for 100 RMB" in item["text"]["en"]
    assert "显著提升" in item["text"]["zh"] and "增量中收约 1,234 元" in item["text"]["zh"]


def test_a_significant_negative_uplift_is_harmful_and_critical():
    (item,) = suggest({"interim": False, "strategies": [review(head=headline(-0.03, True))]})
    assert (item["kind"], item["severity"]) == ("harmful", "critical")
    assert "significantly lowers purchased (-3.00pp" in item["text"]["en"]


def test_no_uplift_needs_enough_treated_and_control_entries_with_closed_windows():
    flat = headline(0.001, False)
    assert kinds(review(head=flat, treated=MIN_TREATED, control=MIN_CONTROL)) == [("no_uplift", "s")]
    assert kinds(review(head=flat, treated=MIN_TREATED - 1, control=MIN_CONTROL)) == []   # too few treated
    assert kinds(review(head=flat, treated=MIN_TREATED, control=MIN_CONTROL - 1)) == []   # too few control
    assert kinds(review(head=flat), interim=True) == []   # windows still running: "no uplift yet" is not a finding
    (item,) = suggest({"interim": False, "strategies": [review(head=flat, treated=1200, control=150)]})
    assert item["severity"] == "warning" and "reached 1,200 customers (control 150)" in item["text"]["en"]


def test_an_interim_review_still_reports_a_significant_result():
    assert kinds(review(head=headline(0.05, True)), interim=True) == [("works", "s")]
    assert kinds(review(head=headline(-0.05, True)), interim=True) == [("harmful", "s")]


def test_a_sample_ratio_mismatch_is_the_only_finding_about_its_strategy():
    cells = [cell("mass", "sms", 10.0), cell("mass", "call", 40.0)]
    broken = review(head=headline(0.05, True), ratio=srm(True, control=10, treated=90, planned=0.3), cells=cells)
    (item,) = suggest({"interim": False, "strategies": [broken]})
    assert (item["kind"], item["severity"]) == ("sample_ratio_mismatch", "critical")
    assert item["evidence"] == {"planned_holdout": 0.3, "observed_holdout": 0.1, "control": 10, "treated": 90,
                                "p_value": 1e-20}
    assert "the control group is 10.0% of entries against a planned 30.0%" in item["text"]["en"]


def test_a_strategy_too_early_to_judge_gets_no_finding():
    assert kinds(review(head=None)) == []
    assert kinds(review(head={**headline(0.0, False), "uplift": None})) == []


def test_a_channel_at_most_half_the_cost_per_incremental_conversion_in_a_segment_is_suggested():
    cells = [cell("mass", "sms", 10.0, uplift=0.02), cell("mass", "call", 20.0, uplift=0.06),
             cell("mass", "push", 15.0, uplift=0.03)]
    items = suggest({"interim": False, "strategies": [review(head=headline(0.03, True), cells=cells)]})
    cheaper = [x for x in items if x["kind"] == "cheaper_channel"]
    assert len(cheaper) == 1 and cheaper[0]["severity"] == "info"
    ev = cheaper[0]["evidence"]
    # the cheapest against the dearest of the segment: 10 <= 0.5 x 20
    assert ev["segment"] == "mass" and ev["cheaper"]["channel"] == "sms" and ev["dearer"]["channel"] == "call"
    assert ev["cheaper"]["cost_per_incremental"] == 10.0 and ev["dearer"]["cost_per_incremental"] == 20.0
    assert set(ev["cheaper"]) == {"channel", "treated", "control", "uplift", "cost", "cost_per_incremental"}
    assert "costs about 10.00 RMB by sms against 20.00 RMB by call: prefer sms there" in cheaper[0]["text"]["en"]


@pytest.mark.parametrize("cells", [
    [cell("mass", "sms", 10.01), cell("mass", "call", 20.0)],                   # not quite half
    [cell("mass", "sms", 10.0), cell("affluent", "call", 40.0)],                # different segments
    [cell("mass", "sms", 10.0, uplift=-0.01), cell("mass", "call", 40.0)],      # sms does not work at all
    [cell("mass", "sms", None), cell("mass", "call", 40.0)],                    # no cost per conversion to compare
    [cell("mass", "sms", 5.0)],                                                 # one channel only
], ids=["not-half", "other-segment", "negative-uplift", "no-cost-per-conversion", "one-channel"])
def test_no_cheaper_channel_without_two_working_channels_of_one_segment_at_half_the_cost(cells):
    assert CHEAPER == 0.5
    assert kinds(review(head=headline(0.03, True), cells=cells)) == [("works", "s")]


def test_a_cheaper_channel_is_found_even_when_the_strategy_as_a_whole_shows_nothing_yet():
    cells = [cell("mass", "sms", 3.0), cell("mass", "call", 30.0)]
    assert kinds(review(head=headline(0.01, False), treated=50, cells=cells)) == [("cheaper_channel", "s")]


def test_findings_come_most_serious_first_then_by_strategy():
    cells = [cell("mass", "sms", 3.0), cell("mass", "call", 30.0)]
    got = kinds(review("a_works", head=headline(0.05, True), cells=cells),
                review("b_flat", head=headline(0.0, False)),
                review("c_broken", head=headline(0.05, True), ratio=srm(True)),
                review("d_harm", head=headline(-0.05, True)),
                review("e_broken", head=None, ratio=srm(True)))
    assert got == [("sample_ratio_mismatch", "c_broken"), ("sample_ratio_mismatch", "e_broken"),
                   ("harmful", "d_harm"), ("no_uplift", "b_flat"), ("cheaper_channel", "a_works"),
                   ("works", "a_works")]
    assert list(SEVERITY) == ["sample_ratio_mismatch", "cell_split_mismatch", "harmful", "no_uplift",
                              "wave_adds_nothing", "cell_wins", "cheaper_channel", "works"]
    severities = [SEVERITY[k] for k, _ in got]
    assert severities == ["critical", "critical", "critical", "warning", "info", "info"]


def test_a_significant_result_on_a_handful_of_controls_is_no_finding_yet():
    # Welch's test with 2 controls can look significant on a variance guessed from two customers
    for uplift in (0.05, -0.05):
        assert kinds(review(head=headline(uplift, True), control=MIN_FOR_VERDICT - 1)) == []
        assert kinds(review(head=headline(uplift, True), control=MIN_FOR_VERDICT))[0][0] in ("works", "harmful")
