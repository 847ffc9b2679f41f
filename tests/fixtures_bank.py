"""A tiny hand-made bank for feature tests: every expected value below is computed by hand.

As-of date D = 2024-06-30. Windows: 30 days = after 2024-05-31, 90 days = after 2024-04-01,
365 days = after 2023-07-01. A second batch dated 2024-07-31 holds only facts after D: a feature run
as of D must not see any of it.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pyarrow as pa
import pyarrow.parquet as pq

from lifeloop.data.schema import TABLES, arrow_schema

D = dt.date(2024, 6, 30)
LATER = dt.date(2024, 7, 31)
d = dt.date.fromisoformat


def M(x: str) -> Decimal:
    return Decimal(x)


def _rows(table: str, rows: list[tuple]) -> pa.Table:
    names = TABLES[table].column_names
    return pa.Table.from_pylist([dict(zip(names, r, strict=False)) for r in rows], schema=arrow_schema(table))


BRANCHES = [("B1", "Main street", "Shanghai", "East")]
RMS = [("RM1", "Li Lei", "B1", 20)]
#            id      name  gender birth           id_no mobile email city occupation branch rm  open_date  prospect risk
#    assessed         expires
CUSTOMERS = [
    ("C001", "Wang", "F", d("1980-02-29"), None, None, None, "SH", None, "B1", "RM1", d("2020-01-15"), False, "C3",
     d("2023-12-31"), d("2024-12-31")),
    ("C002", "Zhao", "M", None, None, None, None, "SH", None, "B1", None, d("2024-06-30"), True, None, None, None),
    ("C003", "Qian", "F", d("1975-05-05"), None, None, None, "SH", None, "B1", None, d("2024-07-15"), False, None,
     None, None),
    ("C004", "Sun", "M", d("1990-07-01"), None, None, None, "SH", None, "B1", "RM1", d("2023-12-31"), False, "C2",
     None, None),
    ("C005", "Zhou", "U", d("2000-06-30"), None, None, None, "SH", None, "B1", None, None, False, None, None, None),
]
PRODUCTS = [
    ("P_DD", "Demand deposit", "demand_deposit", None, M("0.001000"), "R1", "CNY"),
    ("P_TD", "1-year time deposit", "time_deposit", 365, M("0.005000"), "R1", "CNY"),
    ("P_WM", "Wealth plan", "wealth", 180, M("0.010000"), "R2", "CNY"),
    ("P_LN", "Mortgage", "loan", 7300, M("0.015000"), None, "CNY"),
    ("P_CC", "Gold card", "credit_card", None, M("0.020000"), None, "CNY"),
]
#           account cust    product snapshot          balance         open  maturity          status
HOLDINGS = [
    ("A1", "C001", "P_DD", d("2024-03-31"), M("1000.00"), None, None, "open"),
    ("A1", "C001", "P_DD", d("2024-06-30"), M("1500.00"), None, None, "open"),
    ("A2", "C001", "P_TD", d("2024-03-31"), M("5000.00"), None, d("2024-07-20"), "open"),
    ("A2", "C001", "P_TD", d("2024-06-29"), M("5000.00"), None, d("2024-07-20"), "open"),
    ("A3", "C001", "P_WM", d("2024-03-31"), M("2000.00"), None, d("2024-06-30"), "open"),
    ("A3", "C001", "P_WM", d("2024-06-30"), M("0.00"), None, d("2024-06-30"), "closed"),
    ("A4", "C001", "P_LN", d("2024-06-30"), M("30000.00"), None, d("2040-01-01"), "open"),
    ("A5", "C004", "P_DD", d("2024-06-30"), M("12000.00"), None, None, "open"),
    ("A6", "C004", "P_CC", d("2024-06-30"), M("500.00"), None, None, "open"),
]
#               id    account cust  date              amount        direction type  channel  counterparty initiated
TRANSACTIONS = [
    ("T01", "A1", "C001", d("2024-06-28"), M("100.00"), "debit", "purchase", "mobile", "merchant", True, None),
    ("T02", "A1", "C001", d("2024-06-01"), M("50.50"), "debit", "transfer", "online", "individual", True, None),
    ("T03", "A1", "C001", d("2024-05-31"), M("200.00"), "credit", "transfer", "branch", "individual", True, None),
    ("T04", "A1", "C001", d("2024-04-01"), M("10.00"), "debit", "cash", "atm", "other", True, None),
    ("T05", "A1", "C001", d("2024-06-15"), M("1.25"), "credit", "interest", "system", "bank", False, None),
    ("T06", "A1", "C001", d("2022-01-01"), M("999.99"), "debit", "purchase", "pos", "merchant", True, None),
    ("T07", "A5", "C004", d("2024-01-25"), M("8000.00"), "credit", "salary", "system", "employer", False, None),
    ("T08", "A5", "C004", d("2024-03-25"), M("8000.00"), "credit", "salary", "system", "employer", False, None),
    ("T09", "A5", "C004", d("2024-04-25"), M("8000.00"), "credit", "salary", "system", "employer", False, None),
    ("T10", "A5", "C004", d("2024-05-24"), M("8000.00"), "credit", "salary", "system", "employer", False, None),
    ("T11", "A5", "C004", d("2024-06-25"), M("8000.00"), "credit", "salary", "system", "employer", False, None),
    ("T12", "A1", "C005", d("2024-06-30"), M("30.00"), "debit", "purchase", "mobile", "merchant", True, None),
    ("T13", "A1", "C005", d("2024-05-20"), M("3000.00"), "credit", "salary", "system", "employer", False, None),
    # dated after D inside the D batch (a late extract): must be cut by the date filter
    ("T14", "A1", "C005", d("2024-07-02"), M("500.00"), "debit", "purchase", "mobile", "merchant", True, None),
]
EVENTS = [
    ("E1", "C001", d("2024-06-29"), None, "app_login", "mobile", None),
    ("E2", "C001", d("2024-05-01"), None, "app_login", "mobile", None),
    ("E3", "C001", d("2024-06-10"), None, "page_view", "mobile", "wealth"),
]
# the next month's batch: only facts after D, and a changed customer table
LATER_CUSTOMERS = [tuple(list(c[:3]) + [d("1999-01-01")] + list(c[4:])) for c in CUSTOMERS]
LATER_TRANSACTIONS = [
    ("T90", "A1", "C001", d("2024-07-05"), M("777.00"), "debit", "purchase", "mobile", "merchant", True, None),
    ("T91", "A1", "C002", d("2024-07-06"), M("12.00"), "debit", "purchase", "mobile", "merchant", True, None),
]
LATER_HOLDINGS = [("A1", "C001", "P_DD", d("2024-07-31"), M("9999.00"), None, None, "open")]
LATER_EVENTS = [("E9", "C001", d("2024-07-01"), None, "app_login", "mobile", None)]


def publish_batch(lake, as_of: dt.date, tables: dict[str, list[tuple]]) -> None:
    """Publish canonical rows as one bank batch (what ingest would write)."""
    def write(staging):
        for name, rows in tables.items():
            pq.write_table(_rows(name, rows), staging / f"{name}.parquet")
        return {"tables": {n: len(r) for n, r in tables.items()}}

    lake.publish("bank", as_of, write)


def publish_tiny_bank(lake) -> None:
    """Both batches of the tiny bank."""
    publish_batch(lake, D, {"branches": BRANCHES, "relationship_managers": RMS, "customers": CUSTOMERS,
                            "products": PRODUCTS, "holdings": HOLDINGS, "transactions": TRANSACTIONS,
                            "events": EVENTS})
    publish_batch(lake, LATER, {"branches": BRANCHES, "relationship_managers": RMS, "customers": LATER_CUSTOMERS,
                                "products": PRODUCTS, "holdings": LATER_HOLDINGS,
                                "transactions": LATER_TRANSACTIONS, "events": LATER_EVENTS})


# Expected tags as of D, by hand (customer C003 opens after D and is absent).
EXPECTED = {
    "C001": dict(
        frequency_30d=2, frequency_90d=3, frequency_365d=4,
        monetary_30d=M("150.50"), monetary_90d=M("350.50"), monetary_365d=M("360.50"),
        recency_30d=2, recency_90d=2, recency_365d=2, days_since_last_txn=2,
        avg_txn_amount_90d=350.50 / 3,
        inflow_30d=M("1.25"), inflow_90d=M("201.25"), outflow_30d=M("150.50"), outflow_90d=M("150.50"),
        net_flow_30d=M("-149.25"),
        digital_share_90d=2 / 3, branch_txn_90d=1,
        salary_months_3m=0, salary_months_6m=0, salary_amount_3m=M("0.00"), payroll_flag=False,
        salary_regularity_6m=0.0,
        aum=M("6500.00"), aum_90d_ago=M("8000.00"), aum_change_90d=M("-1500.00"), aum_change_pct_90d=-0.1875,
        deposit_balance=M("6500.00"), investment_balance=M("0.00"), loan_balance=M("30000.00"),
        card_balance=M("0.00"),
        products_held=3, product_lines=3, demand_deposit_count=1, time_deposit_count=1, wealth_count=0,
        fund_count=0, insurance_count=0, credit_card_count=0, loan_count=1,
        days_to_next_maturity=20, maturing_amount_30d=M("5000.00"),
        app_logins_30d=1, app_logins_90d=2, days_since_last_login=1,
        age=44, tenure_days=(D - d("2020-01-15")).days, tenure_months=53, risk_assessment_days_left=184,
    ),
    "C002": dict(
        frequency_30d=0, frequency_90d=0, frequency_365d=0,
        monetary_30d=M("0.00"), monetary_90d=M("0.00"), monetary_365d=M("0.00"),
        recency_30d=None, recency_90d=None, recency_365d=None, days_since_last_txn=None,
        avg_txn_amount_90d=None, inflow_30d=M("0.00"), inflow_90d=M("0.00"), outflow_30d=M("0.00"),
        outflow_90d=M("0.00"), net_flow_30d=M("0.00"), digital_share_90d=None, branch_txn_90d=0,
        salary_months_3m=0, salary_months_6m=0, salary_amount_3m=M("0.00"), payroll_flag=False,
        salary_regularity_6m=0.0,
        aum=M("0.00"), aum_90d_ago=M("0.00"), aum_change_90d=M("0.00"), aum_change_pct_90d=None,
        deposit_balance=M("0.00"), investment_balance=M("0.00"), loan_balance=M("0.00"), card_balance=M("0.00"),
        products_held=0, product_lines=0, demand_deposit_count=0, time_deposit_count=0, wealth_count=0,
        fund_count=0, insurance_count=0, credit_card_count=0, loan_count=0,
        days_to_next_maturity=None, maturing_amount_30d=M("0.00"),
        app_logins_30d=0, app_logins_90d=0, days_since_last_login=None,
        age=None, tenure_days=0, tenure_months=0, risk_assessment_days_left=None,
    ),
    "C004": dict(
        frequency_30d=0, frequency_90d=0, frequency_365d=0, monetary_30d=M("0.00"), recency_30d=None,
        days_since_last_txn=None, avg_txn_amount_90d=None, digital_share_90d=None,
        inflow_30d=M("8000.00"), inflow_90d=M("24000.00"), outflow_30d=M("0.00"),
        salary_months_3m=3, salary_months_6m=4, salary_amount_3m=M("24000.00"), payroll_flag=True,
        salary_regularity_6m=4 / 6,
        aum=M("12000.00"), aum_90d_ago=M("0.00"), aum_change_90d=M("12000.00"), aum_change_pct_90d=None,
        card_balance=M("500.00"), products_held=2, product_lines=2, credit_card_count=1, demand_deposit_count=1,
        age=33, tenure_days=182, tenure_months=5, risk_assessment_days_left=None,
    ),
    "C005": dict(
        frequency_30d=1, frequency_90d=1, monetary_30d=M("30.00"), recency_30d=0, days_since_last_txn=0,
        avg_txn_amount_90d=30.0, digital_share_90d=1.0, outflow_30d=M("30.00"), inflow_30d=M("0.00"),
        inflow_90d=M("3000.00"), salary_months_3m=1, salary_months_6m=1, salary_amount_3m=M("3000.00"),
        payroll_flag=False, salary_regularity_6m=1 / 6, aum=M("0.00"), products_held=0,
        days_to_next_maturity=None, age=24, tenure_days=None, tenure_months=None,
    ),
}
