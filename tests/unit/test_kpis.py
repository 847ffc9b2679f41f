"""Lifecycle KPIs on a tiny hand-built lake: every rate below is counted by hand from the tables here."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from decimal import Decimal

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from rich.console import Console

from lifeloop.data.schema import arrow_schema
from lifeloop.engine.adapters.duckdb import DuckDBAdapter
from lifeloop.errors import DataError
from lifeloop.review import kpis
from lifeloop.review.kpis_render import kpis_json, print_kpis
from lifeloop.store.lake import Lake
from tests.unit.insight_factories import HISTORY_DATES, history_snapshots

D0, D1, D2, D3 = HISTORY_DATES          # 2024-01-31, 02-29, 03-31, 04-30

# customer -> stage at D0..D3 (None: not in that snapshot)
STAGES = {
    "a": ("onboarding", "honeymoon", "honeymoon", "growing"),
    "b": (None, "onboarding", "honeymoon", "honeymoon"),
    "c": ("growing", "dormant", "dormant", "won_back"),
    "d": ("dormant", "dormant", "churned", "churned"),
    "e": ("mature", "mature", "churned", "churned"),
    "f": ("prospect", "prospect", "onboarding", "honeymoon"),
    "g": ("dormant", "won_back", "growing", "growing"),
    "h": ("mature", "mature", "mature", "mature"),
    "i": (None, None, None, "onboarding"),
    "j": (None, "onboarding", "honeymoon", "churned"),
}


def d(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


def customers():
    home = {"b": ("B1", "RM1", "2024-02-10"), "f": ("B2", None, "2024-03-25"), "i": ("B1", "RM1", "2024-04-25"),
            "j": ("B1", "RM1", "2024-02-20"), "h": ("B2", "RM2", "2020-01-01")}
    rows = []
    for cid in STAGES:
        branch, rm, opened = home.get(cid, ("B1", None, "2023-01-01"))
        rows.append({"customer_id": cid, "name": cid, "branch_id": branch, "rm_id": rm, "open_date": d(opened),
                     "is_prospect": False})
    return rows


def holding(acc, cid, product, snap, balance, opened, status="open"):
    return {"account_id": acc, "customer_id": cid, "product_id": product, "snapshot_date": d(snap),
            "balance": Decimal(balance), "open_date": d(opened), "status": status}


HOLDINGS = [
    holding("A_a1", "a", "CUR", "2024-01-31", "300.00", "2024-01-15"),        # opened before the window
    holding("A_b1", "b", "CUR", "2024-02-29", "1000.00", "2024-02-10"),
    holding("A_b1", "b", "CUR", "2024-04-30", "1500.00", "2024-02-10"),
    holding("A_b2", "b", "TD", "2024-04-30", "50000.00", "2024-04-02"),
    holding("A_b3", "b", "TD", "2024-04-30", "20000.00", "2024-04-02"),       # a second account, same product
    holding("A_f1", "f", "CUR", "2024-03-31", "200.00", "2024-03-25"),
    holding("A_f1", "f", "CUR", "2024-04-30", "300.00", "2024-03-25"),
    holding("A_i1", "i", "CUR", "2024-04-30", "100.00", "2024-04-25"),
    holding("A_j1", "j", "CUR", "2024-02-29", "10.00", "2024-02-20"),
    holding("A_j1", "j", "CUR", "2024-04-30", "0.00", "2024-02-20", status="closed"),
    holding("A_h1", "h", "CUR", "2024-01-31", "5000.00", "2020-01-01"),
    holding("A_h1", "h", "CUR", "2024-04-30", "5000.00", "2020-01-01"),
    holding("A_h2", "h", "FUND", "2024-04-30", "20000.00", "2021-05-01"),
    holding("A_h3", "h", "CARD", "2024-03-31", "800.00", "2024-03-03"),
]


def txn(tid, cid, day, initiated):
    return {"transaction_id": tid, "account_id": "x", "customer_id": cid, "txn_date": d(day),
            "amount": Decimal("10.00"), "direction": "debit", "txn_type": "transfer", "channel": "mobile",
            "customer_initiated": initiated}


TRANSACTIONS = [
    txn("T1", "b", "2024-03-05", True),      # b: 24 days after the first product: activated
    txn("T2", "f", "2024-03-30", False),     # f: interest does not count
    txn("T3", "f", "2024-04-28", True),      # f: 34 days after the first product: too late
    txn("T4", "i", "2024-04-26", True),      # i: activated, but i's 30 days are not over by D3 (pending)
]

PRODUCTS = [{"product_id": "CUR", "name": "Current", "product_type": "demand_deposit"},
            {"product_id": "TD", "name": "Time deposit", "product_type": "time_deposit"},
            {"product_id": "FUND", "name": "Fund", "product_type": "fund"},
            {"product_id": "CARD", "name": "Card", "product_type": "credit_card"}]


def write_table(folder, name, rows):
    pq.write_table(pa.Table.from_pylist(rows, schema=arrow_schema(name)), folder / f"{name}.parquet")


def segments(rows):
    schema = pa.schema([("customer_id", pa.string()), ("tier", pa.string()), ("aum", pa.decimal128(18, 2))])
    return pa.Table.from_pylist([{"customer_id": c, "tier": t, "aum": Decimal(a)} for c, t, a in rows], schema=schema)


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    root = tmp_path_factory.mktemp("kpis")
    files = history_snapshots(root / "built", STAGES)
    lake = Lake(root / "lake")
    for day, path in files.items():
        lake.publish("lifecycle", day, lambda s, p=path: (shutil.copy(p, s / "lifecycle.parquet"), None)[1])

    def bank(staging):
        write_table(staging, "customers", customers())
        write_table(staging, "products", PRODUCTS)
        write_table(staging, "holdings", HOLDINGS)
        write_table(staging, "transactions", TRANSACTIONS)
    lake.publish("bank", D3, bank)
    lake.publish("segments", D2, lambda s: pq.write_table(segments([("a", "mass", "50.00")]), s / "segments.parquet"))
    lake.publish("segments", D3, lambda s: pq.write_table(segments(
        [("a", "mass", "100.00"), ("b", "mass", "200.00"), ("f", "mass", "300.50"), ("h", "affluent", "60000.00")]),
        s / "segments.parquet"))
    return lake


@pytest.fixture(scope="module")
def result(lake):
    engine = DuckDBAdapter()
    yield kpis.compute(engine, lake, D0, D3)
    engine.close()


def test_stage_distribution_counts_each_snapshots_customers_with_their_share(result):
    first = {r["stage"]: (r["customers"], r["share"]) for r in result["stage_distribution"] if r["as_of"] == D0}
    # D0: a onboarding, c growing, d and g dormant, e and h mature, f prospect = 7 customers
    assert first == {"onboarding": (1, 0.142857), "growing": (1, 0.142857), "dormant": (2, 0.285714),
                     "mature": (2, 0.285714), "prospect": (1, 0.142857)}
    assert result["snapshots"] == [D0, D1, D2, D3]


def test_churn_rate_per_period_counts_active_customers_who_are_churned_at_the_next_snapshot(result):
    periods = [(r["from"], r["customers"], r["moved"], r["rate"]) for r in result["churn"]["periods"]]
    # D0: a c d e g h active (f is a prospect), nobody churned by D1; D1: a b c d e g h j, of whom d and e
    # were churned at D2; D2: a b c f g h j (d and e already churned), of whom j was churned at D3
    assert periods == [(D0, 6, 0, 0.0), (D1, 8, 2, 0.25), (D2, 7, 1, 0.142857)]
    # over the window: of the 6 active at D0 (a c d e g h), d and e were churned later
    assert result["churn"]["window"] == {"customers": 6, "moved": 2, "rate": 0.333333}


def test_dormant_reactivation_counts_dormant_customers_seen_won_back(result):
    periods = [(r["from"], r["customers"], r["moved"]) for r in result["reactivation"]["periods"]]
    assert periods == [(D0, 2, 1), (D1, 2, 0), (D2, 1, 1)]       # g back at D1; c back at D3
    assert result["reactivation"]["window"] == {"customers": 2, "moved": 1, "rate": 0.5}   # d and g; g came back


def test_activation_counts_new_customers_whose_own_transaction_came_within_30_days_of_their_first_product(result):
    # entered onboarding/honeymoon after the lake's first snapshot: b and j (D1), f (D2, from prospect), i (D3);
    # a was already onboarding in the first snapshot. i's 30 days end after D3: pending. Of b, f, j only b.
    assert result["activation"] == {"entered": 4, "measured": 3, "pending": 1, "activated": 1, "rate": 0.333333,
                                    "days": 30}


def test_retention_by_opening_month_is_given_only_where_every_customer_can_be_measured(result):
    rows = {r["cohort"]: (r["customers"], r["rate_1m"], r["rate_3m"]) for r in result["retention"]}
    # b (02-10) and j (02-20) were honeymoon on 03-31; f (03-25) honeymoon on 04-30; i (04-25) has no snapshot
    # a month later; nobody has three months of snapshots
    assert rows == {"2024-02": (2, 1.0, None), "2024-03": (1, 1.0, None), "2024-04": (1, None, None)}


def test_retention_curve_counts_a_churned_customer_as_lost_at_the_first_snapshot_after_k_months():
    rows = [{"customer_id": "b", "open_date": d("2024-02-10"), "as_of": D3, "stage": "honeymoon"},
            {"customer_id": "j", "open_date": d("2024-02-20"), "as_of": D3, "stage": "churned"},
            {"customer_id": "j", "open_date": d("2024-02-20"), "as_of": D2, "stage": "honeymoon"}]
    # two months after 02-10 / 02-20 is 04-10 / 04-20: both are measured on 04-30, where j is churned
    assert kpis.retention_curves(rows, [D2, D3], months=(2,)) == [
        {"cohort": "2024-02", "customers": 2, "retained_2m": 1, "rate_2m": 0.5}]


def test_products_per_customer_counts_distinct_open_products_at_each_accounts_latest_snapshot(result):
    p = result["products_per_customer"]
    # a 1, b 2 (two time deposits are one product), f 1, i 1, h 3, j 0 (its only account closed)
    assert (p["customers"], p["average"]) == (5, 1.6)
    assert [(r["products"], r["customers"]) for r in p["distribution"]] == [(1, 3), (2, 1), (3, 1)]


def test_aum_by_tier_sums_each_segments_snapshot(result):
    rows = [(r["as_of"], r["tier"], r["customers"], r["aum"], r["average_aum"]) for r in result["aum_by_tier"]]
    assert rows == [(D2, "mass", 1, Decimal("50.00"), Decimal("50.00")),
                    (D3, "affluent", 1, Decimal("60000.00"), Decimal("60000.00")),
                    (D3, "mass", 3, Decimal("600.50"), Decimal("200.17"))]


def test_daily_sales_report_lists_new_holdings_per_day_branch_rm_and_product_type_with_opening_amounts(result):
    rows = [(str(r["day"]), r["branch_id"], r["rm_id"], r["product_type"], r["accounts"], r["customers"],
             str(r["amount"])) for r in result["daily_sales"]]
    assert rows == [("2024-02-10", "B1", "RM1", "demand_deposit", 1, 1, "1000.00"),
                    ("2024-02-20", "B1", "RM1", "demand_deposit", 1, 1, "10.00"),
                    ("2024-03-03", "B2", "RM2", "credit_card", 1, 1, "800.00"),
                    ("2024-03-25", "B2", None, "demand_deposit", 1, 1, "200.00"),
                    ("2024-04-02", "B1", "RM1", "time_deposit", 2, 1, "70000.00"),
                    ("2024-04-25", "B1", "RM1", "demand_deposit", 1, 1, "100.00")]


def test_a_window_starting_later_counts_entries_at_its_first_snapshot_from_the_stage_history(lake):
    engine = DuckDBAdapter()
    try:
        out = kpis.compute(engine, lake, D2, D3)
    finally:
        engine.close()
    # f entered onboarding at D2 (previous stage prospect) and i at D3; b and j entered before the window
    assert (out["activation"]["entered"], out["activation"]["pending"]) == (2, 1)
    assert [r["from"] for r in out["transitions"]] == [D2] * len(out["transitions"])
    assert [str(r["day"]) for r in out["daily_sales"]] == ["2024-04-02", "2024-04-25"]


def test_a_window_without_lifecycle_snapshots_says_which_dates_are_published(lake):
    engine = DuckDBAdapter()
    try:
        with pytest.raises(DataError, match="no lifecycle snapshot is published between 2023-01-01") as err:
            kpis.compute(engine, lake, dt.date(2023, 1, 1), dt.date(2023, 12, 31))
    finally:
        engine.close()
    assert "2024-04-30" in err.value.hint


def test_the_json_shape_has_iso_dates_and_exact_money_and_the_tables_render(result):
    data = kpis_json(result)
    text = json.dumps(data)                      # plain JSON types only
    assert data["schema"] == "lifeloop.kpis/1" and data["from"] == "2024-01-31"
    assert data["daily_sales"][4]["amount"] == "70000.00"
    assert data["aum_by_tier"][2]["average_aum"] == "200.17"
    console = Console(record=True, width=160)
    print_kpis(console, result)
    out = console.export_text()
    assert "每日销售报表" in out and "70,000.00" in out and "33.3%" in out and len(text) > 100


def test_sales_per_branch_and_rm_add_up_the_days_largest_amount_first(result):
    rows = [(r["branch_id"], r["rm_id"], r["accounts"], str(r["amount"]), r["by_product_type"])
            for r in result["sales_by_branch_rm"]]
    # B1/RM1: 1,000 + 10 + 70,000 (two time deposits) + 100
    assert rows == [("B1", "RM1", 5, "71110.00", {"demand_deposit": 3, "time_deposit": 2}),
                    ("B2", "RM2", 1, "800.00", {"credit_card": 1}),
                    ("B2", None, 1, "200.00", {"demand_deposit": 1})]
