"""The demo's truth column (review/simulator_truth.py): hand-computed true uplifts, and nothing outside a demo."""

from __future__ import annotations

import datetime as dt
import io

import pyarrow as pa
import pytest
from rich.console import Console

from lifeloop.review import simulator_truth as st
from lifeloop.review.board import TRUTH_COLUMN, print_board
from lifeloop.review.report import Labels, board

D = dt.date(2025, 1, 1)


def rows() -> pa.Table:
    # C1 seen 15 days after entry (half the 30-day window), C2 45 days after (all of it); C3, C4 are controls
    return pa.table({"customer_id": ["C1", "C2", "C3", "C4"], "offer": ["WM180"] * 4,
                     "entry_date": pa.array([D] * 4, pa.date32()),
                     "observed_through": pa.array([D + dt.timedelta(days=15), D + dt.timedelta(days=45),
                                                   D + dt.timedelta(days=45), D + dt.timedelta(days=45)], pa.date32()),
                     "arm": ["treated", "treated", "control", "control"]})


def contacts(conv=(0.06, 0.04, 0.5, 0.9, 0.0), money=(600.0, 0.0, 10.0, 10.0, 0.0)) -> pa.Table:
    return pa.table({"customer_id": ["C1", "C2", "C1", "C2", "C3"],
                     "offer": ["WM180", "WM180", "WM180", "TD1Y", "WM180"],
                     "treated": [True, True, True, True, False],
                     "incremental_conversions": list(conv), "incremental_money": list(money),
                     # the third contact came before C1's entry, the fourth is another offer: neither counts
                     "as_of": pa.array([D, D, D - dt.timedelta(days=12), D, D], pa.date32())})


def truth(outcome: str, kind: str = "product", table: pa.Table | None = None) -> float | None:
    return st.true_uplift(rows(), contacts() if table is None else table, outcome, window_days=30, kind=kind,
                          product_id="WM180")


def test_conversions_and_money_are_weighted_by_the_window_seen():
    # treated: C1 0.06 x 15/30 = 0.03 and 300 RMB, C2 0.04 x 1 and 0 RMB; controls 0
    assert truth("purchased") == pytest.approx((0.03 + 0.04) / 2)
    assert truth("purchase_amount") == pytest.approx(150.0)
    # WM180: fee rate 0.6% over 180 days, as the outcomes step counts it
    assert truth("fee_income") == pytest.approx(150.0 * 0.006 * 180 / 365)


def test_an_inflow_offer_speaks_for_money_in_and_reactivation_only():
    assert truth("inflow", "inflow") == pytest.approx(150.0)
    assert truth("reactivated", "inflow") == pytest.approx(0.035)
    assert truth("inflow", "product") is None        # a purchase's money in is not what the truth decides
    assert truth("active") is None and truth("aum_change") is None and truth("retained") is None


def test_contacts_that_change_nothing_make_every_outcome_truly_unchanged():
    none = contacts(conv=(0.0,) * 5, money=(0.0,) * 5)
    for outcome in ("retained", "active", "purchased", "aum_change"):
        assert truth(outcome, table=none) == 0.0


def test_without_both_arms_there_is_no_truth():
    one_arm = rows().filter(pa.array([True, True, False, False]))
    assert st.true_uplift(one_arm, contacts(), "purchased", window_days=30, kind="product", product_id="WM180") is None


def test_only_a_demo_workspace_gets_the_key(tmp_path):
    doc = {"interim": True, "strategies": [{"strategy": "s", "offer": "WM180", "primary_outcome": "purchased",
                                            "headline": {"outcome": "purchased", "kind": "binary"}}]}
    outcomes = rows().append_column("strategy", pa.array(["s"] * 4)).append_column("complete", pa.array([True] * 4))
    st.add_truth(tmp_path, doc, outcomes)
    assert "simulator_truth" not in doc["strategies"][0]
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "truth.yaml").write_text(
        (st.Path(__file__).resolve().parents[2] / "src/lifeloop/templates/demo/truth.yaml").read_text("utf-8"),
        encoding="utf-8")
    st.record_contacts(tmp_path, D, contacts().drop(["as_of"]).filter(pa.array([True, True, False, False, True])))
    st.add_truth(tmp_path, doc, outcomes)
    assert doc["strategies"][0]["simulator_truth"] == {"outcome": "purchased", "kind": "binary",
                                                       "uplift": pytest.approx(0.035), "offer": "WM180"}


def test_the_board_and_the_report_show_the_truth_column_in_a_demo_only():
    s = {"strategy": "s", "name": {"zh": "s", "en": "s"}, "owner": "o", "objective": {"kind": "scale"},
         "primary_outcome": "purchased", "verdict": "works", "entries": {"treated": 40, "control": 40, "in_window": 0},
         "money": {"cost": 1.0}, "headline": {"outcome": "purchased", "kind": "binary", "uplift": 0.05,
                                              "ci_low": 0.01, "ci_high": 0.09, "p_value": 0.01, "significant": True,
                                              "treated_mean": 0.1, "control_mean": 0.05}}
    doc = {"as_of": "2025-01-31", "interim": True, "alpha": 0.05, "strategies": [s], "suggestions": []}
    out = io.StringIO()
    print_board(Console(file=out, width=250), doc)
    assert TRUTH_COLUMN not in out.getvalue()
    assert board(doc, Labels(None, "en"))["truth"] is False
    demo = {**doc, "strategies": [{**s, "simulator_truth": {"outcome": "purchased", "kind": "binary",
                                                             "uplift": 0.0432, "offer": "X"}}]}
    out = io.StringIO()
    print_board(Console(file=out, width=250), demo)
    assert TRUTH_COLUMN in out.getvalue() and "+4.32pp" in out.getvalue()
    view = board(demo, Labels(None, "en"))
    assert view["truth"] is True and view["rows"][0]["truth"] == "+4.3 pp"   # the report rounds points to one decimal
