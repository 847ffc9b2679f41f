"""Rows a mapping cannot read: unmapped codes, dates off their format, failed casts, orphans.

Each :class:`~lifeloop.data.values.ValueCheck` of a compiled part becomes one query over the
part's prepared rows: "``base`` has a value but ``result`` has none". Problems carry the source
file and its 1-based data row; each check keeps its first few rows and counts the rest.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from lifeloop.data.cards import redact_cards
from lifeloop.data.masking import quotable
from lifeloop.data.sql import CAP, ROW, col, ident
from lifeloop.errors import Problem

if TYPE_CHECKING:
    from lifeloop.data.transform import PartPlan


def unreadable_rows(con: Any, plan: PartPlan, prep: str) -> list[tuple[list[Problem], int]]:
    """Run a part's value checks over its prepared rows: (first problems, total) per failing check."""
    out = []
    table = exp.Table(this=ident(prep))
    label, tname = plan.source.label, plan.table
    # derived values are checked on every row; canonical columns only on the rows the part keeps
    for check, where_rows in [(c, None) for c in plan.derive_checks] + [(c, plan.where) for c in plan.checks]:
        present = exp.Not(this=exp.Is(this=check.base.copy(), expression=exp.null()))
        if check.kind == "code":
            bad = exp.and_(present, exp.Not(this=exp.In(this=exp.cast(check.base.copy(), "VARCHAR"),
                                                        expressions=[exp.Literal.string(c) for c in check.codes])))
            if where_rows is not None:
                bad = exp.and_(where_rows.copy(), bad)
            code = exp.alias_(exp.cast(check.base.copy(), "VARCHAR"), "code", quoted=True)
            q = exp.select(code, exp.Count(this=exp.Star()), exp.Min(this=col(ROW))).from_(table).where(bad) \
                .group_by(exp.column("code", quoted=True)).order_by(exp.Min(this=col(ROW)))
            found = con.sql(q.sql(dialect="duckdb")).fetchall()
            if found:
                codes = ", ".join(repr(c) for c, _, _ in found[:10]) + (" ..." if len(found) > 10 else "")
                probs = [Problem(redact_cards(f"code {c!r} is not in the map for {check.target} ({n:,} row(s); "
                                              f"unmapped codes: {codes})"), file=label, table=tname, row=r,
                                 column=check.column, rule="code")
                         for c, n, r in found[:CAP]]
                out.append((probs, sum(n for _, n, _ in found)))
            continue
        bad = exp.and_(present, exp.Is(this=check.result.copy(), expression=exp.null()))
        if where_rows is not None:
            bad = exp.and_(where_rows.copy(), bad)
        out.append(_located(con, table, bad, exp.cast(check.base.copy(), "VARCHAR"), label, tname, check.column,
                            check.kind, lambda v, c=check: f"cannot read {quotable(tname, c.target, v)!r} as "
                                                           f"{c.detail} (for {c.target})"))
    for hit, lk, other in plan.required_lookups:
        bad = exp.Is(this=col(hit), expression=exp.null())
        if plan.where is not None:
            bad = exp.and_(plan.where.copy(), bad)
        keys = exp.Concat(expressions=[exp.cast(col(h), "VARCHAR") for h in lk.match], safe=True, coalesce=True)
        cond = f" ({lk.where})" if lk.where else ""
        out.append(_located(con, table, bad, keys, label, tname, ", ".join(lk.match), "orphan",
                            lambda v, lk=lk, other=other, cond=cond:
                            f"orphan: no row in {other}{cond} with {', '.join(lk.match.values())} = {v}"))
    return [o for o in out if o[1]]


def _located(con: Any, table: exp.Table, bad: exp.Expression, value: exp.Expression, label: str, tname: str,
             column: str, rule: str, message: Callable[[Any], str]) -> tuple[list[Problem], int]:
    """The first rows matching ``bad`` as problems, and how many rows match in all."""
    q = exp.select(col(ROW), exp.alias_(value, "v", quoted=True),
                   exp.alias_(exp.Window(this=exp.Count(this=exp.Star())), "n", quoted=True)) \
        .from_(table).where(bad).order_by(col(ROW)).limit(CAP)
    found = con.sql(q.sql(dialect="duckdb")).fetchall()
    if not found:
        return [], 0
    probs = [Problem(redact_cards(message(v)), file=label, table=tname, row=r, column=column, rule=rule)
             for r, v, _ in found]
    total = found[0][2]
    if total > len(found):
        probs.append(Problem(f"... and {total - len(found):,} more rows", file=label, table=tname, column=column,
                             rule=rule))
    return probs, total
