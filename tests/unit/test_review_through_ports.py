"""Outcomes' entries and the evidence step through their ports with fakes: no lake, database or engine.

The outcomes step's measuring needs the bank's data on an engine (tests/unit/test_outcomes.py runs it on
DuckDB); what it measures — the entries — is pure, from the lists of the days strictly before D.
"""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest

from lifeloop.data.areas import lists_schema
from lifeloop.review import evidence, outcomes
from lifeloop.review.evidence import schema as evidence_schema
from tests.fakes import FolderLake, inputs
from tests.fixtures.outcomes_tables import flags, rows, strategy, table
from tests.unit.strategy_factories import config

D = dt.date(2024, 6, 30)
MAP = config(strategy("wm"))          # product WM, sms then call, waves w1 and w2 (after w1), window 30 days


def day_lists(day: dt.date, *rows_: tuple) -> pa.Table:
    """(customer, group, status, channel, cost) rows of wave w1 of ``wm`` on ``day``."""
    return pa.Table.from_pylist(
        [{"as_of": day, "customer_id": c, "strategy": "wm", "wave": "w1", "group": g, "status": s, "channel": ch,
          "offer": "WM", "cost": cost, "rm_id": "RM1"} for c, g, s, ch, cost in rows_], schema=lists_schema())


@pytest.fixture()
def lake(tmp_path):
    lake = FolderLake(tmp_path)
    lake.put("lists", dt.date(2024, 6, 28), day_lists(dt.date(2024, 6, 28), ("a", "treated", "contact", "sms", 0.05)))
    lake.put("lists", dt.date(2024, 6, 29), day_lists(dt.date(2024, 6, 29), ("b", "control", "control", "sms", 0.0),
                                                      ("a", "treated", "contact", "call", 3.0)))
    # D's own lists (written later in the same run): never an entry of D
    lake.put("lists", D, day_lists(D, ("c", "treated", "contact", "sms", 0.05)))
    return lake


def test_entries_come_from_the_lists_of_days_strictly_before_the_day(lake):
    got = outcomes.entries(outcomes.read_lists(lake, D), MAP, D)
    assert [(r["customer_id"], r["entry_date"], r["arm"]) for r in got.to_pylist()] == [
        ("a", dt.date(2024, 6, 28), "treated"), ("b", dt.date(2024, 6, 29), "control")]


def test_an_entry_adds_up_its_contacts_inside_the_window_and_is_observed_through_the_day(lake):
    a, b = outcomes.entries(outcomes.read_lists(lake, D), MAP, D).to_pylist()
    # a: entered 06-28 by SMS; 06-29 is the same journey (re-entry only after reentry_days), a call in the window
    assert (a["channel"], a["contacted"], a["contacts"], a["cost"]) == ("sms", True, 2, 3.05)
    assert (a["window_end"], a["observed_through"], a["complete"]) == (dt.date(2024, 7, 28), D, False)
    assert (b["contacted"], b["contacts"], b["cost"], b["planned_holdout"]) == (False, 0, 0.0, 0.5)


def test_given_the_days_own_lists_entries_would_count_them_so_the_cut_is_in_read_lists(lake):
    through_d = outcomes.read_lists(lake, D + dt.timedelta(days=1))      # lists of every day up to D itself
    assert sorted(outcomes.entries(through_d, MAP, D)["customer_id"].to_pylist()) == ["a", "b", "c"]


def test_without_earlier_lists_there_are_no_entries(tmp_path):
    assert outcomes.entries(outcomes.read_lists(FolderLake(tmp_path), D), MAP, D).num_rows == 0


# ------------------------------------------------------------------------------------------ evidence
BUY = table(rows("wm", "treated", 10, channel="sms", purchased=flags(4, 10)),
            rows("wm", "control", 5, channel="sms", purchased=flags(1, 5)),
            rows("wm", "treated", 4, channel="call", purchased=flags(3, 4), start=100),
            rows("wm", "control", 2, channel="call", purchased=False, start=100))


def evidence_step(outcomes_table: pa.Table | None):
    return evidence.compute(inputs(snapshots={"outcomes": outcomes_table},
                                   configs={"strategies": (MAP, None)}))


def test_the_evidence_step_turns_the_declared_outcomes_snapshot_into_rates_and_uplift_per_cell():
    out = evidence_step(BUY)
    (t,) = out.tables
    assert (t.name, t.schema, t.order_by) == ("evidence", evidence_schema(), ("strategy", "wave", "channel", "segment"))
    got = {r["channel"]: (r["treated"], r["control"], r["treated_rate"], r["control_rate"])
           for r in t.table.to_pylist()}
    assert got == {"sms": (10, 5, 0.4, 0.2), "call": (4, 2, 0.75, 0.0)}
    assert out.summary == {"cells": 2}


def test_without_an_outcomes_snapshot_the_evidence_is_empty_not_an_error():
    out = evidence_step(None)
    assert out.tables[0].table.num_rows == 0 and out.summary == {"cells": 0}

