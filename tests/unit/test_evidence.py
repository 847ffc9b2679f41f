"""Evidence for the plan (复盘反哺): per strategy, wave, channel and segment, success rates and uplift by hand."""

from __future__ import annotations

import datetime as dt
import math

import pyarrow.parquet as pq
import pytest

from lifeloop.review.evidence import from_outcomes, schema, success_outcome, uplift_evidence
from lifeloop.store.lake import Lake
from tests.fixtures.outcomes_tables import config, flags, rows, strategy, table

MAP = config(strategy("buy"),                                                # product offer: success = purchase
             strategy("care", metric="retention_rate", product=None),        # yes/no primary: retained
             strategy("grow", metric="inflow", product=None),                # money primary: own activity instead
             strategy("wake", metric="reactivation_rate", product=None))     # reactivated: null unless dormant


def outcomes():
    return table(
        # buy / sms / mass: treated 4 of 10 bought, control 1 of 5
        rows("buy", "treated", 10, channel="sms", purchased=flags(4, 10)),
        rows("buy", "control", 5, channel="sms", purchased=flags(1, 5)),
        # buy / call / mass: treated 3 of 4, control 0 of 2
        rows("buy", "treated", 4, channel="call", purchased=flags(3, 4), start=100),
        rows("buy", "control", 2, channel="call", purchased=False, start=100),
        # buy / push: treated only, no control to compare with
        rows("buy", "treated", 3, channel="push", purchased=True, start=200),
        # left out: treated customers no channel reached, windows still open, a strategy not in the map
        rows("buy", "treated", 3, channel="none", purchased=True, start=300),
        rows("buy", "treated", 5, channel="sms", purchased=True, complete=False, start=400),
        rows("gone", "treated", 2, channel="sms"),
        # buy / sms without a segment
        rows("buy", "treated", 2, channel="sms", segment=None, purchased=flags(1, 2), start=500),
        rows("buy", "control", 2, channel="sms", segment=None, purchased=False, start=500),
        # care: retained 3 of 4 treated, 2 of 4 control
        rows("care", "treated", 4, product=False, retained=flags(3, 4)),
        rows("care", "control", 4, product=False, retained=flags(2, 4)),
        # grow: active 2 of 2 treated, 0 of 2 control
        rows("grow", "treated", 2, product=False, active=True, inflow=500.0),
        rows("grow", "control", 2, product=False, active=False),
        # wake: only customers dormant at entry count (reactivated not null)
        rows("wake", "treated", 3, product=False, reactivated=[True, False, None]),
        rows("wake", "control", 2, product=False, reactivated=[False, None]))


@pytest.fixture(scope="module")
def evidence():
    got = from_outcomes(outcomes(), MAP)
    assert got.schema == schema()
    return {(r["strategy"], r["wave"], r["channel"], r["segment"]): r for r in got.to_pylist()}


def test_the_success_outcome_is_the_purchase_then_a_yes_no_primary_then_own_activity():
    assert [success_outcome(s) for s in MAP.strategies] == ["purchased", "retained", "active", "reactivated"]


def test_rates_uplift_and_standard_error_per_strategy_wave_channel_and_segment(evidence):
    sms = evidence[("buy", "w1", "sms", "mass")]
    assert (sms["treated"], sms["control"], sms["treated_rate"], sms["control_rate"]) == (10, 5, 0.4, 0.2)
    assert sms["uplift"] == pytest.approx(0.2, abs=1e-12)
    assert sms["se"] == pytest.approx(math.sqrt(0.4 * 0.6 / 10 + 0.2 * 0.8 / 5), abs=1e-12)  # sqrt(0.056)
    call = evidence[("buy", "w1", "call", "mass")]
    assert (call["treated"], call["control"], call["uplift"]) == (4, 2, 0.75)
    assert call["se"] == pytest.approx(math.sqrt(0.75 * 0.25 / 4), abs=1e-12)              # control 0/2 adds 0


def test_a_cell_without_control_customers_has_rates_but_no_uplift(evidence):
    push = evidence[("buy", "w1", "push", "mass")]
    assert (push["treated"], push["control"], push["treated_rate"]) == (3, 0, 1.0)
    assert (push["control_rate"], push["uplift"], push["se"]) == (None, None, None)


def test_unreached_open_unknown_and_unsegmented_entries(evidence):
    assert not [k for k in evidence if k[2] == "none"]      # stopped by capacity: no channel to credit
    assert not [k for k in evidence if k[0] == "gone"]      # a strategy no longer in the map
    # the 5 open-window sms entries (all buyers) are not in the sms row above: 10 treated, 4 buyers
    blank = evidence[("buy", "w1", "sms", "-")]
    assert (blank["treated"], blank["control"], blank["uplift"]) == (2, 2, 0.5)


def test_other_objectives_use_their_own_yes_no_outcome(evidence):
    care = evidence[("care", "w1", "sms", "mass")]
    assert (care["treated_rate"], care["control_rate"], care["uplift"]) == (0.75, 0.5, 0.25)
    assert care["se"] == pytest.approx(math.sqrt(0.75 * 0.25 / 4 + 0.5 * 0.5 / 4), abs=1e-12)
    grow = evidence[("grow", "w1", "sms", "mass")]
    assert (grow["treated_rate"], grow["control_rate"], grow["uplift"], grow["se"]) == (1.0, 0.0, 1.0, 0.0)
    wake = evidence[("wake", "w1", "sms", "mass")]       # the customers not dormant at entry are not counted
    assert (wake["treated"], wake["control"], wake["treated_rate"], wake["control_rate"]) == (2, 1, 0.5, 0.0)
    assert len(evidence) == 7


def test_the_evidence_comes_from_the_newest_outcomes_snapshot_on_or_before_the_day(tmp_path):
    lake = Lake(tmp_path / "lake")
    old = table(rows("buy", "treated", 2, purchased=True), rows("buy", "control", 2, purchased=False))
    new = outcomes()
    for day, t in ((dt.date(2024, 5, 31), old), (dt.date(2024, 6, 30), new)):
        lake.publish("outcomes", day, lambda s, t=t: pq.write_table(t, s / "outcomes.parquet"))
    assert uplift_evidence(lake, dt.date(2024, 5, 30), MAP).num_rows == 0            # nothing published yet
    in_may = uplift_evidence(lake, dt.date(2024, 6, 29), MAP).to_pylist()
    assert [(r["treated"], r["control"], r["uplift"]) for r in in_may] == [(2, 2, 1.0)]
    assert uplift_evidence(lake, dt.date(2024, 7, 1), MAP).num_rows == 7
