"""Small canonical fixtures: a tiny bank's extracts, written as CSV or Parquet, and a fresh workspace.

Values are chosen by hand so tests can assert exact counts: 2 branches, 1 relationship manager,
3 customers (one a prospect), 3 products, 4 holding snapshots, 5 transactions (the last dated
2024-03-31, the batch's natural as-of date).
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
from pathlib import Path
from typing import Any

import pytest

BANK_AS_OF = dt.date(2024, 3, 31)


def canonical_bank() -> dict[str, list[dict[str, Any]]]:
    """A tiny bank as canonical rows (text values, as a bank's CSV extract would hold them)."""
    return {
        "branches": [
            {"branch_id": "B1", "name": "Main street", "city": "Shanghai", "region": "East"},
            {"branch_id": "B2", "name": "Harbour", "city": "Ningbo", "region": "East"},
        ],
        "relationship_managers": [
            {"rm_id": "RM1", "name": "Wang Fang", "branch_id": "B1", "daily_capacity": "20"},
        ],
        "customers": [
            {"customer_id": "C1", "name": "李娜", "gender": "F", "birth_date": "1960-05-01", "branch_id": "B1",
             "rm_id": "RM1", "open_date": "2020-01-15", "is_prospect": "false", "risk_level": "C3"},
            {"customer_id": "C2", "name": "Zhang Wei", "gender": "M", "birth_date": "1990-11-30", "branch_id": "B2",
             "rm_id": "", "open_date": "2023-06-01", "is_prospect": "false", "risk_level": ""},
            {"customer_id": "C3", "name": "Chen Jie", "gender": "U", "birth_date": "", "branch_id": "B2",
             "rm_id": "", "open_date": "", "is_prospect": "true", "risk_level": ""},
        ],
        "products": [
            {"product_id": "CUR", "name": "Current account", "product_type": "demand_deposit", "currency": "CNY"},
            {"product_id": "TD1Y", "name": "Time deposit 1 year", "product_type": "time_deposit", "term_days": "365",
             "fee_rate": "0.001500", "risk_level": "R1", "currency": "CNY"},
            {"product_id": "CARD", "name": "Credit card", "product_type": "credit_card", "currency": "CNY"},
        ],
        "holdings": [
            {"account_id": "A1", "customer_id": "C1", "product_id": "CUR", "snapshot_date": "2024-02-29",
             "balance": "1000.00", "open_date": "2020-01-15", "status": "open"},
            {"account_id": "A1", "customer_id": "C1", "product_id": "CUR", "snapshot_date": "2024-03-31",
             "balance": "1250.50", "open_date": "2020-01-15", "status": "open"},
            {"account_id": "A2", "customer_id": "C1", "product_id": "TD1Y", "snapshot_date": "2024-03-31",
             "balance": "50000.00", "open_date": "2023-09-01", "maturity_date": "2024-08-31", "status": "open"},
            {"account_id": "A3", "customer_id": "C2", "product_id": "CUR", "snapshot_date": "2024-03-31",
             "balance": "0.00", "open_date": "2023-06-01", "status": "open"},
        ],
        "transactions": [
            _txn("T1", "A1", "C1", "2024-03-01", "5000.00", "credit", "salary", "system", "employer", "false"),
            _txn("T2", "A1", "C1", "2024-03-05", "120.00", "debit", "card_payment", "pos", "merchant", "true"),
            _txn("T3", "A1", "C1", "2024-03-20", "3629.50", "debit", "transfer", "mobile", "individual", "true"),
            _txn("T4", "A3", "C2", "2024-03-21", "10.00", "debit", "fee", "system", "internal", "false"),
            _txn("T5", "A1", "C1", "2024-03-31", "0.01", "credit", "interest", "system", "internal", "false"),
        ],
    }


def _txn(tid: str, acc: str, cust: str, day: str, amount: str, direction: str, kind: str, channel: str,
         counterparty: str, initiated: str) -> dict[str, str]:
    return {"transaction_id": tid, "account_id": acc, "customer_id": cust, "txn_date": day, "amount": amount,
            "direction": direction, "txn_type": kind, "channel": channel, "counterparty_kind": counterparty,
            "customer_initiated": initiated}


def write_csv(path: Path, rows: list[dict[str, Any]], *, delimiter: str = ",", encoding: str = "utf-8",
              columns: list[str] | None = None) -> Path:
    """Write rows as a CSV with a header (columns: the union of the rows' keys, in first-seen order)."""
    names = columns or list(dict.fromkeys(k for r in rows for k in r))
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding=encoding, newline="") as f:
        w = csv.writer(f, delimiter=delimiter, lineterminator="\n")
        w.writerow(names)
        for r in rows:
            w.writerow(["" if r.get(n) is None else r.get(n, "") for n in names])
    return path


def write_canonical(folder: Path, tables: dict[str, list[dict[str, Any]]] | None = None, *, fmt: str = "csv",
                    delimiter: str = ",", encoding: str = "utf-8") -> Path:
    """Write a canonical extract folder (``<table>.csv`` or ``<table>.parquet``)."""
    from lifeloop.data.schema import TABLES

    tables = tables if tables is not None else canonical_bank()
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in tables.items():
        columns = [c for c in TABLES[name].column_names if any(c in r for r in rows)]
        if fmt == "csv":
            write_csv(folder / f"{name}.csv", rows, delimiter=delimiter, encoding=encoding, columns=columns)
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            data = {c: pa.array([(r.get(c) or None) for r in rows], pa.string()) for c in columns}
            pq.write_table(pa.table(data), folder / f"{name}.parquet")
    return folder


def new_context(root: Path):
    """A fresh workspace in ``root/ws`` opened as a Context."""
    from lifeloop.context import Context

    return Context.init(root / "ws")


def allow_days_after_batch(ctx, days: int):
    """Let runs compute days long after the newest batch (date-arithmetic tests: month-ends of one extract)."""
    settings = ctx.workspace / "lifeloop.yaml"
    text = settings.read_text(encoding="utf-8")
    assert "max_days_after_batch: 7" in text
    settings.write_text(text.replace("max_days_after_batch: 7", f"max_days_after_batch: {days}"), encoding="utf-8")
    ctx.__dict__.pop("config", None)  # the cached lifeloop.yaml
    return ctx


def lake_fingerprint(ctx) -> dict[str, str]:
    """sha256 of every file under the lake (to prove a failed ingest changed nothing)."""
    root = Path(ctx.lake.root)
    if not root.exists():
        return {}
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


# the real Berka dataset (../shared/data/berka, never committed here) and its shipped mapping
REPO = Path(__file__).resolve().parents[1]
BERKA = REPO / ".." / "shared" / "data" / "berka"
BERKA_MAPPING = REPO / "examples" / "berka" / "mapping.yaml"
BERKA_AS_OF = dt.date(1994, 10, 30)
needs_berka = pytest.mark.skipif(not (BERKA / "trans.asc.gz").exists(),
                                 reason="Berka data not found at ../shared/data/berka (see examples/berka/README.md)")
