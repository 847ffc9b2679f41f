"""What dispatch reads from the lake for the day's customers: details, consent, names, maturity figures.

Only the listed customers are read into memory. Personal fields (name, mobile) travel to adapters
raw and are masked there for each recipient's role; scripts only ever get masked values.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from lifeloop.errors import DataError

if TYPE_CHECKING:
    import pyarrow as pa


def bank_tables(lake: Any, as_of: dt.date, customer_ids: Sequence[str]) -> tuple[dict[str, dict[str, Any]], dict]:
    """The listed customers' details (name, mobile, gender, rm_id, branch) and consent from the lake as of D."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    files = lake.bank_files(as_of)
    wanted = pa.array(sorted(set(customer_ids)), pa.string())
    customers: dict[str, dict[str, Any]] = {}
    if "customers" in files:
        present = pq.read_schema(files["customers"][0]).names
        cols = [c for c in ("customer_id", "name", "mobile", "gender", "rm_id", "branch_id") if c in present]
        table = lake.read_table(files["customers"][0], columns=cols)   # name and mobile are C2: decrypted
        table = table.filter(pc.is_in(table["customer_id"], wanted))
        customers = {r["customer_id"]: r for r in table.to_pylist()}
    # staff and branch names for scripts (not personal data: the bank's own reference tables)
    names = {}
    for name, key in (("relationship_managers", "rm_id"), ("branches", "branch_id")):
        if name in files:
            names[key] = {r[key]: r["name"] for r in pq.read_table(files[name][0], columns=[key, "name"]).to_pylist()}
    for row in customers.values():
        row["rm_name"] = names.get("rm_id", {}).get(row.get("rm_id"))
        row["branch_name"] = names.get("branch_id", {}).get(row.get("branch_id"))
    baseline: dict[tuple[str, str, str], bool] = {}
    if "consent" in files:
        table = pq.read_table(files["consent"][0], columns=["customer_id", "purpose", "channel", "granted"])
        table = table.filter(pc.is_in(table["customer_id"], wanted))
        baseline = {(r["customer_id"], r["purpose"], r["channel"]): bool(r["granted"]) for r in table.to_pylist()}
    return customers, baseline


def add_features(ctx: Any, as_of: dt.date, customers: dict[str, dict[str, Any]]) -> None:
    """Maturity figures for scripts from the day's feature snapshot, when it has them."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq


    wanted = ("days_to_next_maturity", "maturing_amount_30d")
    try:
        path = ctx.lake.snapshot_file("features", as_of)
    except DataError:
        return  # no features published for D: scripts leave those figures blank
    cols = [c for c in wanted if c in pq.read_schema(path).names]
    if not cols or not customers:
        return
    ids = pa.array(sorted(customers), pa.string())
    features = pq.read_table(path, columns=["customer_id", *cols])  # two columns, not the whole snapshot
    table = features.filter(pc.is_in(features["customer_id"], ids))
    for row in table.to_pylist():
        customers[row["customer_id"]].update({c: row[c] for c in cols})


def product_names(products: pa.Table | None) -> dict[str, str]:
    """product_id -> name from the bank's product catalogue (for scripts)."""
    if products is None:
        return {}
    return dict(zip(products["product_id"].to_pylist(), products["name"].to_pylist(), strict=False))
