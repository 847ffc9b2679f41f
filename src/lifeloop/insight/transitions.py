"""Stage transitions (阶段迁移) over lifecycle snapshots: flows, moving on, entry cohorts.

All three read published lifecycle snapshots (``lake/lifecycle/as_of=D/lifecycle.parquet``, which
carry an ``as_of`` column) through an engine adapter, count with one sqlglot query each, and turn
counts into rates in Python, so DuckDB and Spark give the same numbers.

* :func:`flows` — stage-to-stage flows between two dates; ``rate`` is the share of the customers in
  ``from_stage`` on the first date. A customer only in the second snapshot has ``from_stage`` NULL
  (new), one only in the first has ``to_stage`` NULL (no longer in the data).
* :func:`moving_on` — of the customers in each stage on a date, the share whose stage was different
  in any snapshot within the next 30 / 90 days. A snapshot up to ``grace_days`` (3) after a window's
  end still counts for it, so a month-end calendar measures "within a month" even after a 31-day
  month. ``observed_to_<N>d`` is the last snapshot counted and ``complete_<N>d`` says whether the
  published snapshots reach the window's end, so a window not yet over is visible as such.
* :func:`entry_cohorts` — of the customers who entered stage X in month M (first entry, seen at a
  snapshot where they are in X with days_in_stage 0), how many were in stage Y at a later snapshot on
  or before D. The first snapshot of the lake has no history, so entries are counted from the second.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlglot import exp

from lifeloop.engine.adapters.base import date_literal
from lifeloop.errors import DataError

AREA = "lifecycle"
col = exp.column


def _count_star() -> exp.Expression:
    return exp.Count(this=exp.Star())


def share(part: float, whole: float) -> float | None:
    """part / whole rounded to six places; None when there is no whole (never a division by zero)."""
    return round(part / whole, 6) if whole else None


# ---------------------------------------------------------------------------- flows
def flows_query(before: str, after: str) -> exp.Select:
    """Customers per (stage on the first date, stage on the second date)."""
    on = exp.EQ(this=col("customer_id", "a"), expression=col("customer_id", "b"))
    return (exp.select(exp.alias_(col("stage", "a"), "from_stage"), exp.alias_(col("stage", "b"), "to_stage"),
                       exp.alias_(_count_star(), "customers"))
            .from_(exp.to_table(before, alias=exp.TableAlias(this=exp.to_identifier("a"))))
            .join(exp.to_table(after, alias=exp.TableAlias(this=exp.to_identifier("b"))), on=on, join_type="full")
            .group_by(col("stage", "a"), col("stage", "b")))


def flows(engine: Any, before_file: Path, after_file: Path) -> list[dict[str, Any]]:
    """Stage-to-stage flows between two lifecycle snapshots, with the share of each starting stage."""
    engine.register("_transitions_before", [before_file])
    engine.register("_transitions_after", [after_file])
    rows = engine.to_arrow(flows_query("_transitions_before", "_transitions_after")).to_pylist()
    totals: dict[Any, int] = {}
    for r in rows:
        totals[r["from_stage"]] = totals.get(r["from_stage"], 0) + int(r["customers"])
    out = [{"from_stage": r["from_stage"], "to_stage": r["to_stage"], "customers": int(r["customers"]),
            "rate": share(int(r["customers"]), totals[r["from_stage"]])} for r in rows]
    return sorted(out, key=lambda r: (r["from_stage"] is None, r["from_stage"] or "", r["to_stage"] is None,
                                      r["to_stage"] or ""))


# ---------------------------------------------------------------------------- moving on
def moving_on_query(start: str, later: str, start_date: dt.date, windows: Sequence[int],
                    grace_days: int = 0) -> exp.Select:
    """Per stage on the start date: customers, and how many had changed stage within each window."""
    changed = (exp.select(col("customer_id", "s"), exp.alias_(exp.Min(this=col("as_of", "h")), "first_change"))
               .from_(exp.to_table(start, alias=exp.TableAlias(this=exp.to_identifier("s"))))
               .join(exp.to_table(later, alias=exp.TableAlias(this=exp.to_identifier("h"))),
                     on=exp.and_(exp.EQ(this=col("customer_id", "s"), expression=col("customer_id", "h")),
                                 exp.NEQ(this=col("stage", "h"), expression=col("stage", "s")),
                                 exp.GT(this=col("as_of", "h"), expression=date_literal(start_date))))
               .group_by(col("customer_id", "s")))
    counts = [exp.alias_(_count_star(), "customers")]
    for w in windows:
        end = start_date + dt.timedelta(days=w + grace_days)
        within = exp.LTE(this=col("first_change", "c"), expression=date_literal(end))
        counts.append(exp.alias_(exp.Sum(this=exp.Case(ifs=[exp.If(this=within, true=exp.Literal.number(1))],
                                                       default=exp.Literal.number(0))), f"moved_{w}d"))
    return (exp.select(exp.alias_(col("stage", "s"), "stage"), *counts)
            .from_(exp.to_table(start, alias=exp.TableAlias(this=exp.to_identifier("s"))))
            .join(changed.subquery("c"), on=exp.EQ(this=col("customer_id", "s"), expression=col("customer_id", "c")),
                  join_type="left")
            .group_by(col("stage", "s")))


def moving_on(engine: Any, history: Mapping[dt.date, Path], start: dt.date,
              windows: Sequence[int] = (30, 90), grace_days: int = 3) -> list[dict[str, Any]]:
    """Share of each stage on ``start`` whose stage changed within each window (in days)."""
    if start not in history:
        raise DataError(f"no lifecycle snapshot as of {start}", hint=_published(history))
    later = [d for d in sorted(history) if start < d <= start + dt.timedelta(days=max(windows) + grace_days)]
    engine.register("_transitions_start", [history[start]])
    if later:
        engine.register("_transitions_later", [history[d] for d in later])
    else:
        engine.create_view("_transitions_later", exp.select("*").from_("_transitions_start").limit(0))
    rows = engine.to_arrow(moving_on_query("_transitions_start", "_transitions_later", start, windows,
                                           grace_days)).to_pylist()
    last = max(history)
    out = []
    for r in sorted(rows, key=lambda r: r["stage"]):
        row: dict[str, Any] = {"stage": r["stage"], "customers": int(r["customers"])}
        for w in windows:
            seen = [d for d in later if d <= start + dt.timedelta(days=w + grace_days)]
            moved = int(r[f"moved_{w}d"] or 0)
            row.update({f"moved_{w}d": moved, f"share_{w}d": share(moved, row["customers"]),
                        f"observed_to_{w}d": seen[-1] if seen else None,
                        f"complete_{w}d": last >= start + dt.timedelta(days=w)})
        out.append(row)
    return out


# ---------------------------------------------------------------------------- entry cohorts
def cohorts_query(history: str, first: dt.date, by: dt.date, from_stage: str, to_stage: str) -> exp.Select:
    """Per month of first entry into ``from_stage``: customers who entered, and who later reached ``to_stage``."""
    h = col
    entries = (exp.select(h("customer_id"), exp.alias_(exp.Min(this=h("as_of")), "entered_on"))
               .from_(history)
               .where(exp.and_(exp.EQ(this=h("stage"), expression=exp.Literal.string(from_stage)),
                               exp.EQ(this=h("days_in_stage"), expression=exp.Literal.number(0)),
                               exp.GT(this=h("as_of"), expression=date_literal(first)),
                               exp.LTE(this=h("as_of"), expression=date_literal(by))))
               .group_by(h("customer_id")))
    reached = (exp.select(col("customer_id", "e")).distinct()
               .from_(entries.subquery("e"))
               .join(exp.to_table(history, alias=exp.TableAlias(this=exp.to_identifier("x"))),
                     on=exp.and_(exp.EQ(this=col("customer_id", "e"), expression=col("customer_id", "x")),
                                 exp.EQ(this=col("stage", "x"), expression=exp.Literal.string(to_stage)),
                                 exp.GT(this=col("as_of", "x"), expression=col("entered_on", "e")),
                                 exp.LTE(this=col("as_of", "x"), expression=date_literal(by)))))
    month = exp.Add(this=exp.Mul(this=exp.Year(this=col("entered_on", "e")), expression=exp.Literal.number(100)),
                    expression=exp.Month(this=col("entered_on", "e")))
    return (exp.select(exp.alias_(month, "cohort"), exp.alias_(_count_star(), "entered"),
                       exp.alias_(exp.Count(this=col("customer_id", "r")), "reached"))
            .from_(entries.subquery("e"))
            .join(reached.subquery("r"), on=exp.EQ(this=col("customer_id", "e"), expression=col("customer_id", "r")),
                  join_type="left")
            .group_by(month.copy()))


def entry_cohorts(engine: Any, history: Mapping[dt.date, Path], from_stage: str, to_stage: str,
                  by: dt.date, month: str | None = None) -> list[dict[str, Any]]:
    """Of those entering ``from_stage`` in each month, how many reached ``to_stage`` by ``by``."""
    dates = [d for d in sorted(history) if d <= by]
    if len(dates) < 2:
        raise DataError(f"entry cohorts need at least two lifecycle snapshots on or before {by}",
                        hint="backfill lifecycle history first (e.g. month-ends), see docs/insight.md")
    engine.register("_transitions_history", [history[d] for d in dates])
    rows = engine.to_arrow(cohorts_query("_transitions_history", dates[0], by, from_stage, to_stage)).to_pylist()
    out = [{"cohort": f"{int(r['cohort']) // 100:04d}-{int(r['cohort']) % 100:02d}", "from_stage": from_stage,
            "to_stage": to_stage, "entered": int(r["entered"]), "reached": int(r["reached"]),
            "rate": share(int(r["reached"]), int(r["entered"])), "by": by} for r in rows]
    out.sort(key=lambda r: r["cohort"])
    return [r for r in out if month is None or r["cohort"] == month]


# ---------------------------------------------------------------------------- from a lake
def history_files(lake: Any) -> dict[dt.date, Path]:
    """Every published lifecycle snapshot: as-of date -> Parquet file."""
    return {d: lake.snapshot_dir(AREA, d) / f"{AREA}.parquet" for d in lake.dates(AREA)}


def _published(history: Mapping[dt.date, Path]) -> str:
    dates = sorted(history)
    if not dates:
        return "no lifecycle snapshot is published yet: run `lifeloop run --as-of DATE --steps lifecycle`"
    return "published lifecycle dates: " + ", ".join(d.isoformat() for d in dates[-6:])


def cohorts(engine: Any, lake: Any, entered: str, reached: str, by: dt.date | None = None,
            month: str | None = None) -> list[dict[str, Any]]:
    """Entry cohorts over a lake's lifecycle history (``by`` defaults to the latest snapshot)."""
    history = history_files(lake)
    if not history:
        raise DataError("no lifecycle snapshot is published yet", hint=_published(history))
    return entry_cohorts(engine, history, entered, reached, by or max(history), month)


def between(engine: Any, lake: Any, before: dt.date, after: dt.date) -> dict[str, Any]:
    """Everything about two dates: flows between them and moving-on shares from the first."""
    history = history_files(lake)
    for d in (before, after):
        if d not in history:
            raise DataError(f"no lifecycle snapshot as of {d}", hint=_published(history))
    if after <= before:
        raise DataError(f"--to {after} is not after --from {before}", hint="give the earlier date first")
    return {"from": before, "to": after, "flows": flows(engine, history[before], history[after]),
            "moving_on": moving_on(engine, history, before)}
