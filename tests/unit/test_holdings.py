"""Holdings analysis on a hand-made book: penetration, product counts, single-product findings, next products."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lifeloop.engine.adapters.duckdb import DuckDBAdapter
from lifeloop.insight.holdings import analyse
from lifeloop.store.lake import Lake
from tests.fixtures_bank import publish_batch

D = dt.date(2024, 6, 30)
d = dt.date.fromisoformat
PRODUCTS = [("P_DD", "Demand deposit", "demand_deposit", None, None, "R1", "CNY"),
            ("P_TD", "Time deposit", "time_deposit", 365, None, "R1", "CNY"),
            ("P_WM", "Wealth plan", "wealth", 180, None, "R2", "CNY"),
            ("P_FD", "Bond fund", "fund", None, None, "R3", "CNY")]


def h(account, customer, product, snapshot, opened, status="open"):
    return (account, customer, product, d(snapshot), Decimal("100.00"), d(opened), None, status)


HOLDINGS = [
    h("A11", "C1", "P_DD", "2024-06-30", "2020-01-01"), h("A12", "C1", "P_TD", "2024-06-30", "2021-01-01"),
    h("A13", "C1", "P_WM", "2024-06-30", "2022-01-01"),
    h("A21", "C2", "P_DD", "2024-06-30", "2019-05-01"),
    h("A22", "C2", "P_WM", "2024-03-31", "2019-06-01"),                  # open in March ...
    h("A22", "C2", "P_WM", "2024-06-30", "2019-06-01", "closed"),        # ... closed by D
    h("A31", "C3", "P_WM", "2024-06-30", "2023-01-01"),
    h("A41", "C4", "P_DD", "2024-03-31", "2018-01-01", "closed"),
    h("A41", "C4", "P_DD", "2024-06-30", "2018-01-01"),                  # reopened: the latest counts
    h("A42", "C4", "P_FD", "2024-06-30", "2018-06-01"),
    h("A51", "C5", "P_DD", "2024-06-30", "2022-01-01"),
    h("A51", "C5", "P_DD", "2024-07-31", "2022-01-01", "closed"),        # after D: not seen
]
SEGMENTS = [("C1", "private", True, False, True, "single"), ("C2", "private", False, False, True, "single"),
            ("C3", "private", False, False, False, None), ("C4", "private", False, False, None, None),
            ("C5", "mass", False, True, False, None), ("C6", "mass", False, False, False, None)]
SEGMENT_COLUMNS = ("customer_id", "tier", "seg_silver", "seg_payroll", "micro_single", "micro_segment")


@pytest.fixture()
def result(tmp_path):
    lake = Lake(tmp_path / "lake")
    publish_batch(lake, D, {"products": PRODUCTS, "holdings": HOLDINGS})
    seg = tmp_path / "segments.parquet"
    pq.write_table(pa.Table.from_pylist([dict(zip(SEGMENT_COLUMNS, r, strict=False)) for r in SEGMENTS]), seg)
    engine = DuckDBAdapter()
    try:
        yield analyse(engine, lake, D, seg, ["mass", "potential", "wealth", "private"],
                      {"mass": "mass", "private": "private-banking"})
    finally:
        engine.close()


def test_penetration_is_the_share_of_each_tier_holding_an_open_product_of_each_type(result):
    pen = result["penetration"]
    assert pen["product_types"] == ["demand_deposit", "time_deposit", "wealth", "fund"]
    tiers = {t["tier"]: t for t in pen["tiers"]}
    assert [t["tier"] for t in pen["tiers"]] == ["mass", "private"]
    assert tiers["private"]["shares"] == {"demand_deposit": 0.75, "time_deposit": 0.25, "wealth": 0.5, "fund": 0.25}
    assert tiers["mass"]["shares"] == {"demand_deposit": 0.5, "time_deposit": 0.0, "wealth": 0.0, "fund": 0.0}


def test_penetration_by_featured_group_and_micro_segment(result):
    groups = {g["group"]: g for g in result["penetration"]["groups"]}
    assert groups["silver"]["customers"] == 1
    assert groups["silver"]["shares"] == {"demand_deposit": 1.0, "time_deposit": 1.0, "wealth": 1.0, "fund": 0.0}
    assert groups["payroll"]["shares"]["demand_deposit"] == 1.0
    # C1 (dd, td, wm) and C2 (dd; its wealth plan closed); an empty flag (C4) counts as not in it
    assert result["penetration"]["micro_segments"] == [
        {"micro_segment": "single", "customers": 2,
         "shares": {"demand_deposit": 1.0, "time_deposit": 0.5, "wealth": 0.5, "fund": 0.0}}]


def test_product_counts_per_tier_include_customers_with_none(result):
    counts = {c["tier"]: c for c in result["product_counts"]}
    assert counts["private"]["accounts"] == {"0": 0, "1": 2, "2": 1, "3": 1, "4": 0, "5+": 0}
    assert counts["mass"]["accounts"] == {"0": 1, "1": 1, "2": 0, "3": 0, "4": 0, "5+": 0}
    assert counts["private"]["single_product_share"] == 0.5
    assert counts["all"]["single_product"] == 3 and counts["all"]["customers"] == 6


def test_single_product_tiers_are_surfaced_as_findings_in_words(result):
    assert "50% of private-banking customers hold one product (2 of 4): a cross-sell opportunity" in result["findings"]


def test_next_products_follow_the_open_date_order_and_count_closed_accounts(result):
    nxt = {n["first"]: n for n in result["next_products"]}
    assert nxt["demand_deposit"]["customers"] == 4 and nxt["demand_deposit"]["opened_another_type"] == 3
    assert [(x["product_type"], x["customers"]) for x in nxt["demand_deposit"]["next"]] == [
        ("fund", 1), ("time_deposit", 1), ("wealth", 1)]
    assert nxt["wealth"] == {"first": "wealth", "customers": 1, "opened_another_type": 0, "next": []}
