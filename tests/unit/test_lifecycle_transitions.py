"""Stage flows, moving-on shares and entry cohorts match counts made by hand (tests/unit/insight_factories.py)."""

from __future__ import annotations

import datetime as dt

import pytest

from lifeloop.engine.adapters.duckdb import DuckDBAdapter
from lifeloop.errors import DataError
from lifeloop.insight import transitions
from tests.unit.insight_factories import HISTORY_DATES, history_snapshots

D0, D1, D2, D3 = HISTORY_DATES


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    return history_snapshots(tmp_path_factory.mktemp("lifecycle"))


@pytest.fixture(scope="module")
def engine():
    adapter = DuckDBAdapter()
    yield adapter
    adapter.close()


def as_dict(rows):
    return {(r["from_stage"], r["to_stage"]): (r["customers"], r["rate"]) for r in rows}


def test_flows_over_one_month_count_each_customer_once_with_the_share_of_their_starting_stage(engine, history):
    assert as_dict(transitions.flows(engine, history[D0], history[D1])) == {
        ("onboarding", "honeymoon"): (2, 1.0), ("honeymoon", "honeymoon"): (1, 1.0), ("growing", "growing"): (1, 1.0),
        ("dormant", "won_back"): (1, 1.0), (None, "onboarding"): (1, 1.0)}


def test_flows_over_a_quarter_show_splits_new_customers_and_customers_who_left(engine, history):
    assert as_dict(transitions.flows(engine, history[D0], history[D3])) == {
        ("onboarding", "growing"): (1, 0.5), ("onboarding", "dormant"): (1, 0.5), ("honeymoon", "growing"): (1, 1.0),
        ("growing", None): (1, 1.0), ("dormant", "growing"): (1, 1.0), (None, "growing"): (1, 0.5),
        (None, "prospect"): (1, 0.5)}


def test_moving_on_counts_a_stage_change_at_any_snapshot_inside_the_window(engine, history):
    rows = {r["stage"]: r for r in transitions.moving_on(engine, history, D0)}
    got = {s: (r["customers"], r["moved_30d"], r["moved_90d"]) for s, r in rows.items()}
    assert got == {"onboarding": (2, 2, 2), "honeymoon": (1, 0, 1), "growing": (1, 0, 0), "dormant": (1, 1, 1)}
    assert rows["honeymoon"]["share_90d"] == 1.0 and rows["onboarding"]["share_30d"] == 1.0
    # 30 days after 31 January is 1 March; the last snapshot inside the window is 29 February
    assert rows["onboarding"]["observed_to_30d"] == D1 and rows["onboarding"]["complete_30d"] is True
    assert rows["onboarding"]["observed_to_90d"] == D3 and rows["onboarding"]["complete_90d"] is True


def test_a_month_end_snapshot_a_day_after_the_window_still_counts_within_the_grace_days(engine, history):
    # 29 February + 30 days is 30 March; the next snapshot, 31 March, is one day later
    with_grace = {r["stage"]: r["moved_30d"] for r in transitions.moving_on(engine, history, D1)}
    strict = {r["stage"]: r["moved_30d"] for r in transitions.moving_on(engine, history, D1, grace_days=0)}
    assert with_grace["honeymoon"] == 1 and with_grace["onboarding"] == 1   # d went on to growing, c to honeymoon
    assert strict["honeymoon"] == 0 and strict["onboarding"] == 0


def test_a_window_the_lake_does_not_reach_yet_is_marked_incomplete(engine, history):
    rows = {r["stage"]: r for r in transitions.moving_on(engine, history, D2)}
    assert rows["growing"]["complete_30d"] is True and rows["growing"]["complete_90d"] is False
    assert rows["growing"]["observed_to_90d"] == D3


def test_entry_cohorts_count_customers_entering_a_stage_by_month_and_who_reached_the_next(engine, history):
    got = transitions.entry_cohorts(engine, history, "honeymoon", "growing", by=D3)
    assert [(r["cohort"], r["entered"], r["reached"], r["rate"]) for r in got] == [
        ("2024-02", 2, 1, 0.5), ("2024-03", 1, 1, 1.0)]


def test_entry_cohorts_only_count_what_was_reached_by_the_given_date(engine, history):
    got = transitions.entry_cohorts(engine, history, "honeymoon", "growing", by=D2)
    assert [(r["cohort"], r["entered"], r["reached"]) for r in got] == [("2024-02", 2, 0), ("2024-03", 1, 0)]
    assert transitions.entry_cohorts(engine, history, "honeymoon", "growing", by=D3, month="2024-03")[0]["reached"] == 1


def test_moving_on_from_a_date_without_a_snapshot_says_which_dates_exist(engine, history):
    with pytest.raises(DataError) as info:
        transitions.moving_on(engine, history, dt.date(2024, 1, 1))
    assert "2024-01-31" in info.value.render()
