"""The customer profile (客户档案): one customer's whole picture in one call, masked for the viewer.

Attributes (personal data masked by role, see :mod:`lifeloop.data.masking`), holdings (the latest
snapshot of each account), recent transactions and events, tags (the feature row), the stage
history (every lifecycle snapshot), segments and cluster. The ``access`` block says who looked, in
which masking role, what was masked and what an unmask grant showed.

Who may see which customer (an RM their book, a branch manager their branch, head office everyone) is
checked by :meth:`lifeloop.context.Context.customer` before this is called (:mod:`lifeloop.data.access`).
"""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from lifeloop.config.masking import masking_policy
from lifeloop.data.masking import Role, mask_money, mask_row, role
from lifeloop.engine.adapters.duckdb import DuckDBAdapter
from lifeloop.errors import DataError, NotFoundError, did_you_mean
from lifeloop.insight.money import money_columns, workspace_money_tags
from lifeloop.store import customer_index

if TYPE_CHECKING:
    import pyarrow as pa


# ---------------------------------------------------------------------------- queries (sqlglot trees)
def _is_customer(customer_id: str, table: str | None = None) -> exp.Expression:
    return exp.EQ(this=exp.column("customer_id", table=table, quoted=True), expression=exp.Literal.string(customer_id))


def customer_query(customer_id: str) -> exp.Select:
    """The customer's row of the canonical customers table."""
    return exp.select("*").from_("customers").where(_is_customer(customer_id))


def customer_ids_query(rm_id: str | None = None) -> exp.Select:
    """Every customer number (of one RM's book when ``rm_id`` is given), for a "did you mean"."""
    query = exp.select(exp.column("customer_id", quoted=True)).from_("customers")
    if rm_id is not None:
        query = query.where(exp.EQ(this=exp.column("rm_id", quoted=True), expression=exp.Literal.string(rm_id)))
    return query


def holdings_query(customer_id: str) -> exp.Select:
    """The latest snapshot of each of the customer's accounts, with the product's name and type."""
    latest = exp.Window(this=exp.RowNumber(), partition_by=[exp.column("account_id", quoted=True)],
                        order=exp.Order(expressions=[exp.Ordered(this=exp.column("snapshot_date", quoted=True),
                                                                 desc=True)]))
    inner = (exp.select("*", exp.alias_(latest, "_latest")).from_("holdings").where(_is_customer(customer_id))
             .subquery("h"))
    cols = [exp.column(c, table="h", quoted=True) for c in ("account_id", "product_id", "snapshot_date", "balance",
                                                             "open_date", "maturity_date", "status")]
    return (exp.select(*cols, exp.alias_(exp.column("name", table="p", quoted=True), "product_name"),
                       exp.column("product_type", table="p", quoted=True))
            .from_(inner)
            .join(exp.to_table("products").as_("p"), on=exp.EQ(this=exp.column("product_id", table="h"),
                                                              expression=exp.column("product_id", table="p")),
                  join_type="left")
            .where(exp.EQ(this=exp.column("_latest", table="h"), expression=exp.Literal.number(1)))
            .order_by(exp.column("open_date", table="h"), exp.column("account_id", table="h")))


def recent_query(table: str, customer_id: str, date_column: str, id_column: str, limit: int) -> exp.Select:
    """The customer's latest ``limit`` rows of a fact table, newest first."""
    return (exp.select("*").from_(table).where(_is_customer(customer_id))
            .order_by(exp.Ordered(this=exp.column(date_column, quoted=True), desc=True),
                      exp.Ordered(this=exp.column(id_column, quoted=True), desc=True))
            .limit(limit))


# ---------------------------------------------------------------------------- helpers
def _plain(value: Any) -> Any:
    """JSON-ready values: money as numbers (exact to the cent), dates kept as dates."""
    if isinstance(value, Decimal):
        return float(value)
    return value


def _latest_on_or_before(lake: Any, area: str, as_of: dt.date) -> dt.date | None:
    dates = [d for d in lake.dates(area) if d <= as_of]
    return dates[-1] if dates else None


def _snapshot_row(lake: Any, area: str, as_of: dt.date, customer_id: str) -> tuple[dt.date | None, dict | None,
                                                                                    pa.Schema | None]:
    import pyarrow.parquet as pq

    d = _latest_on_or_before(lake, area, as_of)
    if d is None:
        return None, None, None
    path = lake.snapshot_dir(area, d) / f"{area}.parquet"
    table = pq.read_table(path, filters=[("customer_id", "=", customer_id)])
    rows = table.to_pylist()
    return d, (rows[0] if rows else None), table.schema


def stage_history(lake: Any, customer_id: str, as_of: dt.date) -> list[dict[str, Any]]:
    """Every lifecycle snapshot of the customer up to ``as_of``, oldest first."""
    import pyarrow.parquet as pq

    out = []
    for d in lake.dates("lifecycle"):
        if d > as_of:
            break
        rows = pq.read_table(lake.snapshot_dir("lifecycle", d) / "lifecycle.parquet",
                             filters=[("customer_id", "=", customer_id)]).to_pylist()
        for r in rows:
            out.append({"as_of": d, "stage": r["stage"], "rule": r["rule"], "previous_stage": r["previous_stage"],
                        "days_in_stage": r["days_in_stage"]})
    return out


_local = threading.local()
# the relations a profile reads, as the index holds them (already the bank's views as of its date)
INDEXED = ("customers", "holdings", "transactions", "events", "products")


def _point_engine() -> Any:
    """This thread's DuckDB adapter for profiles read from the customer index, kept between requests (a new
    database per request would cost more than the whole read); it holds a customer's rows only while in use."""
    engine = getattr(_local, "engine", None)
    if engine is None:
        engine = _local.engine = DuckDBAdapter(threads=1)
    return engine


def bank_rows(ctx: Any, as_of: dt.date, customer_id: str, transactions: int, events: int
              ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """The customer's row, latest holdings, recent transactions and events as of ``as_of`` (unmasked).

    From the customer index (:mod:`lifeloop.store.customer_index`) when it has the customer: the same queries run
    over their rows only (a few row groups, not the whole history) and give the same rows. Otherwise (no usable
    index, another engine configured, or a customer it does not hold — whom the scan then tells "did you mean")
    over the bank's views."""
    rows = (customer_index.customer_rows(ctx.lake, as_of, customer_id)
            if getattr(ctx, "engine_name", "duckdb") == "duckdb" else None)
    if rows is None:
        engine = ctx.engine()
        engine.register_bank(ctx.lake, as_of)
        return _queries(engine, customer_id, transactions, events)
    engine = _point_engine()
    try:
        for name in INDEXED:
            engine.register_arrow(name, rows[name])
        return _queries(engine, customer_id, transactions, events)
    finally:
        for name in INDEXED:
            engine.con.unregister(name)


def _queries(engine: Any, customer_id: str, transactions: int, events: int) -> tuple[list[dict[str, Any]], ...]:
    return (engine.to_arrow(customer_query(customer_id)).to_pylist(),
            engine.to_arrow(holdings_query(customer_id)).to_pylist(),
            engine.to_arrow(recent_query("transactions", customer_id, "txn_date", "transaction_id",
                                         transactions)).to_pylist(),
            engine.to_arrow(recent_query("events", customer_id, "event_date", "event_id", events)).to_pylist())


# ---------------------------------------------------------------------------- the profile
def customer_profile(ctx: Any, customer_id: str, *, viewer: Role | None = None, as_of: dt.date | None = None,
                     transactions: int = 20, events: int = 20,
                     access: dict[str, Any] | None = None) -> dict[str, Any]:
    """One customer's whole picture as of a date (default: the latest bank batch), masked for ``viewer``.

    Who may ask for whom is decided before (``Context.customer``: permission, scope, unmask grants); here
    the viewer's masking role applies to every personal field, and ``access`` is returned with the profile.
    """
    viewer = viewer or role("analyst", masking_policy(ctx.configs))
    lake = ctx.lake
    batches = lake.dates("bank")
    if not batches:
        raise DataError("no bank data has been ingested yet", hint="run `lifeloop ingest FOLDER` first")
    as_of = as_of or batches[-1]
    found, holding_rows, txn_rows, event_rows = bank_rows(ctx, as_of, customer_id, transactions, events)
    if not found:
        every = ctx.engine().to_arrow(customer_ids_query())["customer_id"].to_pylist()
        raise NotFoundError(f"no customer {customer_id!r} as of {as_of}{did_you_mean(customer_id, every)}",
                            hint="check the customer number (客户号); they are case-sensitive, and customers who "
                                 "open after the as-of date are not there yet")
    masked_columns: list[str] = []

    def masked(table: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for r in rows:
            m, cols = mask_row(table, r, viewer)
            masked_columns.extend(f"{table}.{c}" for c in cols)
            out.append({k: _plain(v) for k, v in m.items()})
        return out

    attributes = masked("customers", found[:1])[0]
    holdings = masked("holdings", holding_rows)
    txns = masked("transactions", txn_rows)
    evts = [{k: _plain(v) for k, v in r.items()} for r in event_rows]

    features_as_of, tags, schema = _snapshot_row(lake, "features", as_of, customer_id)
    if tags is not None and schema is not None:
        money = money_columns({f.name: f.type for f in schema}, workspace_money_tags(ctx.configs))
        tags = {k: (mask_money(v, viewer) if k in money else _plain(v)) for k, v in tags.items() if k != "customer_id"}
        masked_columns.extend(f"features.{c}" for c in sorted(money & set(tags)) if not viewer.money_exact)
    seg_as_of, seg, _ = _snapshot_row(lake, "segments", as_of, customer_id)
    segments = None
    if seg is not None:
        segments = {"as_of": seg_as_of, "tier": seg["tier"], "micro_segment": seg["micro_segment"],
                    "groups": sorted(k[4:] for k, v in seg.items() if k.startswith("seg_") and v),
                    "micro_segments": sorted(k[6:] for k, v in seg.items() if k.startswith("micro_") and
                                             k != "micro_segment" and v is True)}
    cl_as_of, cl, _ = _snapshot_row(lake, "clusters", as_of, customer_id)
    cluster = None if cl is None else {"as_of": cl_as_of, "cluster_id": cl["cluster_id"],
                                       "name": cl["cluster_name"], "distance": cl["distance"]}
    history = stage_history(lake, customer_id, as_of)
    return {
        "customer_id": customer_id, "as_of": as_of,
        "attributes": attributes,
        "stage": history[-1] if history else None,
        "stage_history": history,
        "segments": segments,
        "cluster": cluster,
        "tags": {"as_of": features_as_of, "values": tags} if tags is not None else None,
        "holdings": holdings,
        "transactions": txns,
        "events": evts,
        "access": {**(access or {}), "role": viewer.name, "masked": sorted(set(masked_columns)),
                   "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")},
    }
