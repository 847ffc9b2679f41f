"""Factories for insight tests: tiny feature snapshots with the columns the default templates use."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

AS_OF = dt.date(2024, 6, 30)

# the feature columns the default lifecycle.yaml and segments.yaml read (and their catalogue types)
FEATURE_SCHEMA = pa.schema([
    ("customer_id", pa.string()),
    ("tenure_days", pa.int32()),
    ("products_held", pa.int32()),
    ("product_lines", pa.int32()),
    ("aum", pa.decimal128(18, 2)),
    ("aum_90d_ago", pa.decimal128(18, 2)),
    ("days_since_last_txn", pa.int32()),
    ("frequency_30d", pa.int32()),
    ("frequency_90d", pa.int32()),
    ("inflow_90d", pa.decimal128(18, 2)),
    ("payroll_flag", pa.bool_()),
    ("age", pa.int32()),
    ("insurance_count", pa.int32()),
    ("fund_count", pa.int32()),
    ("wealth_count", pa.int32()),
    ("loan_count", pa.int32()),
])

# an ordinary active customer of 200 days: past the honeymoon, not yet mature (the catch-all, growing)
BASE = dict(tenure_days=200, products_held=2, product_lines=2,
            aum=Decimal("20000.00"), aum_90d_ago=Decimal("20000.00"), days_since_last_txn=3, frequency_30d=7,
            frequency_90d=20, inflow_90d=Decimal("15000.00"), payroll_flag=False, age=40, insurance_count=0,
            fund_count=0,
            wealth_count=0, loan_count=0)


def customer(customer_id: str, **overrides) -> dict:
    """One feature row: the ordinary customer with some features changed."""
    unknown = set(overrides) - set(FEATURE_SCHEMA.names)
    assert not unknown, f"not a feature: {unknown}"
    row = {**BASE, **overrides, "customer_id": customer_id}
    for k in ("aum", "aum_90d_ago", "inflow_90d"):
        if row[k] is not None and not isinstance(row[k], Decimal):
            row[k] = Decimal(str(row[k])).quantize(Decimal("0.01"))
    return row


def feature_table(rows: list[dict]) -> pa.Table:
    """An Arrow feature table from rows built by :func:`customer`."""
    return pa.Table.from_pylist(rows, schema=FEATURE_SCHEMA)


def write_features(path: Path, rows: list[dict]) -> Path:
    """Write a feature snapshot file and return its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(feature_table(rows), path)
    return path


def publish_features(lake, as_of: dt.date, rows: list[dict]) -> None:
    """Publish a feature snapshot into a lake as the features step would."""
    lake.publish("features", as_of, lambda staging: (write_features(staging / "features.parquet", rows), None)[1],
                 manifest={"rows": len(rows)})


# ---------------------------------------------------------------------------- lifecycle history
HISTORY_DATES = (dt.date(2024, 1, 31), dt.date(2024, 2, 29), dt.date(2024, 3, 31), dt.date(2024, 4, 30))
# customer -> stage at each of HISTORY_DATES (None: not in that snapshot)
HISTORY = {
    "a": ("onboarding", "honeymoon", "honeymoon", "growing"),
    "b": ("onboarding", "honeymoon", "honeymoon", "dormant"),
    "c": (None, "onboarding", "honeymoon", "growing"),
    "d": ("honeymoon", "honeymoon", "growing", "growing"),
    "e": ("growing", "growing", "growing", None),
    "f": ("dormant", "won_back", "won_back", "growing"),
    "g": (None, None, None, "prospect"),
}


def history_snapshots(directory: Path, history: dict = HISTORY, dates: tuple = HISTORY_DATES) -> dict[dt.date, Path]:
    """Lifecycle snapshot files for a stage history, with days_in_stage as the lifecycle step counts it."""
    from lifeloop.insight.lifecycle import output_schema

    files = {}
    state: dict[str, tuple[str, int]] = {}
    for i, d in enumerate(dates):
        rows = []
        for cid, stages in sorted(history.items()):
            stage = stages[i]
            if stage is None:
                state.pop(cid, None)
                continue
            prev = state.get(cid)
            gap = (d - dates[i - 1]).days if i else 0
            days = prev[1] + gap if prev and prev[0] == stage else 0
            rows.append({"customer_id": cid, "stage": stage, "rule": stage, "previous_stage": prev[0] if prev else None,
                         "days_in_stage": days, "as_of": d})
            state[cid] = (stage, days)
        path = directory / f"as_of={d}" / "lifecycle.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(rows, schema=output_schema()), path)
        files[d] = path
    return files
