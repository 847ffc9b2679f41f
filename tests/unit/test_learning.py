"""Learned expected uplift: the prior shrunk toward review's evidence, checked against hand-computed numbers.

One strategy ``welcome`` (prior uplift 0.01 by SMS, value of a success 400 RMB; SMS costs 0.05) and
the default prior standard deviation tau = 0.02 (precision 1/tau^2 = 2,500).

Evidence, wave w1 by SMS: mass 100 treated at 6% vs 100 control at 4% (se 0.02); wealth 100 treated
at 10% vs 100 control at 4% (se 0.04). Pooled: 200 at 8% vs 200 at 4%, uplift 0.04,
se = sqrt(0.08*0.92/200 + 0.04*0.96/200) = sqrt(0.00056), precision 1/0.00056 = 1,785.714...

* whole: (0.01*2500 + 0.04*1785.714) / (2500 + 1785.714) = 96.4286 / 4285.714 = 0.0225, weight 5/12;
* mass: prior 0.0225, se 0.02 = tau, so weight 1/2: (0.0225 + 0.02) / 2 = 0.02125;
* wealth: se 0.04, precision 625, weight 625 / 3125 = 0.2: 0.8*0.0225 + 0.2*0.06 = 0.03;
* expected values: 0.0225*400 - 0.05 = 8.95; mass 8.45; wealth 11.95.
"""

from __future__ import annotations

import math

import pyarrow as pa
import pytest

from lifeloop.config.contact_policy import ContactPolicy
from lifeloop.config.loader import load_model
from lifeloop.errors import ConfigError
from lifeloop.strategy.learning import ALL, evidence_schema, learned_values
from tests.unit.strategy_factories import config, policy, strategy


def welcome(**extra):
    return strategy("welcome", expected={"uplift": {"sms": 0.01}, "value": 400, **extra})


def evidence(*rows):
    names = evidence_schema().names
    return pa.Table.from_pylist([dict(zip(names, r, strict=False)) for r in rows], schema=evidence_schema())


def row(strategy, wave, channel, segment, nt, nc, pt, pc, se):
    return (strategy, wave, channel, segment, nt, nc, pt, pc, pt - pc, se)


EVIDENCE = [row("welcome", "w1", "sms", "mass", 100, 100, 0.06, 0.04, 0.02),
            row("welcome", "w1", "sms", "wealth", 100, 100, 0.10, 0.04, 0.04)]
SMS = {"sms": {"cost": 0.05}}


def by_segment(table):
    return {r["segment"]: r for r in table.to_pylist()}


def test_without_evidence_the_value_is_the_configured_prior_for_every_segment():
    got = by_segment(learned_values(config(welcome()), policy(channels=SMS), None, ["mass", "wealth"]))
    assert set(got) == {ALL, "mass", "wealth"}
    for r in got.values():
        assert (r["uplift"], r["weight"], r["evidence_used"], r["treated"]) == (0.01, 0.0, False, 0)
        assert r["expected_value"] == pytest.approx(0.01 * 400 - 0.05)


def test_the_strategy_wave_channel_uplift_is_the_precision_weighted_mean_of_prior_and_pooled_evidence():
    got = by_segment(learned_values(config(welcome()), policy(channels=SMS), evidence(*EVIDENCE)))
    whole = got[ALL]
    assert (whole["treated"], whole["control"]) == (200, 200)
    assert whole["observed_uplift"] == pytest.approx(0.04)
    assert whole["se"] == pytest.approx(math.sqrt(0.00056))
    assert whole["uplift"] == pytest.approx(0.0225)
    assert whole["weight"] == pytest.approx(5 / 12, abs=1e-6)
    assert whole["evidence_used"] and whole["shrunk_toward"] == 0.01
    assert whole["expected_value"] == pytest.approx(8.95)


def test_each_segment_is_shrunk_toward_its_strategy_wave_channel_posterior():
    got = by_segment(learned_values(config(welcome()), policy(channels=SMS), evidence(*EVIDENCE)))
    mass, wealth = got["mass"], got["wealth"]
    assert mass["shrunk_toward"] == pytest.approx(0.0225) and wealth["shrunk_toward"] == pytest.approx(0.0225)
    assert (mass["uplift"], mass["weight"]) == (pytest.approx(0.02125), pytest.approx(0.5))
    assert (wealth["uplift"], wealth["weight"]) == (pytest.approx(0.03), pytest.approx(0.2))
    assert (mass["expected_value"], wealth["expected_value"]) == (pytest.approx(8.45), pytest.approx(11.95))
    assert (wealth["prior_uplift"], wealth["se"], wealth["observed_uplift"]) == (0.01, 0.04, pytest.approx(0.06))


def test_a_segment_without_evidence_gets_the_level_above():
    got = by_segment(learned_values(config(welcome()), policy(channels=SMS), evidence(*EVIDENCE), ["private"]))
    assert got["private"]["uplift"] == pytest.approx(0.0225) and got["private"]["weight"] == 0.0
    assert got["private"]["treated"] == 0 and not got["private"]["evidence_used"]


def test_evidence_with_fewer_than_min_customers_in_an_arm_is_shown_but_not_used():
    thin = [row("welcome", "w1", "sms", "mass", 29, 500, 0.5, 0.0, 0.1)]
    got = by_segment(learned_values(config(welcome()), policy(channels=SMS), evidence(*thin)))
    for r in (got[ALL], got["mass"]):
        assert r["uplift"] == 0.01 and r["weight"] == 0.0 and not r["evidence_used"]
        assert (r["treated"], r["control"]) == (29, 500)
    # with a lower threshold the same evidence counts
    lower = learned_values(config(welcome()), policy(channels=SMS, arbitration={"min_customers": 29}), evidence(*thin))
    assert by_segment(lower)[ALL]["evidence_used"]


def test_a_strategy_prior_sd_overrides_the_policy_default():
    one = [row("welcome", "w1", "sms", "mass", 100, 100, 0.06, 0.03, 0.02)]
    # a single segment pools to itself: estimate 0.03, se 0.02; tau 0.04 -> precisions 625 and 2500, weight 0.8
    got = by_segment(learned_values(config(welcome(prior_sd=0.04)), policy(channels=SMS), evidence(*one)))
    assert got[ALL]["prior_sd"] == 0.04
    assert got[ALL]["weight"] == pytest.approx(0.8)
    assert got[ALL]["uplift"] == pytest.approx(0.2 * 0.01 + 0.8 * 0.03)


def test_no_conversion_in_either_arm_does_not_claim_certainty():
    zero = [row("welcome", "w1", "sms", "mass", 50, 50, 0.0, 0.0, 0.0)]
    got = by_segment(learned_values(config(welcome()), policy(channels=SMS), evidence(*zero)))[ALL]
    p = 0.5 / 51   # half a success added to each arm of 50
    assert got["se"] == pytest.approx(math.sqrt(2 * p * (1 - p) / 50))
    assert 0 < got["weight"] < 1 and 0 < got["uplift"] < 0.01


def test_with_learning_switched_off_the_prior_is_used_and_the_evidence_still_shown():
    got = by_segment(learned_values(config(welcome()), policy(channels=SMS, arbitration={"learn": False}),
                                    evidence(*EVIDENCE)))
    assert got[ALL]["uplift"] == 0.01 and got[ALL]["treated"] == 200 and not got[ALL]["evidence_used"]
    assert got["wealth"]["uplift"] == 0.01 and got["wealth"]["observed_uplift"] == pytest.approx(0.06)


def test_every_wave_and_channel_of_the_map_gets_a_row_with_its_own_prior_and_cost():
    s = strategy("journey", channels=("sms", "rm"), expected={"uplift": {"sms": 0.01, "rm": 0.06}, "value": 400},
                 waves=[{"id": "w1", "day": 0}, {"id": "w2", "day": 7, "channel": "rm",
                                                 "depends_on": {"wave": "w1"}}])
    got = learned_values(config(s), policy(channels={"sms": {"cost": 0.05}, "rm": {"cost": 20}}))
    assert [(r["wave"], r["channel"], r["prior_uplift"], r["cost"], r["expected_value"]) for r in got.to_pylist()] == [
        ("w1", "sms", 0.01, 0.05, 3.95), ("w1", "rm", 0.06, 20.0, 4.0), ("w2", "rm", 0.06, 20.0, 4.0)]


def test_an_unknown_ranking_in_the_contact_policy_names_the_file_line_and_field(tmp_path):
    path = tmp_path / "contact_policy.yaml"
    path.write_text("caps: {day: 1}\narbitration:\n  rank_by: valeu\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_model(ContactPolicy, path)
    problem = err.value.problems[0]
    assert problem.line == 3 and "arbitration.rank_by" in str(problem.field) and "contact_policy.yaml" in str(problem)


def test_a_prior_sd_of_zero_is_refused():
    with pytest.raises(Exception, match="prior_sd"):
        policy(arbitration={"prior_sd": 0})


def test_the_evidence_columns_are_those_review_hands_over():
    review = pytest.importorskip("lifeloop.review.evidence")
    assert review.schema() == evidence_schema()
    # review labels customers without a tier "-": such a segment is kept apart, never mixed into a tier
    odd = [row("welcome", "w1", "sms", "-", 100, 100, 0.06, 0.04, 0.02)]
    got = by_segment(learned_values(config(welcome()), policy(channels=SMS), review.schema().empty_table().select(
        evidence_schema().names)))
    assert set(got) == {ALL}
    got = by_segment(learned_values(config(welcome()), policy(channels=SMS), evidence(*odd), ["mass"]))
    assert set(got) == {ALL, "-", "mass"} and got["mass"]["uplift"] == pytest.approx(got[ALL]["uplift"])
