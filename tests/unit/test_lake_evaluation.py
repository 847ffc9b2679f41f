"""The review over the lake (lifeloop.review/1) on hand-made outcomes tables: statsmodels called here must agree.

The main experiment (strategy ``buy``, a product offer, planned holdout 50%): 40 treated customers of
whom 20 bought, 40 control customers of whom 10 bought; every treated customer cost 2.00 (80.00 in all).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from statsmodels.stats import proportion
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

from lifeloop.errors import DataError
from lifeloop.review.lake_evaluation import SCHEMA, review_table
from tests.fixtures.outcomes_tables import AS_OF, config, flags, rate_experiment, rows, strategy, table

TOL = 1e-12
DOC = Path(__file__).resolve().parents[2] / "docs" / "review.md"


def review(*parts, strategies=(), interim=False, **maps):
    cfg = config(*(maps.get("map") or [strategy("buy")]))
    return review_table(table(*parts), cfg, AS_OF, strategies=strategies, interim=interim)


def only(doc):
    assert len(doc["strategies"]) == 1
    return doc["strategies"][0]


def test_the_headline_of_a_purchase_offer_is_statsmodels_newcombe_interval_and_score_test():
    s = only(review(rate_experiment()))
    h = s["headline"]
    low, high = proportion.confint_proportions_2indep(20, 40, 10, 40, method="newcomb")
    test = proportion.test_proportions_2indep(20, 40, 10, 40, method="score", correction=False)
    assert (h["outcome"], h["kind"], h["treated_mean"], h["control_mean"]) == ("purchased", "binary", 0.5, 0.25)
    assert h["uplift"] == pytest.approx(0.25, abs=TOL)
    assert (h["ci_low"], h["ci_high"]) == (pytest.approx(low, abs=TOL), pytest.approx(high, abs=TOL))
    assert h["p_value"] == pytest.approx(test.pvalue, abs=TOL)
    assert round(h["p_value"], 4) == 0.0209 and h["significant"] is True and h["cuped"] is False
    assert s["verdict"] == "works"
    assert s["entries"] == {"treated": 40, "control": 40, "in_window": 0, "contacted": 40,
                            "first": "2024-03-01", "last": "2024-03-01", "outcome_not_applicable": 0}
    assert (s["primary_outcome"], s["planned_holdout"], s["offer"]) == ("purchased", 0.5, "WM")
    assert s["sample_ratio"]["observed_holdout"] == 0.5 and s["sample_ratio"]["mismatch"] is False


def test_a_money_primary_uses_welch_on_cuped_adjusted_values_when_aum_before_removes_variance():
    # inflow strategy (offer code): inflow follows the AUM at entry, plus 100 for the treated
    x_t, x_c = [1000.0, 2000, 3000, 4000, 5000, 6000], [1500.0, 2500, 3500, 4500, 5500, 6500]
    y_t = [0.1 * x + 100 + e for x, e in zip(x_t, [5, -7, 3, 0, -4, 6], strict=False)]
    y_c = [0.1 * x + e for x, e in zip(x_c, [-3, 4, 8, -6, 2, -1], strict=False)]
    grow = strategy("grow", metric="inflow", product=None)
    s = only(review(rows("grow", "treated", 6, product=False, aum_before=x_t, inflow=y_t),
                    rows("grow", "control", 6, product=False, aum_before=x_c, inflow=y_c), map=[grow]))
    y, x = np.array(y_t + y_c), np.array(x_t + x_c)
    theta = np.cov(y, x, ddof=1)[0, 1] / np.var(x, ddof=1)           # pooled over both arms
    adjusted = y - theta * (x - x.mean())
    reduction = 1 - np.var(adjusted, ddof=1) / np.var(y, ddof=1)
    assert reduction > 0.9                                            # far above the 1% threshold
    cm = CompareMeans(DescrStatsW(adjusted[:6]), DescrStatsW(adjusted[6:]))
    _, p, _ = cm.ttest_ind(usevar="unequal")
    low, high = cm.tconfint_diff(usevar="unequal")
    h = s["headline"]
    assert (h["outcome"], h["kind"], h["cuped"]) == ("inflow", "amount", True)
    assert h["uplift"] == pytest.approx(adjusted[:6].mean() - adjusted[6:].mean(), abs=1e-9)
    assert (h["ci_low"], h["ci_high"], h["p_value"]) == (pytest.approx(low, abs=1e-9), pytest.approx(high, abs=1e-9),
                                                         pytest.approx(p, abs=1e-12))
    assert h["treated_mean"] == pytest.approx(adjusted[:6].mean(), abs=1e-9)  # levels are adjusted means too
    inflow = [o for o in s["evaluation"]["outcomes"] if o["name"] == "inflow"][0]
    assert inflow["cuped"]["theta"] == pytest.approx(theta, abs=1e-12)
    assert inflow["cuped"]["variance_reduction"] == pytest.approx(reduction, abs=1e-12)
    # the raw difference is 100 - 50 (x of the control is 500 higher, x 0.1) + noise: CUPED removes the 50
    assert np.mean(y_t) - np.mean(y_c) == pytest.approx(100 - 50 + (3 / 6) - (4 / 6), abs=1e-9)
    assert h["uplift"] == pytest.approx(100, abs=10)


def test_cuped_is_left_out_when_aum_before_does_not_explain_the_money():
    # y - mean and x - mean are orthogonal in both arms: theta = 0, nothing removed, plain Welch
    x = [5.0, 1, 1, 5]
    grow = strategy("grow", metric="inflow", product=None)
    s = only(review(rows("grow", "treated", 4, product=False, aum_before=x, inflow=[10.0, 20, 30, 40]),
                    rows("grow", "control", 4, product=False, aum_before=x, inflow=[1.0, 2, 3, 4]), map=[grow]))
    cm = CompareMeans(DescrStatsW(np.array([10.0, 20, 30, 40])), DescrStatsW(np.array([1.0, 2, 3, 4])))
    low, high = cm.tconfint_diff(usevar="unequal")
    h = s["headline"]
    assert h["cuped"] is False and h["uplift"] == pytest.approx(22.5, abs=TOL)
    assert (h["ci_low"], h["ci_high"]) == (pytest.approx(low, abs=1e-9), pytest.approx(high, abs=1e-9))
    inflow = [o for o in s["evaluation"]["outcomes"] if o["name"] == "inflow"][0]
    assert inflow["cuped"]["used"] is False and inflow["cuped"]["variance_reduction"] == pytest.approx(0, abs=TOL)


def test_open_windows_are_left_out_and_counted_unless_the_review_is_interim():
    running = rows("buy", "treated", 6, complete=False, purchased=True, start=100)
    closed = review(rate_experiment(), running)
    s = only(closed)
    assert closed["interim"] is False
    assert (s["entries"]["treated"], s["entries"]["control"], s["entries"]["in_window"]) == (40, 40, 6)
    assert s["headline"]["treated_mean"] == 0.5           # the 6 open entries are not in it
    interim = review(rate_experiment(), running, interim=True)
    t = only(interim)
    assert interim["interim"] is True
    assert (t["entries"]["treated"], t["entries"]["in_window"]) == (46, 6)
    assert t["headline"]["treated_mean"] == pytest.approx(26 / 46, abs=TOL)
    low, high = proportion.confint_proportions_2indep(26, 46, 10, 40, method="newcomb")
    assert (t["headline"]["ci_low"], t["headline"]["ci_high"]) == (pytest.approx(low, abs=TOL),
                                                                   pytest.approx(high, abs=TOL))


@pytest.mark.parametrize("treated, control, holdout, verdict", [
    ((20, 40), (10, 40), 0.5, "works"),            # +25pp, p = 0.021
    ((5, 40), (20, 40), 0.5, "harmful"),           # -37.5pp, p < 0.001
    ((12, 40), (10, 40), 0.5, "no_effect_yet"),    # +5pp, p = 0.61
    ((20, 40), (10, 40), 0.1, "untrustworthy"),    # planned 10% control, observed 50%: chi2 = 177.8
    ((20, 40), (1, 1), 0.5, "too_early"),          # one control customer: nothing to compare
])
def test_the_verdict_follows_significance_sign_and_the_sample_ratio(treated, control, holdout, verdict):
    s = only(review(rate_experiment(treated=treated, control=control), map=[strategy("buy", holdout=holdout)]))
    assert s["verdict"] == verdict
    if verdict == "untrustworthy":
        # a significant uplift is still untrustworthy when the split is not what was planned
        assert s["headline"]["significant"] is True and s["sample_ratio"]["mismatch"] is True
        assert s["sample_ratio"]["p_value"] < 0.001
    if verdict == "too_early":
        assert s["headline"] is None and s["evaluation"] is None and s["entries"]["control"] == 1
        assert s["breakdowns"] == {"wave": [], "channel": [], "segment": [], "segment_channel": []}


def test_a_reactivation_objective_is_judged_on_customers_dormant_at_entry():
    wake = strategy("wake", metric="reactivation_rate", product=None)
    dormant = [*rows("wake", "treated", 30, product=False, stage="dormant", reactivated=flags(15, 30)),
               *rows("wake", "control", 30, product=False, stage="dormant", reactivated=flags(5, 30))]
    s = only(review(dormant, map=[wake]))
    assert (s["primary_outcome"], s["headline"]["outcome"], s["verdict"]) == ("reactivated", "reactivated", "works")
    assert (s["headline"]["treated_mean"], s["headline"]["control_mean"]) == (0.5, pytest.approx(1 / 6))
    # an entry not dormant at entry has no reactivation to measure: it is left out (and counted), the others judged
    mixed = only(review(dormant, rows("wake", "treated", 1, product=False, start=99), map=[wake]))
    assert (mixed["verdict"], mixed["entries"]["outcome_not_applicable"]) == ("works", 1)
    assert mixed["entries"]["treated"] == 30 and mixed["headline"] == s["headline"]
    assert s["entries"]["outcome_not_applicable"] == 0


def test_retention_is_judged_on_the_entries_that_held_assets_at_entry():
    """An empty account cannot be kept: ``retained`` is null for it, and an imbalance of empty accounts between the
    arms (here 10 of 30 treated, none of the controls) must not read as an effect of the contact."""
    care = strategy("care", metric="retention_rate", product=None)
    kept = [*rows("care", "treated", 20, product=False, retained=flags(19, 20)),
            *rows("care", "treated", 10, product=False, retained=[None] * 10, start=40),
            *rows("care", "control", 30, product=False, retained=flags(28, 30), start=60)]
    s = only(review(kept, map=[care]))
    assert (s["primary_outcome"], s["entries"]["outcome_not_applicable"]) == ("retained", 10)
    assert (s["entries"]["treated"], s["entries"]["control"]) == (20, 30)
    assert (s["headline"]["treated_mean"], s["headline"]["control_mean"]) == (0.95, pytest.approx(28 / 30))
    assert s["verdict"] != "harmful"       # 19 of 20 and 28 of 30 kept; counted as lost, the 10 would read -30pp


def channel_experiment():
    """Mass customers by SMS (0.05 a contact) and affluent ones by call (2.00): purchases per arm and channel.

    sms: treated 10 of 20, control 4 of 20;  call: treated 14 of 20, control 6 of 20.
    Half of each group entered by wave w1, the other half by a second entry wave w9: w1 has the first 10
    rows of each group (sms: treated 10 buyers, control 4; call: treated 10, control 6), w9 the rest."""
    def part(arm, channel, segment, buyers, cost):
        return rows("buy", arm, 20, channel=channel, segment=segment, purchased=flags(buyers, 20),
                    wave=["w1"] * 10 + ["w9"] * 10, cost=cost if arm == "treated" else 0.0,
                    start=0 if channel == "sms" else 50)
    return [*part("treated", "sms", "mass", 10, 0.05), *part("control", "sms", "mass", 4, 0.0),
            *part("treated", "call", "affluent", 14, 2.0), *part("control", "call", "affluent", 6, 0.0)]


def test_the_breakdowns_compare_treated_and_control_within_each_channel_segment_and_wave():
    s = only(review(channel_experiment()))
    by = s["breakdowns"]
    sms, call = {r["key"]: r for r in by["channel"]}["sms"], {r["key"]: r for r in by["channel"]}["call"]
    for row, (bt, nt, bc, nc) in ((sms, (10, 20, 4, 20)), (call, (14, 20, 6, 20))):
        low, high = proportion.confint_proportions_2indep(bt, nt, bc, nc, method="newcomb")
        p = proportion.test_proportions_2indep(bt, nt, bc, nc, method="score", correction=False).pvalue
        assert (row["treated"], row["control"]) == (nt, nc)
        assert (row["treated_mean"], row["control_mean"]) == (bt / nt, bc / nc)
        assert row["uplift"] == pytest.approx(bt / nt - bc / nc, abs=TOL)
        assert (row["ci_low"], row["ci_high"], row["p_value"]) == (
            pytest.approx(low, abs=TOL), pytest.approx(high, abs=TOL), pytest.approx(p, abs=TOL))
    # cost of the treated contacts, and cost per incremental buyer = cost / (uplift x treated)
    assert (sms["cost"], sms["cost_per_incremental"]) == (pytest.approx(1.0), pytest.approx(1.0 / (0.3 * 20)))
    assert (call["cost"], call["cost_per_incremental"]) == (pytest.approx(40.0), pytest.approx(40.0 / (0.4 * 20)))
    assert [r["key"] for r in by["segment"]] == ["affluent", "mass"]
    assert {r["key"]: r["uplift"] for r in by["segment"]} == {"affluent": pytest.approx(0.4),
                                                              "mass": pytest.approx(0.3)}
    assert [r["key"] for r in by["segment_channel"]] == ["affluent / call", "mass / sms"]
    # by entry wave: w1 treated 20 of 20 bought, control 10 of 20; w9 treated 4 of 20, control 0 of 20
    waves = {r["key"]: r for r in by["wave"]}
    assert sorted(waves) == ["w1", "w9"]
    assert (waves["w1"]["treated_mean"], waves["w1"]["control_mean"], waves["w1"]["cost"]) == (
        1.0, 0.5, pytest.approx(10 * 0.05 + 10 * 2.0))
    assert (waves["w9"]["treated_mean"], waves["w9"]["control_mean"]) == (0.2, 0.0)
    low, high = proportion.confint_proportions_2indep(4, 20, 0, 20, method="newcomb")
    assert (waves["w9"]["ci_low"], waves["w9"]["ci_high"]) == (pytest.approx(low, abs=TOL),
                                                               pytest.approx(high, abs=TOL))


def test_money_roi_is_incremental_fee_income_after_the_treated_arms_cost():
    # fee income: treated 5 x 50 + 5 x 30 (mean 40), control 5 x 10 + 5 x 20 (mean 15): uplift 25 a customer,
    # 250 for the 10 treated; they cost 10 x 2.00 = 20.00: ROI = (250 - 20) / 20 = 11.5
    fees_t, fees_c = [50.0] * 5 + [30.0] * 5, [10.0] * 5 + [20.0] * 5
    fee = strategy("fee", metric="fee_income")  # a product offer: the bank earns fees on it
    s = only(review(rows("fee", "treated", 10, product=False, fee_income=fees_t, cost=2.0),
                    rows("fee", "control", 10, product=False, fee_income=fees_c), map=[fee]))
    cm = CompareMeans(DescrStatsW(np.array(fees_t)), DescrStatsW(np.array(fees_c)))
    low, high = cm.tconfint_diff(usevar="unequal")
    m = s["money"]
    assert s["headline"]["outcome"] == "fee_income" and s["headline"]["cuped"] is False  # aum_before is all 0
    assert (m["contacts"], m["cost"]) == (10, 20.0)
    assert m["incremental_fee_income"] == pytest.approx(250, abs=1e-9)
    assert m["incremental_fee_income_ci"] == [pytest.approx(low * 10, abs=1e-9), pytest.approx(high * 10, abs=1e-9)]
    assert m["roi"] == pytest.approx(11.5, abs=1e-12)
    assert m["roi_ci"] == [pytest.approx((low * 10 - 20) / 20, abs=1e-9),
                           pytest.approx((high * 10 - 20) / 20, abs=1e-9)]
    assert m["incremental_aum"] == 0.0                      # nobody's AUM moved
    assert m["cost_per_incremental_conversion"] is None     # a money objective has no conversions


def test_a_conversion_objective_costs_the_treated_spend_per_incremental_buyer():
    m = only(review(rate_experiment()))["money"]
    # 80.00 spent; uplift 0.25 x 40 treated = 10 extra buyers: 8.00 each
    assert (m["cost"], m["cost_per_incremental_conversion"]) == (80.0, pytest.approx(8.0))
    assert m["roi"] == pytest.approx(-1.0)                  # no fee income at all: the whole cost is lost


def test_an_offer_that_is_not_a_product_has_no_roi():
    care = strategy("care", metric="fee_income", product=None)
    s = only(review(rows("care", "treated", 10, product=False, fee_income=[5.0] * 10, cost=2.0),
                    rows("care", "control", 10, product=False, fee_income=[0.0] * 10), map=[care]))
    assert s["money"]["incremental_fee_income"] == pytest.approx(50.0)
    assert s["money"]["roi"] is None and s["money"]["roi_ci"] is None


def test_an_unknown_strategy_is_refused_with_a_did_you_mean():
    with pytest.raises(DataError) as err:
        review(rate_experiment(), strategies=["buyy"])
    assert err.value.message == "unknown strategy 'buyy'; did you mean 'buy'?"
    assert "strategies are: buy" in str(err.value) and "lifeloop strategies" in str(err.value)


def test_a_strategy_id_in_another_case_is_refused_pointing_at_the_real_id():
    with pytest.raises(DataError) as err:
        review(rate_experiment(), strategies=["BUY"])
    assert err.value.message == "unknown strategy 'BUY'; did you mean 'buy'?"


def test_a_strategy_of_the_map_without_entries_is_reviewed_only_when_asked_for():
    cfg = [strategy("buy"), strategy("idle")]
    assert [s["strategy"] for s in review(rate_experiment(), map=cfg)["strategies"]] == ["buy"]
    idle = review(rate_experiment(), strategies=["idle"], map=cfg)["strategies"]
    assert [(s["strategy"], s["verdict"], s["entries"]["treated"], s["entries"]["first"]) for s in idle] == [
        ("idle", "too_early", 0, None)]


# ------------------------------------------------------------------------------------------ the JSON contract
def every_kind():
    """A review with every suggestion kind: works + cheaper channel, harmful, no uplift, sample-ratio mismatch."""
    cheap = [*rows("buy", "treated", 20, channel="sms", purchased=flags(10, 20), cost=0.05),
             *rows("buy", "control", 20, channel="sms", purchased=flags(4, 20)),
             *rows("buy", "treated", 20, channel="call", purchased=flags(14, 20), start=50),
             *rows("buy", "control", 20, channel="call", purchased=flags(6, 20), start=50)]
    cfg = [strategy("buy"), strategy("bad"), strategy("flat", holdout=40 / 240), strategy("split", holdout=0.1)]
    return review(cheap, rate_experiment("bad", treated=(5, 40), control=(20, 40)),
                  rate_experiment("flat", treated=(20, 200), control=(4, 40)),
                  rate_experiment("split"), rows("buy", "treated", 3, complete=False, start=900), map=cfg)


def documented_fields() -> list[str]:
    """The field names in the first column of the field tables of the section on the lake review."""
    text = DOC.read_text(encoding="utf-8")
    start = text.index("## Evaluating strategies from the lake")
    end = text.find("\n## ", start + 1)
    section = text[start:end if end > 0 else len(text)]
    tables = section[section.index("### The JSON"):]
    tables = tables[:tables.find("\n### ", 5)] if tables.find("\n### ", 5) > 0 else tables
    fields = []
    for line in tables.splitlines():
        if line.startswith("| `"):
            fields += re.findall(r"`([^`]+)`", line.split("|")[1])
    return fields


OPAQUE = ("strategies[].evaluation", "strategies[].feedback.by_outcome")  # documented as wholes


def produced_fields(doc, prefix=""):
    """Every key path of a document: ``a.b`` for objects, ``a[].b`` inside lists of objects."""
    out = []
    if isinstance(doc, dict):
        for key, value in doc.items():
            path = f"{prefix}.{key}" if prefix else key
            out.append(path)
            if path not in OPAQUE:
                out += produced_fields(value, path)
    elif isinstance(doc, list):
        for item in doc:
            out += produced_fields(item, re.sub(r"breakdowns\.\w+$", "breakdowns.<by>", prefix) + "[]")
    return out


def test_every_key_of_the_review_json_is_documented_and_every_documented_key_is_produced(monkeypatch):
    from lifeloop.review import lake_evaluation
    from lifeloop.store.ops import feedback

    doc = every_kind()
    monkeypatch.setattr(feedback, "outcomes_by_strategy", lambda _: {"buy": {"accepted": 2, "declined": 1}})
    lake_evaluation.add_feedback(type("Ctx", (), {"ops": lambda self: None})(), doc)
    assert json.loads(json.dumps(doc)) == doc                 # plain JSON types
    assert doc["schema"] == SCHEMA == "lifeloop.review/1"
    kinds = sorted({x["kind"] for x in doc["suggestions"]})
    assert kinds == ["cheaper_channel", "harmful", "no_uplift", "sample_ratio_mismatch", "works"]
    documented, produced = set(documented_fields()), set(produced_fields(doc))
    assert sorted(produced - documented) == [], "document these keys in docs/review.md"
    assert sorted(documented - produced) == [], "docs/review.md documents keys the review no longer writes"
    assert doc["strategies"][0]["feedback"] == {"recorded": 3, "by_outcome": {"accepted": 2, "declined": 1}}


def test_the_documents_key_order_is_stable():
    doc = every_kind()
    assert list(doc) == ["schema", "as_of", "interim", "alpha", "strategies", "suggestions"]
    assert list(doc["strategies"][0]) == ["strategy", "name", "owner", "objective", "offer", "primary_outcome",
                                          "planned_holdout", "entries", "verdict", "headline", "sample_ratio",
                                          "money", "evaluation", "breakdowns", "feedback"]


def test_the_minimum_detectable_uplift_is_the_80_percent_power_effect_at_these_arm_sizes():
    from scipy.stats import norm

    from lifeloop.review.lake_evaluation import detectable_uplift

    # 180 treated at 60%, 20 control at 20%: Cohen's h = (z(0.975) + z(0.8)) x sqrt(1/180 + 1/20), back in points
    # at the control's rate (the far tail NormalIndPower also counts is below 1e-6 here)
    y = np.array([1.0] * 108 + [0.0] * 72 + [1.0] * 4 + [0.0] * 16)
    arms = np.array(["treated"] * 180 + ["control"] * 20)
    h = (norm.ppf(0.975) + norm.ppf(0.8)) * np.sqrt(1 / 180 + 1 / 20)
    assert detectable_uplift(y, arms, True) == pytest.approx(np.sin(np.arcsin(np.sqrt(0.2)) + h / 2) ** 2 - 0.2,
                                                             abs=1e-5)
    # amounts: Cohen's d from the t distribution, times the pooled standard deviation (here 10)
    money = np.concatenate([np.tile([90.0, 110.0], 50), np.tile([90.0, 110.0], 50)])
    both = np.array(["treated"] * 100 + ["control"] * 100)
    from statsmodels.stats.power import TTestIndPower

    d = TTestIndPower().solve_power(effect_size=None, nobs1=100, alpha=0.05, power=0.8, ratio=1.0)
    sd = np.sqrt(np.var(np.tile([90.0, 110.0], 50), ddof=1))
    assert detectable_uplift(money, both, False) == pytest.approx(d * sd)
    assert 0.39 < d < 0.40  # the textbook figure for 100 a group
    assert detectable_uplift(y[:1], arms[:1], True) is None


def test_a_holdout_raised_mid_flight_is_checked_against_each_entrys_own_share():
    # 400 entries planned at 10% control, then 400 at 30%: 40 + 120 = 160 controls of 800 is exactly what
    # was planned (20% on average); today's 30% alone would call it a broken split
    sid = "buy"
    early = rows(sid, "treated", 360, planned_holdout=0.1) + rows(sid, "control", 40, planned_holdout=0.1, start=400)
    late = rows(sid, "treated", 280, planned_holdout=0.3, start=500) + rows(sid, "control", 120, planned_holdout=0.3,
                                                                            start=900)
    s = only(review(early, late, map=[strategy(sid, holdout=0.3)]))
    assert s["planned_holdout"] == pytest.approx(0.2)
    assert s["sample_ratio"]["planned_holdout"] == pytest.approx(0.2)
    assert s["sample_ratio"]["mismatch"] is False and s["verdict"] != "untrustworthy"
    only_today = only(review([{**r, "planned_holdout": None} for r in early + late], map=[strategy(sid, holdout=0.3)]))
    assert only_today["sample_ratio"]["mismatch"] is True   # what the check said before it knew each entry's share
