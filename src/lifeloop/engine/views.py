"""Engine-internal derived relations (sqlglot trees) that aggregate tags read from.

These are not user input: they may use window functions and joins that user expressions may not.
Each source is a relation of per-row facts with a ``customer_id`` column, evaluated as of a date:

* ``transactions``: every transaction dated on or before D, plus ``days_ago`` and ``months_ago``;
* ``events``: every digital or business event on or before D, plus ``days_ago`` and ``months_ago``;
* ``holdings``: the latest snapshot per account on or before D (``holdings_asof``), with the product's
  type, risk level and fee rate, and ``is_asset`` (the product type counts towards AUM).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlglot import exp

from lifeloop.data.schema import ASSET_PRODUCT_TYPES, TABLES
from lifeloop.engine.adapters.base import date_literal


def _col(name: str, table: str | None = None) -> exp.Column:
    return exp.column(name, table=table, quoted=True)


def days_ago(date_column: str, as_of: dt.date) -> exp.Expression:
    """Whole days from a row's date to D (0 on D itself)."""
    return exp.DateDiff(this=date_literal(as_of), expression=_col(date_column), unit=exp.var("DAY"))


def months_ago(date_column: str, as_of: dt.date) -> exp.Expression:
    """Calendar months from a row's month to D's month (0 in D's own month, 1 in the month before)."""
    row_month = exp.Add(this=exp.Mul(this=exp.Year(this=_col(date_column)), expression=exp.Literal.number(12)),
                        expression=exp.Month(this=_col(date_column)))
    return exp.Paren(this=exp.Sub(this=exp.Literal.number(as_of.year * 12 + as_of.month),
                                  expression=exp.Paren(this=row_month)))


def _dated_rows(table_name: str, as_of: dt.date) -> exp.Select:
    table = TABLES[table_name]
    date_col = table.date_column
    assert date_col is not None
    return (exp.select(*[_col(c) for c in table.column_names],
                       exp.alias_(days_ago(date_col, as_of), "days_ago", quoted=True),
                       exp.alias_(months_ago(date_col, as_of), "months_ago", quoted=True))
            .from_(exp.to_table(table_name, quoted=True))
            .where(exp.LTE(this=_col(date_col), expression=date_literal(as_of))))


def holdings_asof(as_of: dt.date) -> exp.Select:
    """The latest snapshot per account on or before ``as_of``, with its product joined."""
    holdings = TABLES["holdings"]
    # ties on (account, date) only happen when a batch repeats a snapshot; the extra order keys make
    # the pick the same on every engine
    rank = exp.Window(this=exp.RowNumber(), partition_by=[_col("account_id")],
                      order=exp.Order(expressions=[
                          exp.Ordered(this=_col("snapshot_date"), desc=True),
                          exp.Ordered(this=_col("balance"), desc=True),
                          exp.Ordered(this=_col("status")),
                          exp.Ordered(this=_col("customer_id")),
                          exp.Ordered(this=_col("product_id"))]))
    ranked = (exp.select(*[_col(c) for c in holdings.column_names], exp.alias_(rank, "_rank", quoted=True))
              .from_(exp.to_table("holdings", quoted=True))
              .where(exp.LTE(this=_col("snapshot_date"), expression=date_literal(as_of))))
    product_type = _col("product_type", "p")
    is_asset = exp.In(this=product_type.copy(), expressions=[exp.Literal.string(t) for t in ASSET_PRODUCT_TYPES])
    return (exp.select(*[_col(c, "h") for c in holdings.column_names],
                       exp.alias_(product_type, "product_type", quoted=True),
                       exp.alias_(_col("risk_level", "p"), "product_risk_level", quoted=True),
                       exp.alias_(_col("fee_rate", "p"), "fee_rate", quoted=True),
                       exp.alias_(_col("term_days", "p"), "term_days", quoted=True),
                       exp.alias_(exp.func("COALESCE", is_asset, exp.false()), "is_asset", quoted=True))
            .from_(ranked.subquery("h"))
            .join(exp.to_table("products", quoted=True).as_("p"), join_type="left",
                  on=exp.EQ(this=_col("product_id", "h"), expression=_col("product_id", "p")))
            .where(exp.EQ(this=_col("_rank", "h"), expression=exp.Literal.number(1))))


@dataclass(frozen=True)
class Source:
    """A relation aggregate tags can read: its columns (DuckDB types) and how it is dated."""

    name: str
    description: str
    columns: dict[str, str]
    date_column: str | None = None  # windows ("last 30 days") count back from D on this column
    snapshot: bool = False          # a state as of a date: may be read as of D minus an offset

    def relation(self, as_of: dt.date) -> exp.Select:
        """The source's rows as of ``as_of`` (nothing dated after it)."""
        if self.name == "holdings":
            return holdings_asof(as_of)
        return _dated_rows(self.name, as_of)


def _columns(table_name: str, **extra: str) -> dict[str, str]:
    return {**{c.name: c.type for c in TABLES[table_name].columns}, **extra}


SOURCES: dict[str, Source] = {
    "transactions": Source("transactions", "Transactions on or before D (交易流水).",
                           _columns("transactions", days_ago="BIGINT", months_ago="INTEGER"),
                           date_column="txn_date"),
    "events": Source("events", "Digital and business events on or before D.",
                     _columns("events", days_ago="BIGINT", months_ago="INTEGER"), date_column="event_date"),
    "holdings": Source("holdings", "Latest balance snapshot per account on or before D, with its product.",
                       _columns("holdings", product_type="VARCHAR", product_risk_level="VARCHAR",
                                fee_rate="DECIMAL(9,6)", term_days="INTEGER", is_asset="BOOLEAN"),
                       snapshot=True),
}
