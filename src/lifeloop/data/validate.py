"""The checks a batch passes before anything is published; each returns located problems.

Every check reads a staged table ``stage_<name>`` (canonical columns plus ``__file`` and ``__row``,
the source file and its 1-based data row) and returns a :class:`CheckResult`: the first few
offending rows as :class:`~lifeloop.errors.Problem` (file, table, row, column, rule), how many rows
failed in all, and what to do. :func:`check_batch` runs them all, so one ingest reports every kind
of problem at once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlglot import exp

from lifeloop.config.workspace import DEFAULT_ID_PATTERN
from lifeloop.data.cards import redact_cards
from lifeloop.data.masking import quotable
from lifeloop.data.schema import TABLES, ForeignKey, Table
from lifeloop.data.sql import CAP, FILE, PART, ROW, col, ident
from lifeloop.engine.adapters.base import date_literal
from lifeloop.errors import Problem

EARLIEST = dt.date(1900, 1, 1)   # a date before this is a placeholder or a wrong format, not history
LATEST = dt.date(2199, 12, 31)
# ids that name a bank's people and things; they reach file and folder names (exports, worklists), so their
# characters are checked (docs/security.md). Transaction and event ids never leave the lake.
ID_COLUMNS = ("branch_id", "rm_id", "customer_id", "product_id", "account_id")
SHOWN_ID = 40   # characters of a refused id shown in a message


@dataclass
class CheckResult:
    """What one check found: the first problems, the total count of failing rows, and the fix."""

    rule: str
    problems: list[Any]
    total: int
    hint: str


def stage(name: str) -> exp.Table:
    return exp.Table(this=ident(f"stage_{name}"))


def parquet(files: list[Path], file_row_number: bool = False) -> exp.Table:
    """A table expression reading Parquet files the lake published (our paths, never user text); with
    ``file_row_number``, each row's position in its file as a column of that name."""
    paths = exp.Array(expressions=[exp.Literal.string(str(f)) for f in files])
    options = [exp.EQ(this=exp.column("file_row_number"), expression=exp.true())] if file_row_number else []
    return exp.Table(this=exp.Anonymous(this="read_parquet", expressions=[paths, *options]))


def located(con: Any, table: str, condition: exp.Expression, value: exp.Expression, *, column: str | None,
            rule: str, message: Callable[[Any], str], hint: str, source: exp.Expression | None = None) -> CheckResult:
    """Rows of ``stage_<table>`` matching ``condition``: the first CAP as problems, plus the count."""

    q = exp.select(col(FILE), col(ROW), exp.alias_(value, "v", quoted=True),
                   exp.alias_(exp.Window(this=exp.Count(this=exp.Star())), "n", quoted=True)) \
        .from_(source or stage(table)).where(condition).order_by(col(FILE), col(ROW)).limit(CAP)
    found = con.sql(q.sql(dialect="duckdb")).fetchall()
    total = found[0][3] if found else 0
    # a refused value is quoted, but never a card number or track data in it (PCI DSS 3.3), nor the value of a
    # personal column (a name, a mobile, a birth date: PIPL Art. 51)
    problems = [Problem(redact_cards(message(quotable(table, column, v))), file=f, table=table, row=r, column=column,
                        rule=rule)
                for f, r, v, _ in found]
    if total > len(found):
        problems.append(Problem(f"... and {total - len(found):,} more rows", table=table, column=column, rule=rule))
    return CheckResult(rule, problems, total, hint)


@dataclass
class RowCheck:
    """A check of single rows of the staged table (a condition that marks a bad row), run by :func:`screened`."""

    condition: exp.Expression
    value: exp.Expression
    column: str | None
    rule: str
    message: Callable[[Any], str]
    hint: str


def screened(con: Any, table: str, checks: list[RowCheck]) -> list[CheckResult]:
    """Count every row check's failures in one scan; locate the rows only of the checks that failed.

    A clean batch (the usual case) costs one query per table instead of one per check and column."""
    if not checks:
        return []
    counts = exp.select(*[exp.alias_(exp.Sum(this=exp.Case(ifs=[exp.If(this=c.condition.copy(),
                                                                       true=exp.Literal.number(1))],
                                                           default=exp.Literal.number(0))), f"c{i}", quoted=True)
                          for i, c in enumerate(checks)]).from_(stage(table))
    found = con.sql(counts.sql(dialect="duckdb")).fetchall()[0]
    return [located(con, table, c.condition, c.value, column=c.column, rule=c.rule, message=c.message, hint=c.hint)
            if n else CheckResult(c.rule, [], 0, c.hint)
            for c, n in zip(checks, found or [0] * len(checks), strict=False)]


def required_checks(t: Table) -> list[RowCheck]:
    """Required columns hold a value in every row."""
    return [RowCheck(exp.Is(this=col(c.name), expression=exp.null()), exp.null(), c.name, "required",
                     lambda _v, c=c: f"{c.name} is required but missing",
                     "fill the value in the source file, or map the column in the mapping (columns:)")
            for c in t.columns if c.required]


def allowed_checks(t: Table) -> list[RowCheck]:
    """Coded columns hold one of their allowed codes."""
    return [RowCheck(exp.Not(this=exp.In(this=col(c.name), expressions=[exp.Literal.string(a) for a in c.allowed])),
                     col(c.name), c.name, "allowed",
                     lambda v, c=c: f"{v!r} is not an allowed code (allowed: {', '.join(c.allowed)})",
                     "translate the source's codes with map: in the mapping")
            for c in t.columns if c.allowed]


def nonnegative_checks(t: Table) -> list[RowCheck]:
    """Amounts and balances that cannot be negative are not."""
    return [RowCheck(exp.LT(this=col(c.name), expression=exp.Literal.number(0)), col(c.name), c.name, "nonnegative",
                     lambda v, c=c: f"{c.name} is negative ({v})",
                     "amounts are positive (direction says which way money moved); "
                     "check the sign in the source or the mapping")
            for c in t.columns if c.nonnegative]


def required_values(con: Any, t: Table) -> list[CheckResult]:
    """Required columns hold a value in every row."""
    return screened(con, t.name, required_checks(t))


def allowed_codes(con: Any, t: Table) -> list[CheckResult]:
    """Coded columns hold one of their allowed codes."""
    return screened(con, t.name, allowed_checks(t))


def nonnegative(con: Any, t: Table) -> list[CheckResult]:
    """Amounts and balances that cannot be negative are not."""
    return screened(con, t.name, nonnegative_checks(t))


def _key_text(t: Table, prefix: str | None = None) -> exp.Expression:
    parts: list[exp.Expression] = []
    for i, k in enumerate(t.primary_key):
        if i:
            parts.append(exp.Literal.string(", "))
        parts += [exp.Literal.string(f"{k}="), exp.cast(col(k, prefix), "VARCHAR")]
    return exp.Concat(expressions=parts, safe=True, coalesce=True)


def unique_in_batch(con: Any, t: Table) -> list[CheckResult]:
    """No two rows of the batch share a primary key (the first occurrence is kept in the message).

    A count of distinct keys first (one hash aggregate): only a batch with a repeated key pays for numbering
    every row in key order to locate the repeats."""
    keys = [col(k) for k in t.primary_key]
    row = exp.Anonymous(this="row", expressions=[k.copy() for k in keys])
    distinct = exp.Count(this=exp.Distinct(expressions=[row]))
    repeated = exp.select(exp.Sub(this=exp.Count(this=exp.Star()), expression=distinct)).from_(stage(t.name))
    if not con.sql(repeated.sql(dialect="duckdb")).fetchall()[0][0]:
        return [CheckResult("unique", [], 0, "")]
    order = exp.Order(expressions=[exp.Ordered(this=col(PART)), exp.Ordered(this=col(ROW))])

    def over(func: exp.Expression, ordered: bool = True) -> exp.Window:
        return exp.Window(this=func, partition_by=[k.copy() for k in keys], order=order.copy() if ordered else None)

    numbered = exp.select(exp.Star(), exp.alias_(over(exp.RowNumber()), "__n", quoted=True),
                          exp.alias_(over(exp.FirstValue(this=col(FILE))), "__first_file", quoted=True),
                          exp.alias_(over(exp.FirstValue(this=col(ROW))), "__first_row", quoted=True)
                          ).from_(stage(t.name))
    first = exp.Concat(expressions=[col("__first_file"),
                                    exp.Literal.string(" row "), exp.cast(col("__first_row"), "VARCHAR")], safe=True)
    value = exp.Concat(expressions=[_key_text(t), exp.Literal.string("|"), first], safe=True)
    return [located(con, t.name, exp.GT(this=col("__n"), expression=exp.Literal.number(1)), value,
                    column=", ".join(t.primary_key), rule="unique",
                    message=lambda v: "duplicate key {} (first seen at {})".format(*v.rsplit("|", 1)),
                    hint="each key may appear once per batch: remove the repeated rows or fix the key",
                    source=numbered.subquery("d"))]


def unique_against_published(con: Any, t: Table, earlier: list[Path],
                             reader: Callable[[list[Path]], exp.Expression] = parquet) -> list[CheckResult]:
    """Fact rows are not already in another published batch (a re-ingest of the same date replaces it)."""
    if t.kind != "fact" or not earlier:
        return []
    pub = exp.select(*[col(k) for k in t.primary_key]).from_(reader(earlier))
    cond = exp.In(this=exp.Tuple(expressions=[col(k) for k in t.primary_key]), query=pub.subquery()) \
        if len(t.primary_key) > 1 else exp.In(this=col(t.primary_key[0]), query=pub.subquery())
    return [located(con, t.name, cond, _key_text(t), column=", ".join(t.primary_key), rule="unique",
                    message=lambda v: f"key {v} was already published in an earlier batch",
                    hint="send only new rows in each batch, or re-ingest the batch of the date they belong to")]


def references(con: Any, t: Table, fk: ForeignKey, ref_source: exp.Expression | None, ref_label: str) -> CheckResult:
    """Every reference points at a row of the referenced table (this batch or what is published)."""
    present = exp.Not(this=exp.Is(this=col(fk.column), expression=exp.null()))
    if ref_source is None:
        cond = present
    else:
        ref = exp.select(col(fk.ref_column)).from_(ref_source)
        cond = exp.and_(present, exp.Not(this=exp.In(this=col(fk.column), query=ref.subquery())))
    return located(con, t.name, cond, col(fk.column), column=fk.column, rule="reference",
                   message=lambda v: f"{fk.column} {v!r} not found in {fk.ref_table} ({ref_label})",
                   hint=f"every {fk.column} must exist in {fk.ref_table}: add the missing {fk.ref_table} rows "
                        f"to the batch, or fix the reference")


def date_checks(t: Table, as_of: dt.date) -> list[RowCheck]:
    """No fact row is dated after the as-of date; no date is absurd (before 1900 or after 2199)."""
    out = []
    if t.kind == "fact" and t.date_column:
        out.append(RowCheck(exp.GT(this=col(t.date_column), expression=date_literal(as_of)), col(t.date_column),
                            t.date_column, "as_of", lambda v: f"dated {v}, after the as-of date {as_of}",
                            "ingest with a later --as-of, or set rows_after_as_of: drop for this table in "
                            "the mapping when the extract is a time cut"))
    for c in t.columns:
        if c.type == "DATE":
            cond = exp.or_(exp.LT(this=col(c.name), expression=date_literal(EARLIEST)),
                           exp.GT(this=col(c.name), expression=date_literal(LATEST)))
            out.append(RowCheck(cond, col(c.name), c.name, "date_range",
                                lambda v, c=c: f"{c.name} {v} is outside 1900-2199: a placeholder or a wrong "
                                               f"date format?",
                                "check the date format in the mapping (format:), e.g. %y%m%d for YYMMDD"))
    return out


def id_checks(t: Table, pattern: str = DEFAULT_ID_PATTERN) -> list[RowCheck]:
    """Ids hold only safe characters: the pattern (whole value), and never a path in any case.

    Whatever the (configurable) pattern allows, a slash, a backslash, ``..``, a leading dot or a control
    character is refused: an id must never be able to become a path.
    """
    def fn(name: str, *args: exp.Expression) -> exp.Expression:
        return exp.Anonymous(this=name, expressions=list(args))

    out = []
    for c in t.columns:
        if c.name not in ID_COLUMNS:
            continue
        v = col(c.name)
        bad = exp.or_(exp.Not(this=fn("regexp_full_match", v.copy(), exp.Literal.string(pattern))),
                      fn("starts_with", v.copy(), exp.Literal.string(".")),
                      *[fn("contains", v.copy(), exp.Literal.string(x)) for x in ("..", "/", "\\")],
                      fn("regexp_matches", v.copy(), exp.Literal.string("[\\x00-\\x1f\\x7f]")))
        out.append(RowCheck(bad, v.copy(), c.name, "safe_id",
                            lambda v, c=c: f"{c.name} {_shown(v)} is not a safe id (allowed: {pattern}; "
                                           f"never '/', '\\', '..' or a leading dot)",
                            "ids become file and folder names (exports, worklists): correct the id in the source, "
                            "or map it to a code of letters, digits, '_', '.' and '-' (ingest.id_pattern in "
                            "lifeloop.yaml widens the set; see docs/security.md)"))
    return out


def _shown(value: Any) -> str:
    text = str(value)
    return repr(text if len(text) <= SHOWN_ID else text[:SHOWN_ID] + "...")


def date_ranges(con: Any, t: Table, as_of: dt.date) -> list[CheckResult]:
    """No fact row is dated after the as-of date; no date is absurd (before 1900 or after 2199)."""
    return screened(con, t.name, date_checks(t, as_of))


def check_batch(con: Any, tables: list[str], as_of: dt.date, published: dict[str, list[Path]],
                other_batches: dict[str, list[Path]], *, id_pattern: str = DEFAULT_ID_PATTERN,
                reader: Callable[[list[Path]], exp.Expression] = parquet) -> list[CheckResult]:
    """Run every check on the staged tables; return only the checks that failed.

    ``published`` holds, per table, the files the lake would serve as of this date *without* this
    batch (state: the newest earlier batch; fact: earlier batches). ``other_batches`` holds, per
    fact table, the files of every other batch (for key uniqueness across batches). ``reader`` gives the
    relation over published files (the lake's, which decrypts encrypted C2 columns; default: read_parquet).
    """
    results: list[CheckResult] = []
    for name in tables:
        t = TABLES[name]
        # every single-row check of the table in one scan; the failing ones are then located
        results += screened(con, name, required_checks(t) + allowed_checks(t) + nonnegative_checks(t)
                            + date_checks(t, as_of) + id_checks(t, id_pattern))
        results += unique_in_batch(con, t) + unique_against_published(con, t, other_batches.get(name, []), reader)
        for fk in t.foreign_keys:
            if fk.ref_table in tables:
                source: exp.Expression | None = stage(fk.ref_table)
                label = "this batch"
                if TABLES[fk.ref_table].kind == "fact" and published.get(fk.ref_table):
                    source = exp.union(exp.select(col(fk.ref_column)).from_(stage(fk.ref_table)),
                                       exp.select(col(fk.ref_column)).from_(reader(published[fk.ref_table])),
                                       distinct=False).subquery("r")
                    label = "this batch or earlier batches"
            elif published.get(fk.ref_table):
                source, label = reader(published[fk.ref_table]), "the published batch"
            else:
                source, label = None, f"{fk.ref_table} is neither in this batch nor published"
            results.append(references(con, t, fk, source, label))
    return [r for r in results if r.total]
