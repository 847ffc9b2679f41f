"""Arbitration by priority class, then expected value: who wins a customer's one contact and the RM's slots."""

from __future__ import annotations

import pyarrow as pa
import pytest

from lifeloop.config.contact_policy import Arbitration
from lifeloop.strategy.arbitration import order, priority_class
from lifeloop.strategy.history import History
from lifeloop.strategy.learning import evidence_schema, learned_values
from lifeloop.strategy.plan import make_lists
from lifeloop.strategy.policy import decide
from tests.unit.strategy_factories import D, candidate, candidates, config, consent_all, policy, strategy


def run(rows, strategies, **pol):
    out = decide(candidates(rows), History.from_rows(consent=consent_all(["a", "b", "c", "d"])), policy(**pol),
                 {s.id: s for s in strategies}, D)
    return out.to_pylist()


def test_a_higher_priority_class_goes_first_whatever_the_value():
    regulatory, sale = strategy("regulatory", priority=900), strategy("sale", priority=90)
    got = run([candidate("a", sale, values=[50.0]), candidate("a", regulatory, values=[0.1])], [sale, regulatory],
              caps={"day": 1})
    assert [(g["status"], g["dropped_by"]) for g in got] == [("dropped", "cap_overall_day"), ("contact", None)]


def test_within_a_class_the_more_valuable_strategy_wins_over_the_higher_priority():
    worth, loud = strategy("worth", priority=30), strategy("loud", priority=90)
    rows = [candidate("a", worth, values=[5.0]), candidate("a", loud, values=[1.0])]
    by_value = run(rows, [worth, loud], caps={"day": 1})
    assert [g["status"] for g in by_value] == ["contact", "dropped"]
    by_priority = run(rows, [worth, loud], caps={"day": 1}, arbitration={"rank_by": "priority"})
    assert [g["status"] for g in by_priority] == ["dropped", "contact"]


def test_a_smaller_class_size_makes_priorities_30_and_90_different_classes():
    worth, loud = strategy("worth", priority=30), strategy("loud", priority=90)
    rows = [candidate("a", worth, values=[5.0]), candidate("a", loud, values=[1.0])]
    got = run(rows, [worth, loud], caps={"day": 1}, arbitration={"class_size": 10})
    assert [g["status"] for g in got] == ["dropped", "contact"]
    assert [priority_class(p, Arbitration(class_size=10)) for p in (30, 90, 900)] == [3, 9, 90]
    assert priority_class(90, Arbitration(rank_by="priority")) == 90


def test_relationship_manager_slots_go_to_the_most_valuable_contacts_across_strategies():
    # one RM with 2 tasks a day; the priority-90 strategy is worth least, so it loses its slot
    high, mid, low = (strategy(n, channels=("rm",), priority=p) for n, p in (("high", 90), ("mid", 60), ("low", 30)))
    rows = [candidate("a", high, values=[10.0]), candidate("b", mid, values=[40.0]), candidate("c", low, values=[25.0])]
    got = run(rows, [high, mid, low], channels={"rm": {"per_rm_per_day": 2}})
    assert [g["dropped_by"] for g in got] == ["capacity_rm", None, None]
    got = run(rows, [high, mid, low], channels={"rm": {"per_rm_per_day": 2}}, arbitration={"rank_by": "priority"})
    assert [g["dropped_by"] for g in got] == [None, None, "capacity_rm"]


def test_order_breaks_equal_class_and_value_by_the_hash_draw_not_the_customer_number():
    t = pa.table({"priority": pa.array([50, 50], pa.int32()), "best_value": [1.0, 1.0], "tie": [0.9, 0.1],
                  "customer_id": ["a", "b"], "strategy": ["s", "s"], "wave": ["w", "w"]})
    assert order(t) == [1, 0]


def test_the_plan_values_each_customer_by_the_learned_uplift_of_their_segment():
    # welcome by SMS: prior 0.01 x 400 - 0.05 = 3.95; the evidence says wealth customers respond much more
    # (segment uplift (0.8 x 0.0225 + 0.2 x 0.06) = 0.03 -> 11.95, whole 0.0225 -> 8.95, mass 0.02125 -> 8.45;
    # see test_learning.py). "other" is worth a flat 0.02 x 500 - 0.05 = 9.95 at a higher priority.
    welcome = strategy("welcome", priority=50, expected={"uplift": {"sms": 0.01}, "value": 400})
    other = strategy("other", priority=80, expected={"uplift": {"sms": 0.02}, "value": 500})
    pol = policy(caps={"day": 1}, channels={"sms": {"cost": 0.05}})
    cfg = config(welcome, other)
    names = evidence_schema().names
    evidence = pa.Table.from_pylist([dict(zip(names, r, strict=False)) for r in (
        ("welcome", "w1", "sms", "mass", 100, 100, 0.06, 0.04, 0.02, 0.02),
        ("welcome", "w1", "sms", "wealth", 100, 100, 0.10, 0.04, 0.06, 0.04))], schema=evidence_schema())
    tiers = pa.table({"customer_id": ["a", "b", "c"], "tier": ["wealth", "mass", None]})
    values = learned_values(cfg, pol, evidence, ["mass", "wealth"])
    audiences = pa.Table.from_pylist([dict(customer_id=c, strategy=s, wave="w1", rm_id=None, reason="test")
                                      for c in "abc" for s in ("welcome", "other")])
    lists = make_lists(audiences, cfg, pol, History.from_rows(consent=consent_all(["a", "b", "c"])), D,
                       values=values, tiers=tiers)
    got = {(r["customer_id"], r["strategy"]): (r["status"], r["expected_value"]) for r in lists.to_pylist()}
    # wealth: welcome (11.95) beats other (9.95); mass (8.45) and no tier (the whole: 8.95) lose to other
    assert got[("a", "welcome")] == ("contact", pytest.approx(11.95))
    assert got[("a", "other")][0] == "dropped"
    assert got[("b", "other")] == ("contact", pytest.approx(9.95)) and got[("b", "welcome")][0] == "dropped"
    assert got[("c", "other")][0] == "contact" and got[("c", "welcome")][0] == "dropped"
    # without the learned values everyone gets "other" (9.95 > 3.95)
    plain = make_lists(audiences, cfg, pol, History.from_rows(consent=consent_all(["a", "b", "c"])), D)
    assert {r["customer_id"] for r in plain.to_pylist() if r["status"] == "contact"} == {"a", "b", "c"}
    assert {r["strategy"] for r in plain.to_pylist() if r["status"] == "contact"} == {"other"}
