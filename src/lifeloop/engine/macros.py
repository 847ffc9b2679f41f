"""Vetted macros: the date and arithmetic helpers whose semantics differ between engines.

``date_diff('year', ...)`` counts calendar boundaries in DuckDB but not in every engine; date
subtraction yields an integer in DuckDB and an interval in Spark; division by zero is NULL in one
engine and an error in another. Rules therefore use these macros, which expand to trees built from
operations every engine agrees on, with the as-of date as a literal.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from sqlglot import exp

from lifeloop.engine.adapters.base import date_literal

# name -> number of arguments
MACROS: dict[str, int] = {"age": 1, "days_since": 1, "days_until": 1, "months_since": 1, "safe_divide": 2}


def _int(n: int) -> exp.Literal:
    return exp.Literal.number(n)


def _md(d: exp.Expression) -> exp.Expression:
    # month * 100 + day: compares "has the anniversary passed" without date arithmetic
    return exp.Add(this=exp.Mul(this=exp.Month(this=d.copy()), expression=_int(100)), expression=exp.Day(this=d.copy()))


def _case(cond: exp.Expression, then: exp.Expression, default: exp.Expression) -> exp.Expression:
    return exp.Case(ifs=[exp.If(this=cond, true=then)], default=default)


def age(d: exp.Expression, as_of: dt.date) -> exp.Expression:
    """Completed years at the as-of date (a 29 February birthday counts from 1 March)."""
    years = exp.Sub(this=_int(as_of.year), expression=exp.Year(this=d.copy()))
    before = exp.GT(this=_md(d), expression=_int(as_of.month * 100 + as_of.day))
    return exp.Paren(this=exp.Sub(this=years, expression=_case(before, _int(1), _int(0))))


def days_since(d: exp.Expression, as_of: dt.date) -> exp.Expression:
    """Whole days from ``d`` to the as-of date (negative if ``d`` is later)."""
    return exp.DateDiff(this=date_literal(as_of), expression=exp.cast(d.copy(), "DATE"), unit=exp.var("DAY"))


def days_until(d: exp.Expression, as_of: dt.date) -> exp.Expression:
    """Whole days from the as-of date to ``d`` (e.g. to a product's maturity)."""
    return exp.DateDiff(this=exp.cast(d.copy(), "DATE"), expression=date_literal(as_of), unit=exp.var("DAY"))


def months_since(d: exp.Expression, as_of: dt.date) -> exp.Expression:
    """Completed months from ``d`` to the as-of date."""
    months = exp.Sub(this=_int(as_of.year * 12 + as_of.month),
                     expression=exp.Paren(this=exp.Add(this=exp.Mul(this=exp.Year(this=d.copy()), expression=_int(12)),
                                                       expression=exp.Month(this=d.copy()))))
    before = exp.GT(this=exp.Day(this=d.copy()), expression=_int(as_of.day))
    return exp.Paren(this=exp.Sub(this=months, expression=_case(before, _int(1), _int(0))))


def safe_divide(a: exp.Expression, b: exp.Expression) -> exp.Expression:
    """a / b as DOUBLE, NULL when b is 0 or NULL (engines disagree on both)."""
    den = exp.cast(b.copy(), "DOUBLE")
    zero = exp.Or(this=exp.Is(this=den.copy(), expression=exp.null()),
                  expression=exp.EQ(this=den.copy(), expression=exp.Literal.number("0")))
    return exp.Paren(this=_case(zero, exp.cast(exp.null(), "DOUBLE"),
                                exp.Div(this=exp.cast(a.copy(), "DOUBLE"), expression=den)))


_UNARY: dict[str, Callable[[exp.Expression, dt.date], exp.Expression]] = {
    "age": age, "days_since": days_since, "days_until": days_until, "months_since": months_since,
}


def expand(tree: exp.Expression, as_of: dt.date) -> exp.Expression:
    """Replace macros (and every plain ``/``) by engine-neutral trees for this as-of date."""

    def rewrite(node: exp.Expression) -> exp.Expression:
        # transform() does not descend into a replacement, so expand the arguments first
        if isinstance(node, exp.Anonymous) and node.name.lower() in _UNARY:
            return _UNARY[node.name.lower()](expand(node.expressions[0], as_of), as_of)
        if isinstance(node, exp.Anonymous) and node.name.lower() == "safe_divide":
            return safe_divide(*[expand(e, as_of) for e in node.expressions])
        if isinstance(node, exp.SafeDivide):
            return safe_divide(expand(node.this, as_of), expand(node.expression, as_of))
        if isinstance(node, exp.Div) and not node.meta.get("safe"):
            # every user division is safe and DOUBLE: engines differ on /0 and on decimal scale
            out = safe_divide(expand(node.this, as_of), expand(node.expression, as_of))
            out.find(exp.Div).meta["safe"] = True
            return out
        return node

    return tree.transform(rewrite, copy=False)
