"""The plan end to end on ten candidates, through its ports with fakes: every decision worked out by hand.

As of D = 2024-06-30. Contact policy: one contact a day and two a week per customer; SMS quiet hours
21:00-08:00; marketing needs a consent row; a refused call is remembered six months; ranking by priority.
Strategies (holdout salt "unit"):

* ``care``   priority 90, RM task — c1 (RM1)
* ``review`` priority 80, RM task — c2 (RM1); RM1 can take one task a day (relationship_managers table)
* ``upsell`` priority 50, SMS then call, wave at 07:30, holdout 5% — c1, c3, c4, c5, c6, c7, c9
* ``night``  priority 40, SMS, wave at 23:30 — c8

Holdout draws (first 8 bytes of sha256("<customer>|upsell|unit") / 2^64): c3 0.034 < 0.05 is control;
the next lowest is c6 at 0.104, so every other upsell customer is treated.
"""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest
from sqlglot import exp

from lifeloop.config.contact_policy import ContactPolicy
from lifeloop.config.strategies import StrategiesConfig
from lifeloop.strategy import plan
from lifeloop.strategy.audiences import output_schema as audiences_schema
from lifeloop.strategy.history import History, InMemoryHistory
from tests.fakes import BankTables, D, NotAvailable, config, inputs

POLICY = """
    caps: {day: 1, week: 2}
    quiet_hours:
      sms: {start: "21:00", end: "08:00"}
    consent:
      missing: {marketing: false, service: true}
    refusal_memory_months: {call: 6}
    channels:
      sms:  {cost: 0.05, send_at: "10:00"}
      call: {cost: 3.0, send_at: "10:00"}
      rm:   {cost: 20.0, send_at: "09:30"}
    arbitration: {rank_by: priority}
"""


def _strategy(sid: str, priority: int, channels: list[str], send_at: str | None = None, holdout: float = 0.0) -> str:
    sms = "【测试银行】{{ customer_name }}您好，回复TD退订"
    scripts = "\n".join(f"      {ch}: {{zh: \"{sms}\", en: \"【Test Bank】Hello, Reply STOP to opt out\"}}"
                        for ch in channels)
    wave = f"{{id: w1, day: 0, send_at: \"{send_at}\"}}" if send_at else "{id: w1, day: 0}"
    return f"""
  - id: {sid}
    name: {{zh: {sid}, en: {sid}}}
    owner: unit
    objective: {{kind: customers, metric: m, window_days: 30}}
    scenario: {{kind: lifecycle}}
    audience: "true"
    offer: {{code: {sid.upper()}}}
    channels: [{", ".join(channels)}]
    scripts:
{scripts}
    waves: [{wave}]
    holdout: {holdout}
    priority: {priority}
    start: 2024-01-01
"""


STRATEGIES = "holdout_salt: unit\nstrategies:" + "".join([
    _strategy("care", 90, ["rm"]), _strategy("review", 80, ["rm"]),
    _strategy("upsell", 50, ["sms", "call"], send_at="07:30", holdout=0.05),
    _strategy("night", 40, ["sms"], send_at="23:30")])

AUDIENCES = pa.Table.from_pylist(
    [{"customer_id": c, "strategy": s, "wave": "w1", "rm_id": "RM1", "reason": "rule"} for s, c in
     [("care", "c1"), ("review", "c2"), ("night", "c8")] + [("upsell", c) for c in
                                                            ("c1", "c3", "c4", "c5", "c6", "c7", "c9")]],
    schema=audiences_schema())


def consent(customer: str, *channels: str, granted: bool = True) -> list[dict]:
    return [dict(customer_id=customer, purpose="marketing", channel=ch, granted=granted) for ch in channels]


HISTORY = History.from_rows(
    consent=consent("c1", "rm", "sms", "call") + consent("c2", "rm") + consent("c3", "sms", "call")
    + consent("c5", "sms", "call") + consent("c6", "sms", granted=False) + consent("c6", "call")
    + consent("c7", "sms", "call") + consent("c8", "sms") + consent("c9", "sms", "call"),  # c4: no row at all
    dnd=[dict(customer_id="c5", channel="sms", start_date=dt.date(2024, 6, 1), end_date=None)],
    refusals=[dict(customer_id="c6", channel="call", refused_on=dt.date(2024, 3, 1))],
    contacts=[dict(customer_id="c9", strategy="care", wave="w1", channel="sms", contact_date=day, treated=True,
                   outcome=None) for day in (dt.date(2024, 6, 25), dt.date(2024, 6, 28))]
    # outside the look-back window: never read
    + [dict(customer_id="c7", strategy="care", wave="w1", channel="sms", contact_date=dt.date(2023, 1, 1),
            treated=True, outcome=None)])

RMS = pa.table({"rm_id": ["RM1"], "daily_capacity": pa.array([1], pa.int32())})
CUSTOMERS = pa.table({"customer_id": pa.array([], pa.string()), "risk_level": pa.array([], pa.string()),
                      "risk_assessed_on": pa.array([], pa.date32()), "risk_expires_on": pa.array([], pa.date32()),
                      "birth_date": pa.array([], pa.date32())})
PRODUCTS = pa.table({"product_id": pa.array([], pa.string()), "product_type": pa.array([], pa.string()),
                     "risk_level": pa.array([], pa.string())})

# (strategy, customer) -> (group, status, channel, send_at, cost, dropped_by, detail)
EXPECTED = {
    ("care", "c1"): ("treated", "contact", "rm", "09:30", 20.0, None, None),
    ("night", "c8"): ("treated", "dropped", None, None, 0.0, "quiet_hours", "sms: quiet_hours"),
    ("review", "c2"): ("treated", "dropped", None, None, 0.0, "capacity_rm", "rm: capacity_rm"),
    ("upsell", "c1"): ("treated", "dropped", None, None, 0.0, "cap_overall_day",
                       "sms: cap_overall_day; call: cap_overall_day"),          # care took c1's one contact today
    ("upsell", "c3"): ("control", "control", "sms", "08:00", 0.0, None, None),  # 07:30 moved to the end of quiet hours
    ("upsell", "c4"): ("treated", "dropped", None, None, 0.0, "consent", "sms: consent; call: consent"),
    ("upsell", "c5"): ("treated", "contact", "call", "07:30", 3.0, None, "sms: dnd"),   # calls have no quiet hours
    ("upsell", "c6"): ("treated", "dropped", None, None, 0.0, "consent", "sms: consent; call: refusal_memory"),
    ("upsell", "c7"): ("treated", "contact", "sms", "08:00", 0.05, None, None),
    ("upsell", "c9"): ("treated", "dropped", None, None, 0.0, "cap_overall_week",
                       "sms: cap_overall_week; call: cap_overall_week"),        # two contacts in the last 7 days
}


def decisions(lists: pa.Table) -> dict[tuple[str, str], tuple]:
    return {(r["strategy"], r["customer_id"]): (r["group"], r["status"], r["channel"], r["send_at"], r["cost"],
                                                r["dropped_by"], r["detail"]) for r in lists.to_pylist()}


@pytest.fixture(scope="module")
def configs():
    return {"strategies": config(StrategiesConfig, STRATEGIES, "strategies"),
            "contact_policy": config(ContactPolicy, POLICY, "contact_policy")}


@pytest.fixture(scope="module")
def decided(configs):
    (cfg, _), (pol, _) = configs["strategies"], configs["contact_policy"]
    history = InMemoryHistory(HISTORY).load(D, pol.lookback_days)
    return plan.decide_lists(AUDIENCES, cfg, pol, history, D, plan.BankLookups(CUSTOMERS, PRODUCTS, RMS))


def test_each_of_the_ten_candidates_gets_the_hand_computed_decision(decided):
    assert decisions(decided.tables[0].table) == EXPECTED


def test_the_lists_are_sorted_by_strategy_wave_and_customer_and_dated_the_day(decided):
    lists = decided.tables[0].table
    assert list(zip(lists["strategy"].to_pylist(), lists["customer_id"].to_pylist(), strict=True)) == [
        ("care", "c1"), ("night", "c8"), ("review", "c2"), ("upsell", "c1"), ("upsell", "c3"), ("upsell", "c4"),
        ("upsell", "c5"), ("upsell", "c6"), ("upsell", "c7"), ("upsell", "c9")]
    assert set(lists["as_of"].to_pylist()) == {D}


def test_the_summary_counts_statuses_dropping_policies_channels_and_cost(decided):
    assert decided.summary == {
        "status": {"contact": 3, "control": 1, "dropped": 6},
        "dropped_by": {"cap_overall_day": 1, "cap_overall_week": 1, "capacity_rm": 1, "consent": 2, "quiet_hours": 1},
        "channels": {"call": 1, "rm": 1, "sms": 1}, "cost": 23.05, "reassessments": 0, "evidence_cells": 0}


def test_offers_that_are_not_products_are_not_subject_to_suitability_and_nobody_needs_reassessing(decided):
    tables = {t.name: t.table for t in decided.tables}
    assert tables["lists"]["suitability"].null_count == 10
    assert tables["reassessments"].num_rows == 0


def test_without_rm_capacity_in_the_bank_both_rm_tasks_go_out():
    cfg, _ = config(StrategiesConfig, STRATEGIES)
    pol, _ = config(ContactPolicy, POLICY)
    no_capacity = pa.table({"rm_id": ["RM1"], "daily_capacity": pa.array([None], pa.int32())})
    out = plan.decide_lists(AUDIENCES, cfg, pol, InMemoryHistory(HISTORY).load(D, pol.lookback_days), D,
                            plan.BankLookups(CUSTOMERS, PRODUCTS, no_capacity))
    got = decisions(out.tables[0].table)
    assert got[("review", "c2")][:3] == ("treated", "contact", "rm")
    assert got[("care", "c1")][:3] == ("treated", "contact", "rm")


def test_a_null_rm_capacity_is_left_to_the_channel_default():
    t = pa.table({"rm_id": ["RM1", "RM2"], "daily_capacity": pa.array([3, None], pa.int32())})
    assert plan.rm_capacity_of(t) == {"RM1": 3}


def test_the_step_compute_reads_only_its_ports_and_asks_the_engine_for_three_bank_look_ups(configs):
    engine = BankTables(customers=CUSTOMERS, products=PRODUCTS, relationship_managers=RMS)
    out = plan.compute(inputs(snapshots={"audiences": AUDIENCES, "segments": None, "evidence": None},
                              configs=configs, history=InMemoryHistory(HISTORY), engine=engine))
    assert decisions(out.tables[0].table) == EXPECTED
    assert sorted(engine.queries) == ["customers", "products", "relationship_managers"]
    assert [t.name for t in out.tables] == ["lists", "reassessments", "values"]


def test_the_fakes_refuse_what_a_unit_test_must_not_need():
    engine = BankTables(relationship_managers=RMS)
    with pytest.raises(NotAvailable, match="more than a look-up"):
        engine.to_arrow(exp.select("rm_id").from_("relationship_managers").where("daily_capacity > 1"))
    with pytest.raises(NotAvailable, match="no table 'customers'"):
        engine.to_arrow(exp.select("customer_id").from_("customers"))
    with pytest.raises(NotAvailable, match="register_bank"):
        engine.register_bank(None, D)
    with pytest.raises(NotAvailable, match="the lake's 'publish'"):
        inputs().lake.publish("lists", D, print)
