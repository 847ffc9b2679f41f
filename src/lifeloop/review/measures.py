"""Measuring outcomes (效果度量) from the bank's own data: the queries behind the ``outcomes`` step.

Three sqlglot trees, run on DuckDB or Spark through the engine adapter over the registered bank views
and the entries file (view ``_outcome_entries``): purchases and fee income of holdings opened in the
window, own transactions and money in, and asset balances at the entry date and at the window's end.
What each outcome means is in review/outcomes.py and docs/review.md ("Outcomes").
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from lifeloop.data.schema import ASSET_PRODUCT_TYPES

if TYPE_CHECKING:
    import pyarrow as pa

ENTRIES_VIEW = "_outcome_entries"
INFLOW_TYPES = ("transfer", "cash")
col = exp.column


def _on(*conditions: exp.Expression) -> exp.Expression:
    return exp.and_(*conditions)


def _within(day: exp.Expression, alias: str = "e") -> exp.Expression:
    """``day`` in (entry_date, observed_through] of the entry ``alias``."""
    return _on(exp.GT(this=day, expression=col("entry_date", alias)),
               exp.LTE(this=day, expression=col("observed_through", alias)))


def _same_customer(alias: str) -> exp.Expression:
    return exp.EQ(this=col("customer_id", "e"), expression=col("customer_id", alias))


def _keys() -> list[exp.Expression]:
    return [col("strategy", "e"), col("customer_id", "e"), col("entry_date", "e")]


def _case(condition: exp.Expression, then: exp.Expression, default: exp.Expression | None = None) -> exp.Case:
    return exp.Case(ifs=[exp.If(this=condition, true=then)],
                    default=default if default is not None else exp.Literal.number(0))


def _float(e: exp.Expression) -> exp.Expression:
    return exp.Cast(this=e, to=exp.DataType.build("DOUBLE"))


def purchases_query() -> exp.Select:
    """Per entry: the offered product opened in the window, its amount, and the fee income of all new holdings."""
    first = (exp.select(col("account_id"), exp.alias_(exp.Min(this=col("snapshot_date")), "first_seen"))
             .from_("holdings").group_by(col("account_id")))
    opened = (exp.select(col("account_id", "h"), col("customer_id", "h"), col("product_id", "h"), col("open_date", "h"),
                         exp.alias_(_float(col("balance", "h")), "amount"))
              .from_(exp.to_table("holdings", alias=exp.TableAlias(this=exp.to_identifier("h"))))
              .join(first.subquery("f"), on=_on(exp.EQ(this=col("account_id", "h"), expression=col("account_id", "f")),
                                                 exp.EQ(this=col("snapshot_date", "h"),
                                                        expression=col("first_seen", "f")))))
    is_offer = exp.EQ(this=col("product_id", "o"), expression=col("offer", "e"))
    term = exp.Least(this=exp.Coalesce(this=col("term_days", "p"), expressions=[exp.Literal.number(365)]),
                     expressions=[exp.Literal.number(365)])
    fee = exp.Div(this=exp.Mul(this=exp.Mul(this=col("amount", "o"),
                                            expression=_float(exp.Coalesce(this=col("fee_rate", "p"),
                                                                           expressions=[exp.Literal.number(0)]))),
                               expression=_float(term)),
                  expression=exp.Literal.number(365))
    return (exp.select(*_keys(),
                       exp.alias_(exp.Max(this=_case(_on(is_offer,
                                                         exp.Not(this=exp.Is(this=col("account_id", "o"),
                                                                             expression=exp.null()))),
                                                     exp.Literal.number(1))), "purchased_n"),
                       exp.alias_(exp.Sum(this=_case(is_offer.copy(), col("amount", "o"), exp.Literal.number(0))),
                                  "purchase_amount"),
                       exp.alias_(exp.Sum(this=exp.Coalesce(this=fee, expressions=[exp.Literal.number(0)])),
                                  "fee_income"))
            .from_(exp.to_table(ENTRIES_VIEW, alias=exp.TableAlias(this=exp.to_identifier("e"))))
            .join(opened.subquery("o"), on=_on(_same_customer("o"), _within(col("open_date", "o"))), join_type="left")
            .join(exp.to_table("products", alias=exp.TableAlias(this=exp.to_identifier("p"))),
                  on=exp.EQ(this=col("product_id", "o"), expression=col("product_id", "p")), join_type="left")
            .group_by(*_keys()))


def activity_query() -> exp.Select:
    """Per entry: own transactions and money in over the window."""
    own = exp.EQ(this=col("customer_initiated", "t"), expression=exp.true())
    money_in = _on(own.copy(), exp.EQ(this=col("direction", "t"), expression=exp.Literal.string("credit")),
                   exp.In(this=col("txn_type", "t"), expressions=[exp.Literal.string(x) for x in INFLOW_TYPES]))
    return (exp.select(*_keys(),
                       exp.alias_(exp.Sum(this=_case(own, exp.Literal.number(1))), "own_txns"),
                       exp.alias_(exp.Sum(this=_case(money_in, _float(col("amount", "t")), exp.Literal.number(0))),
                                  "inflow"))
            .from_(exp.to_table(ENTRIES_VIEW, alias=exp.TableAlias(this=exp.to_identifier("e"))))
            .join(exp.to_table("transactions", alias=exp.TableAlias(this=exp.to_identifier("t"))),
                  on=_on(_same_customer("t"), _within(col("txn_date", "t"))), join_type="left")
            .group_by(*_keys()))


def aum_query() -> exp.Select:
    """Per entry: asset balances at the entry date and at the end of the observed window.

    A balance at a date is each account's newest snapshot on or before it (closed accounts count 0)."""
    assets = (exp.select(col("customer_id", "h"), col("account_id", "h"), col("snapshot_date", "h"), col("status", "h"),
                         exp.alias_(_float(col("balance", "h")), "balance"))
              .from_(exp.to_table("holdings", alias=exp.TableAlias(this=exp.to_identifier("h"))))
              .join(exp.to_table("products", alias=exp.TableAlias(this=exp.to_identifier("p"))),
                    on=exp.EQ(this=col("product_id", "h"), expression=col("product_id", "p")))
              .where(exp.In(this=col("product_type", "p"),
                            expressions=[exp.Literal.string(t) for t in ASSET_PRODUCT_TYPES])))
    points = exp.union(
        exp.select(*_keys(), exp.alias_(col("entry_date", "e"), "point"),
                   exp.alias_(exp.Literal.string("before"), "which"))
        .from_(exp.to_table(ENTRIES_VIEW, alias=exp.TableAlias(this=exp.to_identifier("e")))),
        exp.select(*_keys(), exp.alias_(col("observed_through", "e"), "point"),
                   exp.alias_(exp.Literal.string("after"), "which"))
        .from_(exp.to_table(ENTRIES_VIEW, alias=exp.TableAlias(this=exp.to_identifier("e")))),
        distinct=False)
    newest = exp.Window(this=exp.RowNumber(), partition_by=[col("strategy", "x"), col("customer_id", "x"),
                                                            col("entry_date", "x"), col("which", "x"),
                                                            col("account_id", "a")],
                        order=exp.Order(expressions=[exp.Ordered(this=col("snapshot_date", "a"), desc=True)]))
    ranked = (exp.select(col("strategy", "x"), col("customer_id", "x"), col("entry_date", "x"), col("which", "x"),
                         col("status", "a"), col("balance", "a"), exp.alias_(newest, "rn"))
              .from_(points.subquery("x"))
              .join(assets.subquery("a"),
                    on=_on(exp.EQ(this=col("customer_id", "x"), expression=col("customer_id", "a")),
                           exp.LTE(this=col("snapshot_date", "a"), expression=col("point", "x")))))
    live = exp.EQ(this=col("status"), expression=exp.Literal.string("open"))
    return (exp.select(col("strategy"), col("customer_id"), col("entry_date"),
                       exp.alias_(exp.Sum(this=_case(_on(live,
                                                         exp.EQ(this=col("which"),
                                                                expression=exp.Literal.string("before"))),
                                                     col("balance"), exp.Literal.number(0))), "aum_before"),
                       exp.alias_(exp.Sum(this=_case(_on(live.copy(),
                                                         exp.EQ(this=col("which"),
                                                                expression=exp.Literal.string("after"))),
                                                     col("balance"), exp.Literal.number(0))), "aum_after"))
            .from_(ranked.subquery("r"))
            .where(exp.EQ(this=col("rn"), expression=exp.Literal.number(1)))
            .group_by(col("strategy"), col("customer_id"), col("entry_date")))


def measure(engine: Any, entries_table: pa.Table, entries_file: Path) -> pa.Table:
    """``entries_table`` (written to ``entries_file``) with the outcome columns, from the registered bank views."""
    import pyarrow as pa

    engine.register(ENTRIES_VIEW, [entries_file])
    found: dict[tuple[str, str, dt.date], dict[str, Any]] = {}
    for query in (purchases_query(), activity_query(), aum_query()):
        for r in engine.to_arrow(query).to_pylist():
            found.setdefault((r["strategy"], r["customer_id"], r["entry_date"]), {}).update(r)
    n = entries_table.num_rows
    keys = zip(entries_table["strategy"].to_pylist(), entries_table["customer_id"].to_pylist(),
               entries_table["entry_date"].to_pylist(), strict=False)
    rows = [found.get(k, {}) for k in keys]
    product = entries_table["product_offer"].to_pylist()
    stage = entries_table["stage"].to_pylist()

    def num(name: str) -> list[float]:
        # money to the cent: engines add doubles in different orders, the bytes must not differ
        return [round(float(r.get(name) or 0.0), 2) for r in rows]

    before, after = num("aum_before"), num("aum_after")
    active = [int(r.get("own_txns") or 0) > 0 for r in rows]
    cols = {
        "purchased": pa.array([bool(r.get("purchased_n")) if p else None for r, p in zip(rows, product, strict=False)],
                              pa.bool_()),
        "purchase_amount": pa.array([round(float(r.get("purchase_amount") or 0.0), 2) if p else None
                                     for r, p in zip(rows, product, strict=False)], pa.float64()),
        "fee_income": pa.array(num("fee_income"), pa.float64()),
        "inflow": pa.array(num("inflow"), pa.float64()),
        "aum_before": pa.array(before, pa.float64()), "aum_after": pa.array(after, pa.float64()),
        "aum_change": pa.array([round(a - b, 2) for a, b in zip(after, before, strict=False)], pa.float64()),
        "active": pa.array(active, pa.bool_()),
        "reactivated": pa.array([a if s == "dormant" else None for a, s in zip(active, stage, strict=False)],
                                pa.bool_()),
        # only a customer who held assets at entry can be kept: one who had none (a churned or never-funded
        # customer) is null, as ``reactivated`` is for the non-dormant, so that a chance imbalance of empty
        # accounts between the arms does not read as an effect of the contact
        "retained": pa.array([a > 0 if b > 0 else None for b, a in zip(before, after, strict=False)], pa.bool_()),
    }
    assert len(rows) == n
    out = entries_table
    for name, values in cols.items():
        out = out.append_column(name, values)
    return out
