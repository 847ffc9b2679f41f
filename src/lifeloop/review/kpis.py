"""Lifecycle KPIs (生命周期经营指标) between two dates, over the published snapshots and the bank's data.

Everything is counted with sqlglot trees through an engine adapter (DuckDB or Spark) and turned into
rates in Python, so both engines give the same numbers. The inputs are the lifecycle snapshots
(``lake/lifecycle/as_of=D``) and segments snapshots dated in [start, end], and the bank's tables as
of ``end`` (``Adapter.register_bank``). Definitions are in docs/review.md, "Lifecycle KPIs".
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlglot import exp

from lifeloop.engine.adapters.base import date_literal
from lifeloop.engine.views import holdings_asof
from lifeloop.errors import DataError
from lifeloop.insight.transitions import flows, share

SCHEMA = "lifeloop.kpis/1"
ACTIVATION_DAYS = 30
RETENTION_MONTHS = (1, 3, 6, 12)
NEW_STAGES = ("onboarding", "honeymoon")
CHURNED, DORMANT, WON_BACK, PROSPECT = "churned", "dormant", "won_back", "prospect"
HISTORY = "_kpi_lifecycle"
col = exp.column


def _alias(name: str) -> exp.TableAlias:
    return exp.TableAlias(this=exp.to_identifier(name))


def _count() -> exp.Expression:
    return exp.Count(this=exp.Star())



def _in(column: exp.Expression, values: Sequence[str]) -> exp.Expression:
    return exp.In(this=column, expressions=[exp.Literal.string(v) for v in values])


def _snapshot_files(lake: Any, area: str, start: dt.date, end: dt.date) -> dict[dt.date, Path]:
    return {d: lake.snapshot_dir(area, d) / f"{area}.parquet" for d in lake.dates(area) if start <= d <= end}


# ---------------------------------------------------------------------------- stage distribution
def stage_distribution(engine: Any, history: str = HISTORY) -> list[dict[str, Any]]:
    """Customers per stage at each snapshot, with the share of that snapshot's customers."""
    query = (exp.select(exp.alias_(col("as_of"), "as_of"), exp.alias_(col("stage"), "stage"),
                        exp.alias_(_count(), "customers"))
             .from_(history).group_by(col("as_of"), col("stage")))
    rows = engine.to_arrow(query).to_pylist()
    totals: dict[dt.date, int] = defaultdict(int)
    for r in rows:
        totals[r["as_of"]] += int(r["customers"])
    return sorted(({"as_of": r["as_of"], "stage": r["stage"], "customers": int(r["customers"]),
                    "share": share(int(r["customers"]), totals[r["as_of"]])} for r in rows),
                  key=lambda r: (r["as_of"], r["stage"]))


# ---------------------------------------------------------------------------- transitions between snapshots
def transition_rates(engine: Any, files: Mapping[dt.date, Path]) -> list[dict[str, Any]]:
    """Stage-to-stage flows between each pair of consecutive snapshots (rate = share of the first stage)."""
    dates = sorted(files)
    out = []
    for before, after in zip(dates, dates[1:], strict=False):
        for r in flows(engine, files[before], files[after]):
            out.append({"from": before, "to": after, **r})
    return out


def period_rates(transitions: Sequence[Mapping[str, Any]], base: Sequence[str] | None, exclude: Sequence[str],
                 target: str) -> list[dict[str, Any]]:
    """Per period: of the customers in ``base`` stages (or any stage not in ``exclude``) at its start,
    how many were in ``target`` at its end. Pure: works on :func:`transition_rates` rows."""
    periods: dict[tuple[dt.date, dt.date], list[int]] = {}
    for r in transitions:
        key = (r["from"], r["to"])
        counts = periods.setdefault(key, [0, 0])
        stage = r["from_stage"]
        if stage is None or stage in exclude or (base is not None and stage not in base):
            continue
        counts[0] += r["customers"]
        if r["to_stage"] == target:
            counts[1] += r["customers"]
    return [{"from": a, "to": b, "customers": n, "moved": m, "rate": share(m, n)}
            for (a, b), (n, m) in sorted(periods.items())]


def reached_query(history: str, first: dt.date, base: Sequence[str] | None, exclude: Sequence[str],
                  target: str) -> exp.Select:
    """Customers in the base stages at ``first``, and how many were in ``target`` at any later snapshot."""
    start_filter = [exp.EQ(this=col("as_of", "s"), expression=date_literal(first))]
    if base is not None:
        start_filter.append(_in(col("stage", "s"), base))
    if exclude:
        start_filter.append(exp.Not(this=_in(col("stage", "s"), exclude)))
    later = (exp.select(col("customer_id")).distinct().from_(history)
             .where(exp.and_(exp.EQ(this=col("stage"), expression=exp.Literal.string(target)),
                             exp.GT(this=col("as_of"), expression=date_literal(first)))))
    return (exp.select(exp.alias_(_count(), "customers"), exp.alias_(exp.Count(this=col("customer_id", "r")), "moved"))
            .from_(exp.to_table(history, alias=_alias("s")))
            .join(later.subquery("r"), on=exp.EQ(this=col("customer_id", "s"), expression=col("customer_id", "r")),
                  join_type="left")
            .where(exp.and_(*start_filter)))


def reached(engine: Any, first: dt.date, base: Sequence[str] | None, exclude: Sequence[str], target: str,
            history: str = HISTORY) -> dict[str, Any]:
    """Over the whole window: of the base customers at the first snapshot, the share seen in ``target`` later."""
    row = engine.to_arrow(reached_query(history, first, base, exclude, target)).to_pylist()[0]
    n, m = int(row["customers"]), int(row["moved"] or 0)
    return {"customers": n, "moved": m, "rate": share(m, n)}


# ---------------------------------------------------------------------------- activation
def activation_query(history: str, after: dt.date, end: dt.date) -> exp.Select:
    """New customers entering onboarding/honeymoon in (after, end], their start date and first own transaction."""
    new = _in(col("stage"), NEW_STAGES)
    was_new = _in(col("previous_stage"), NEW_STAGES)
    entries = (exp.select(col("customer_id"), exp.alias_(exp.Min(this=col("as_of")), "entered_on"))
               .from_(history)
               .where(exp.and_(new, exp.or_(exp.Is(this=col("previous_stage"), expression=exp.null()),
                                            exp.Not(this=was_new)),
                               exp.GT(this=col("as_of"), expression=date_literal(after)),
                               exp.LTE(this=col("as_of"), expression=date_literal(end))))
               .group_by(col("customer_id")))
    first_product = (exp.select(col("customer_id"), exp.alias_(exp.Min(this=col("open_date")), "first_open"))
                     .from_("holdings").group_by(col("customer_id")))
    started = exp.Coalesce(this=col("first_open", "o"), expressions=[col("open_date", "c"), col("entered_on", "e")])
    base = (exp.select(col("customer_id", "e"), col("entered_on", "e"), exp.alias_(started, "started"))
            .from_(entries.subquery("e"))
            .join(first_product.subquery("o"), on=exp.EQ(this=col("customer_id", "e"),
                                                         expression=col("customer_id", "o")), join_type="left")
            .join(exp.to_table("customers", alias=_alias("c")),
                  on=exp.EQ(this=col("customer_id", "e"), expression=col("customer_id", "c")), join_type="left"))
    own = exp.and_(exp.EQ(this=col("customer_id", "b"), expression=col("customer_id", "t")),
                   exp.EQ(this=col("customer_initiated", "t"), expression=exp.true()),
                   exp.GTE(this=col("txn_date", "t"), expression=col("started", "b")))
    return (exp.select(col("customer_id", "b"), col("entered_on", "b"), col("started", "b"),
                       exp.alias_(exp.Min(this=col("txn_date", "t")), "first_own_txn"))
            .from_(base.subquery("b"))
            .join(exp.to_table("transactions", alias=_alias("t")), on=own, join_type="left")
            .group_by(col("customer_id", "b"), col("entered_on", "b"), col("started", "b")))


def activation_rate(rows: Sequence[Mapping[str, Any]], end: dt.date, days: int = ACTIVATION_DAYS) -> dict[str, Any]:
    """Pure: of new customers whose ``days``-day window has ended by ``end``, the share with an own transaction."""
    measured = [r for r in rows if r["started"] + dt.timedelta(days=days) <= end]
    active = [r for r in measured
              if r["first_own_txn"] is not None and r["first_own_txn"] <= r["started"] + dt.timedelta(days=days)]
    return {"entered": len(rows), "measured": len(measured), "pending": len(rows) - len(measured),
            "activated": len(active), "rate": share(len(active), len(measured)), "days": days}


# ---------------------------------------------------------------------------- retention by entry cohort
def add_months(day: dt.date, months: int) -> dt.date:
    """The same day ``months`` later, clamped to the month's last day (31 Jan + 1 month = 29 Feb)."""
    y, m = divmod(day.month - 1 + months, 12)
    year, month = day.year + y, m + 1
    last = (dt.date(year + (month == 12), month % 12 + 1, 1) - dt.timedelta(days=1)).day
    return dt.date(year, month, min(day.day, last))


def retention_query(history: str, start: dt.date, end: dt.date) -> exp.Select:
    """Customers whose relationship began in [start, end] with their stage at every snapshot up to ``end``."""
    opened = exp.and_(exp.GTE(this=col("open_date", "c"), expression=date_literal(start)),
                      exp.LTE(this=col("open_date", "c"), expression=date_literal(end)))
    return (exp.select(col("customer_id", "c"), col("open_date", "c"), col("as_of", "l"), col("stage", "l"))
            .from_(exp.to_table("customers", alias=_alias("c")))
            .join(exp.to_table(history, alias=_alias("l")),
                  on=exp.EQ(this=col("customer_id", "c"), expression=col("customer_id", "l")), join_type="left")
            .where(opened))


def retention_curves(rows: Sequence[Mapping[str, Any]], snapshots: Sequence[dt.date],
                     months: Sequence[int] = RETENTION_MONTHS) -> list[dict[str, Any]]:
    """Pure: per month of open_date, the share not churned at the first snapshot k months after opening.

    A point is given only when every customer of the cohort has such a snapshot (else None: the data
    does not reach it yet); a customer absent from that snapshot counts as not retained."""
    stages: dict[str, dict[dt.date, str]] = defaultdict(dict)
    opened: dict[str, dt.date] = {}
    for r in rows:
        opened[r["customer_id"]] = r["open_date"]
        if r["as_of"] is not None:
            stages[r["customer_id"]][r["as_of"]] = r["stage"]
    snaps = sorted(snapshots)
    cohorts: dict[str, list[str]] = defaultdict(list)
    for cid, day in opened.items():
        cohorts[f"{day.year:04d}-{day.month:02d}"].append(cid)
    out = []
    for cohort, members in sorted(cohorts.items()):
        row: dict[str, Any] = {"cohort": cohort, "customers": len(members)}
        for k in months:
            due = [next((d for d in snaps if d >= add_months(opened[c], k)), None) for c in members]
            if any(d is None for d in due):
                row[f"retained_{k}m"] = row[f"rate_{k}m"] = None
                continue
            kept = sum(1 for c, d in zip(members, due, strict=False) if stages[c].get(d) not in (None, CHURNED))
            row[f"retained_{k}m"], row[f"rate_{k}m"] = kept, share(kept, len(members))
        out.append(row)
    return out


# ---------------------------------------------------------------------------- bank facts
def products_query(as_of: dt.date) -> exp.Select:
    """Customers by the number of distinct products they hold open at each account's newest snapshot."""
    held = (exp.select(col("customer_id"), exp.alias_(exp.Count(this=exp.Distinct(expressions=[col("product_id")])),
                                                       "products"))
            .from_(holdings_asof(as_of).subquery("x"))
            .where(exp.EQ(this=col("status"), expression=exp.Literal.string("open")))
            .group_by(col("customer_id")))
    return (exp.select(col("products"), exp.alias_(_count(), "customers"))
            .from_(held.subquery("p")).group_by(col("products")))


def products_per_customer(engine: Any, as_of: dt.date) -> dict[str, Any]:
    """Customers holding 1, 2, 3, ... open products, and the average, over customers with at least one."""
    rows = sorted((int(r["products"]), int(r["customers"])) for r in engine.to_arrow(products_query(as_of)).to_pylist())
    customers = sum(n for _, n in rows)
    total = sum(p * n for p, n in rows)
    return {"customers": customers, "average": round(total / customers, 4) if customers else None,
            "distribution": [{"products": p, "customers": n, "share": share(n, customers)} for p, n in rows]}


def sales_query(start: dt.date, end: dt.date) -> exp.Select:
    """New holdings opened per day in [start, end] per branch, RM and product type, with amounts.

    The amount of a new holding is its balance at its first snapshot (a loan's or card's outstanding)."""
    opened = exp.Between(this=col("open_date"), low=date_literal(start), high=date_literal(end))
    first = (exp.select(col("account_id"), exp.alias_(exp.Min(this=col("snapshot_date")), "first_seen"))
             .from_("holdings").where(opened).group_by(col("account_id")))
    keys = [col("open_date", "h"), col("branch_id", "c"), col("rm_id", "c"), col("product_type", "p")]
    return (exp.select(exp.alias_(keys[0], "day"), exp.alias_(keys[1], "branch_id"), exp.alias_(keys[2], "rm_id"),
                       exp.alias_(keys[3], "product_type"), exp.alias_(_count(), "accounts"),
                       exp.alias_(exp.Count(this=exp.Distinct(expressions=[col("customer_id", "h")])), "customers"),
                       exp.alias_(exp.Sum(this=col("balance", "h")), "amount"))
            .from_(exp.to_table("holdings", alias=_alias("h")))
            .join(first.subquery("f"), on=exp.and_(
                exp.EQ(this=col("account_id", "h"), expression=col("account_id", "f")),
                exp.EQ(this=col("snapshot_date", "h"), expression=col("first_seen", "f"))))
            .join(exp.to_table("customers", alias=_alias("c")),
                  on=exp.EQ(this=col("customer_id", "h"), expression=col("customer_id", "c")), join_type="left")
            .join(exp.to_table("products", alias=_alias("p")),
                  on=exp.EQ(this=col("product_id", "h"), expression=col("product_id", "p")), join_type="left")
            .group_by(*[k.copy() for k in keys]))


def daily_sales(engine: Any, start: dt.date, end: dt.date) -> list[dict[str, Any]]:
    """每日销售报表: rows of day, branch, RM, product type, accounts, customers, amount."""
    rows = engine.to_arrow(sales_query(start, end)).to_pylist()
    out = [{"day": r["day"], "branch_id": r["branch_id"], "rm_id": r["rm_id"], "product_type": r["product_type"],
            "accounts": int(r["accounts"]), "customers": int(r["customers"]),
            "amount": Decimal(r["amount"] or 0).quantize(Decimal("0.01"))} for r in rows]
    return sorted(out, key=lambda r: (r["day"], r["branch_id"] or "", r["rm_id"] or "", r["product_type"] or ""))


def sales_totals(daily: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Pure: the daily sales summed per branch and RM over the window, with accounts per product type."""
    totals: dict[tuple[Any, Any], dict[str, Any]] = {}
    for r in daily:
        t = totals.setdefault((r["branch_id"], r["rm_id"]), {"branch_id": r["branch_id"], "rm_id": r["rm_id"],
                                                             "accounts": 0, "amount": Decimal("0.00"),
                                                             "by_product_type": {}})
        t["accounts"] += r["accounts"]
        t["amount"] += r["amount"]
        kinds = t["by_product_type"]
        kinds[r["product_type"]] = kinds.get(r["product_type"], 0) + r["accounts"]
    return sorted(totals.values(), key=lambda t: (-t["amount"], t["branch_id"] or "", t["rm_id"] or ""))


# ---------------------------------------------------------------------------- AUM by tier
def aum_by_tier(engine: Any, files: Mapping[dt.date, Path]) -> list[dict[str, Any]]:
    """Per segments snapshot and value tier: customers, total and average AUM."""
    out = []
    for d in sorted(files):
        engine.register("_kpi_segments", [files[d]])
        query = (exp.select(col("tier"), exp.alias_(_count(), "customers"), exp.alias_(exp.Sum(this=col("aum")), "aum"))
                 .from_("_kpi_segments").group_by(col("tier")))
        for r in engine.to_arrow(query).to_pylist():
            aum = Decimal(r["aum"] or 0).quantize(Decimal("0.01"))
            n = int(r["customers"])
            out.append({"as_of": d, "tier": r["tier"], "customers": n, "aum": aum,
                        "average_aum": (aum / n).quantize(Decimal("0.01")) if n else None})
    return sorted(out, key=lambda r: (r["as_of"], -r["aum"], r["tier"] or ""))


# ---------------------------------------------------------------------------- everything
def compute(engine: Any, lake: Any, start: dt.date, end: dt.date) -> dict[str, Any]:
    """All lifecycle KPIs between ``start`` and ``end`` (both included) as plain Python data."""
    if end < start:
        raise DataError(f"--to {end} is before --from {start}", hint="give the earlier date first")
    history = _snapshot_files(lake, "lifecycle", start, end)
    if not history:
        published = lake.dates("lifecycle")
        raise DataError(f"no lifecycle snapshot is published between {start} and {end}",
                        hint=("published lifecycle dates: " + ", ".join(d.isoformat() for d in published[-6:]))
                        if published else "run `lifeloop run --as-of DATE` (or ctx.backfill over month-ends) first")
    dates = sorted(history)
    engine.register(HISTORY, [history[d] for d in dates])
    steps = transition_rates(engine, history)
    lake_first = min(lake.dates("lifecycle"))
    result: dict[str, Any] = {
        "schema": SCHEMA, "from": start, "to": end, "snapshots": dates,
        "stage_distribution": stage_distribution(engine),
        "transitions": steps,
        "churn": {"periods": period_rates(steps, None, (PROSPECT, CHURNED), CHURNED),
                  "window": reached(engine, dates[0], None, (PROSPECT, CHURNED), CHURNED)},
        "reactivation": {"periods": period_rates(steps, (DORMANT,), (), WON_BACK),
                         "window": reached(engine, dates[0], (DORMANT,), (), WON_BACK)},
    }
    engine.register_bank(lake, end)
    # the lake's first snapshot has no history, so nobody can be seen "entering" a stage there
    after = max(start - dt.timedelta(days=1), lake_first)
    result["activation"] = activation_rate(engine.to_arrow(activation_query(HISTORY, after, end)).to_pylist(), end)
    result["retention"] = retention_curves(engine.to_arrow(retention_query(HISTORY, start, end)).to_pylist(), dates)
    result["products_per_customer"] = {"as_of": end, **products_per_customer(engine, end)}
    result["aum_by_tier"] = aum_by_tier(engine, _snapshot_files(lake, "segments", start, end))
    result["daily_sales"] = daily_sales(engine, start, end)
    result["sales_by_branch_rm"] = sales_totals(result["daily_sales"])
    return result
