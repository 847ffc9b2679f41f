"""DuckDB and Spark compute the same feature table: every column, every row, and the same file bytes.

The fixture is the tiny bank of the integration tests plus customers chosen to hit the places where
engines disagree unless Lifeloop closes the gap: 29 February birthdays and month ends, division by
zero, NULLs, decimals that do not divide evenly, fractions going into integers, no transactions.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from lifeloop.context import Context
from tests.factories import allow_days_after_batch
from tests.fixtures_bank import BRANCHES, CUSTOMERS, PRODUCTS, RMS, publish_batch, publish_tiny_bank

pytestmark = pytest.mark.spark

d = dt.date.fromisoformat
M = Decimal
NASTY = dt.date(2024, 12, 31)
LEAP_DAY = dt.date(2024, 2, 29)
NASTY_CUSTOMERS = CUSTOMERS + [
    ("C006", "Leap", "F", d("2004-02-29"), None, None, None, "Beijing", None, "B1", None, d("2024-01-31"), False,
     None, None, d("2024-02-29")),
    ("C007", "Cents", "M", d("2000-03-01"), None, None, None, None, None, "B1", None, d("2000-02-29"), False,
     "C5", None, None),
    ("C008", "Eve", "F", d("1999-12-31"), None, None, None, "Shenzhen", None, "B1", None, d("1999-12-31"), False,
     None, None, None),
]
LEAP_TRANSACTIONS = [
    ("L01", "A9", "C006", d("2024-03-15"), M("2.50"), "debit", "purchase", "mobile", "merchant", True, None),
]
NASTY_TRANSACTIONS = [
    # three cent amounts: the average 0.0366... does not end; sums stay exact
    ("N01", "A7", "C007", d("2024-12-01"), M("0.01"), "debit", "fee", "system", "bank", False, None),
    ("N02", "A7", "C007", d("2024-12-02"), M("0.05"), "debit", "purchase", "mobile", "merchant", True, None),
    ("N03", "A7", "C007", d("2024-12-03"), M("0.05"), "debit", "purchase", None, None, True, None),
    # large amounts: their sum needs more than 18 digits before the final cast
    ("N04", "A8", "C008", d("2024-12-30"), M("9999999999999.99"), "credit", "transfer", "online", "individual", True,
     None),
    ("N05", "A8", "C008", d("2024-12-31"), M("9999999999999.99"), "credit", "transfer", "online", "individual", True,
     None),
    ("N06", "A8", "C008", d("2024-12-31"), M("0.01"), "debit", "salary", "counter", "employer", True, None),
    # a half: 2.5 rounds to 3 (away from zero) on both engines
    ("N07", "A9", "C006", d("2024-11-30"), M("2.50"), "debit", "purchase", "pos", "merchant", True, None),
]
NASTY_HOLDINGS = [
    ("A7", "C007", "P_DD", d("2024-12-31"), M("0.00"), None, None, "open"),
    ("A8", "C008", "P_WM", d("2024-09-30"), M("0.03"), None, d("2024-12-31"), "open"),
    ("A8", "C008", "P_WM", d("2024-12-31"), M("0.01"), None, d("2024-12-31"), "open"),
]

EXTRA_TAGS = """
  - name: avg_amount_all
    label: {zh: "笔均金额", en: "Average amount"}
    description: Average amount of all transactions.
    type: DOUBLE
    source: transactions
    aggregate: avg(amount)
  - name: avg_amount_rounded
    label: {zh: "笔均金额取整", en: "Average amount, whole"}
    description: A fraction going into an integer.
    type: BIGINT
    expression: avg_amount_all
  - name: total_amount
    label: {zh: "总金额", en: "Total amount"}
    description: A sum wider than DECIMAL(18,2) until the cast.
    type: DECIMAL(20,2)
    source: transactions
    aggregate: sum(amount)
  - name: half_amount
    label: {zh: "半额", en: "Half amount"}
    description: Decimal arithmetic inside an aggregate.
    type: DECIMAL(20,3)
    source: transactions
    aggregate: sum(amount * 0.5)
  - name: last_channel
    label: {zh: "渠道", en: "Channel"}
    description: Largest channel name (text aggregate with NULLs).
    type: VARCHAR
    source: transactions
    aggregate: max(channel)
  - name: first_txn_date
    label: {zh: "首笔交易日", en: "First transaction date"}
    description: A DATE aggregate.
    type: DATE
    source: transactions
    aggregate: min(txn_date)
  - name: zero_division
    label: {zh: "除零", en: "Division by zero"}
    description: Always divides by zero.
    type: DOUBLE
    expression: frequency_30d / (frequency_90d - frequency_90d)
  - name: value_bucket
    label: {zh: "交易额分档", en: "Value bucket"}
    description: CASE over a decimal tag, string results.
    type: VARCHAR
    expression: "CASE WHEN monetary_365d >= 1000 THEN 'high' WHEN monetary_365d > 0 THEN 'low' ELSE 'none' END"
  - name: place
    label: {zh: "城市性别", en: "City and gender"}
    description: String functions and NULL propagation.
    type: VARCHAR
    expression: lower(city) || '-' || coalesce(gender, '?')
  - name: week_day_offset
    label: {zh: "余数", en: "Remainder"}
    description: Modulo of an integer that may be NULL.
    type: INTEGER
    expression: tenure_days % 7
  - name: aum_mix
    label: {zh: "资产组合", en: "Asset mix"}
    description: Decimal arithmetic between tags.
    type: DECIMAL(18,2)
    expression: aum * 2 - aum_90d_ago
  - name: is_senior
    label: {zh: "银发", en: "Silver-haired"}
    description: A rule over a macro.
    type: BOOLEAN
    expression: age(birth_date) >= 55 OR birth_date IS NULL
"""

DATES = [LEAP_DAY, dt.date(2024, 6, 30), NASTY, dt.date(2025, 2, 28), dt.date(2025, 3, 1)]


@pytest.fixture(scope="module")
def workspaces(tmp_path_factory):
    """Two identical workspaces (one per engine) holding the tiny bank plus the nasty batch."""
    out = {}
    for engine in ("duckdb", "spark"):
        ctx = allow_days_after_batch(Context.init(tmp_path_factory.mktemp(engine) / "bank"), 400)
        path = ctx.config_dir / "tags.yaml"
        path.write_text(path.read_text(encoding="utf-8") + EXTRA_TAGS, encoding="utf-8")
        publish_tiny_bank(ctx.lake)
        state = {"branches": BRANCHES, "relationship_managers": RMS, "customers": NASTY_CUSTOMERS,
                 "products": PRODUCTS}
        # fact batches append: each fact row is delivered in exactly one batch. The leap-day batch holds a
        # row dated after it, which the date filter must drop as of the leap day and keep later.
        publish_batch(ctx.lake, LEAP_DAY, {**state, "transactions": LEAP_TRANSACTIONS})
        publish_batch(ctx.lake, NASTY, {**state, "holdings": NASTY_HOLDINGS, "transactions": NASTY_TRANSACTIONS})
        out[engine] = ctx
    yield out
    for ctx in out.values():
        ctx.close()


@pytest.mark.parametrize("as_of", DATES, ids=[x.isoformat() for x in DATES])
def test_duckdb_and_spark_write_the_same_features(workspaces, spark, as_of):
    results = {engine: ctx.run(as_of, steps=["features"], engine=engine)[0] for engine, ctx in workspaces.items()}
    duck, spk = (workspaces[e].features(as_of) for e in ("duckdb", "spark"))
    assert duck.schema == spk.schema
    assert duck.num_rows == spk.num_rows == results["duckdb"].rows
    for name in duck.column_names:
        assert duck[name].to_pylist() == spk[name].to_pylist(), name
    folder = {e: workspaces[e].lake.snapshot_dir("features", as_of) for e in workspaces}
    assert (folder["duckdb"] / "features.parquet").read_bytes() == (folder["spark"] / "features.parquet").read_bytes()


def test_the_nasty_cases_have_the_values_a_banker_expects(workspaces, spark):
    workspaces["spark"].run(NASTY, steps=["features"], engine="spark")
    rows = {r["customer_id"]: r for r in workspaces["spark"].features(NASTY).to_pylist()}
    leap, cents, eve = rows["C006"], rows["C007"], rows["C008"]
    assert leap["age"] == 20 and leap["tenure_months"] == 11          # born 2004-02-29; opened 2024-01-31
    assert leap["avg_amount_rounded"] == 3                            # 2.5 rounds half away from zero
    assert leap["risk_assessment_days_left"] == -306
    assert cents["avg_amount_all"] == pytest.approx(0.11 / 3) and cents["avg_amount_rounded"] == 0
    assert cents["half_amount"] == Decimal("0.055") and cents["last_channel"] == "system"
    assert cents["age"] == 24 and cents["tenure_months"] == 298       # opened 2000-02-29
    assert eve["total_amount"] == Decimal("19999999999999.99")  # 2 x 9999999999999.99 + 0.01
    assert eve["monetary_30d"] == Decimal("19999999999999.99")
    assert eve["days_to_next_maturity"] == 0 and eve["maturing_amount_30d"] == Decimal("0.01")
    assert eve["aum_change_pct_90d"] == pytest.approx(-2 / 3)
    assert all(r["zero_division"] is None for r in rows.values())
    assert rows["C002"]["place"] == "sh-M" and rows["C005"]["avg_amount_all"] == 3530 / 3  # T12, T13, T14
