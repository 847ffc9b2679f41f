"""Validate user-written rules and expressions (DESIGN.md: "analysts' rule strings").

A rule such as ``aum >= 500000 AND age >= 55`` is parsed with sqlglot (DuckDB dialect), then every
node is checked against an allow-list; columns must be known (unknown -> "did you mean"); there is
no way to write a subquery, a table function, a window, or a second statement. Finally a dry run in
DuckDB over an empty relation of the known columns checks the types (a rule must be BOOLEAN). What
comes back is a tree: callers embed it into their own query trees, so a user string never reaches an
engine as text.
"""

from __future__ import annotations

import difflib
import logging
import threading
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import sqlglot
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.tokens import TokenType

from lifeloop.engine.macros import MACROS, expand
from lifeloop.errors import RuleError

Kind = Literal["boolean", "value", "aggregate"]

# Limits on rule text, generous for a bank analyst's rules (the longest segment rule in the default
# bank is under 200 characters) and checked on the tokens *before* sqlglot parses: its parser recurses
# about twenty Python frames per bracket, so ~50 nested brackets raised RecursionError, and a
# 289k-character rule took ten seconds. docs/features.md, "Limits", lists them.
MAX_RULE_LENGTH = 10_000
MAX_RULE_DEPTH = 32
MAX_IN_VALUES = 1_000

# sqlglot logs a warning when it falls back to parsing unknown syntax as a Command; we refuse such
# input with our own message, so its log line would only be noise in the user's terminal
logging.getLogger("sqlglot").setLevel(logging.ERROR)

# Node types any expression may contain. Anything else (Select, Subquery, Table, Window, Dot,
# Placeholder, Command, ...) is refused.
_ALLOWED: tuple[type[exp.Expression], ...] = (
    exp.Column, exp.Identifier, exp.Literal, exp.Boolean, exp.Null, exp.Paren, exp.Tuple,
    exp.And, exp.Or, exp.Not, exp.Xor,
    exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.Is, exp.In, exp.Between,
    exp.Like, exp.ILike,
    exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Mod, exp.Neg, exp.DPipe,
    exp.Case, exp.If, exp.Coalesce, exp.Nullif, exp.Cast, exp.TryCast, exp.DataType, exp.DataTypeParam,
    exp.Abs, exp.Round, exp.Floor, exp.Ceil, exp.Least, exp.Greatest, exp.Sqrt, exp.Ln, exp.Log, exp.Pow,
    exp.Lower, exp.Upper, exp.Length, exp.Substring, exp.Trim, exp.Concat,
    exp.Year, exp.Month, exp.Day, exp.Interval, exp.Var, exp.LastDay, exp.DateFromParts,
    exp.SafeDivide, exp.Anonymous,
)
_AGGREGATES: tuple[type[exp.Expression], ...] = (exp.Count, exp.Sum, exp.Avg, exp.Min, exp.Max, exp.Star,
                                                 exp.Distinct)
_CAST_TYPES = {"BOOLEAN", "INT", "INTEGER", "BIGINT", "DOUBLE", "FLOAT", "DECIMAL", "VARCHAR", "TEXT", "DATE"}
_FRIENDLY = {
    exp.Select: "a subquery or SELECT", exp.Subquery: "a subquery", exp.Table: "a table reference",
    exp.Window: "a window function", exp.Dot: "a qualified name", exp.Star: "'*'",
}


_DUCKDB = Dialect.get_or_raise("duckdb")
_SPLIT = "split it into tags (config/tags.yaml) and combine those"


def _fail(where: str, message: str, hint: str) -> RuleError:
    return RuleError(f"{where}: {message}", hint=hint)


def parse_expression(text: str, *, columns: Mapping[str, str], kind: Kind, where: str,
                     functions: Sequence[str] = ()) -> exp.Expression:
    """Parse and check one user expression; return its tree (with ``meta['sql_type']`` set).

    ``columns`` maps every name the expression may use to its DuckDB type. ``kind`` is "boolean"
    for rules, "value" for derived values, "aggregate" for one aggregate over a source's columns.
    ``functions`` names extra anonymous functions the caller will replace itself.
    """
    if not isinstance(text, str) or not text.strip():
        raise _fail(where, "the expression is empty", "write a SQL expression, e.g. aum >= 500000")
    key = (text, kind, tuple(functions), tuple(sorted(columns.items())))
    found = _CHECKED.get(key)
    if found is not None:
        return found.copy()   # the caller may graft the tree into its query: never hand out the cached one
    _check_limits(text, where)
    try:
        tree = _parse_checked(text, columns=columns, kind=kind, where=where, functions=functions)
    except RecursionError:
        # the token checks keep rules far from Python's recursion limit; this is the last guard,
        # should a caller already sit deep in its own stack
        raise _fail(where, f"the expression is nested too deeply to check (limit {MAX_RULE_DEPTH} levels)",
                    _SPLIT) from None
    if len(_CHECKED) >= MAX_CHECKED:
        _CHECKED.clear()
    _CHECKED[key] = tree
    return tree.copy()


# Checked expressions of this process: (text, kind, functions, columns and their types) -> the checked tree. Every
# daily run checks the same tags and rules against the same columns again (the demo's looped days: ~140 a run, each
# parsed, walked and type-checked by DuckDB); the answer depends on nothing else, so it is computed once. Errors are
# not kept: a wrong rule is reported each time.
_CHECKED: dict[tuple[Any, ...], exp.Expression] = {}
MAX_CHECKED = 4096


def _check_limits(text: str, where: str) -> None:
    """Refuse rule text over the length, nesting and IN-list limits, without parsing it."""
    if len(text) > MAX_RULE_LENGTH:
        raise _fail(where, f"the expression is {len(text):,} characters long; the limit is {MAX_RULE_LENGTH:,}",
                    _SPLIT + "; long value lists belong in the bank's data, e.g. a flag column")
    try:
        tokens = _DUCKDB.tokenize(text)
    except sqlglot.errors.TokenError:
        return  # the parser reports it with its own message
    # one frame per open bracket or CASE: [is an IN list, values so far, NOTs in force]; a NOT nests
    # until AND/OR (or its frame's end) closes its operand, so NOT NOT x and (NOT (NOT x)) count twice
    frames: list[list[int]] = [[0, 0, 0]]
    previous = None
    for token in tokens:
        kind = token.token_type
        if kind in (TokenType.L_PAREN, TokenType.CASE):
            frames.append([int(kind == TokenType.L_PAREN and previous == TokenType.IN), 1, 0])
        elif kind in (TokenType.R_PAREN, TokenType.END):
            if len(frames) > 1:
                frames.pop()
        elif kind in (TokenType.AND, TokenType.OR, TokenType.WHEN, TokenType.THEN, TokenType.ELSE):
            frames[-1][2] = 0
        elif kind == TokenType.NOT:
            frames[-1][2] += 1
        elif kind == TokenType.COMMA and frames[-1][0]:
            frames[-1][1] += 1
            if frames[-1][1] > MAX_IN_VALUES:
                raise _fail(where, f"an IN list holds more than the limit of {MAX_IN_VALUES:,} values",
                            "keep long value lists in the bank's data (a flag or group column) and test that")
        if len(frames) - 1 + sum(f[2] for f in frames) > MAX_RULE_DEPTH:
            raise _fail(where, f"the expression is nested deeper than the limit of {MAX_RULE_DEPTH} levels "
                        f"(brackets, CASE and NOT count)", _SPLIT)
        previous = kind


def _parse_checked(text: str, *, columns: Mapping[str, str], kind: Kind, where: str,
                   functions: Sequence[str]) -> exp.Expression:
    try:
        statements = [s for s in sqlglot.parse(text, read="duckdb") if s is not None]
    except (sqlglot.errors.ParseError, sqlglot.errors.TokenError) as exc:
        errors = getattr(exc, "errors", None)
        detail = errors[0]["description"] if errors else str(exc)
        raise _fail(where, f"cannot parse {text!r}: {detail}",
                    "check brackets and quotes; strings take single quotes, names are bare") from None
    if len(statements) != 1:
        raise _fail(where, f"{text!r} holds {len(statements)} statements; one expression is allowed",
                    "remove the ';' and everything after it")
    tree = statements[0]
    _check_nodes(tree, text, columns, kind, where, set(functions))
    sql_type = _dry_run(tree, columns, where, text, set(functions))
    if kind == "boolean" and sql_type != "BOOLEAN":
        raise _fail(where, f"{text!r} is a {sql_type.split('(')[0]}, but a rule must be true or false",
                    "compare it with something, e.g. `... >= 100`")
    tree.meta["sql_type"] = sql_type
    return tree


def _check_nodes(tree: exp.Expression, text: str, columns: Mapping[str, str], kind: Kind, where: str,
                 functions: set[str]) -> None:
    allowed = _ALLOWED + (_AGGREGATES if kind == "aggregate" else ())
    aggregates_seen = 0
    for node in tree.walk():
        if isinstance(node, (exp.Count, exp.Sum, exp.Avg, exp.Min, exp.Max)):
            aggregates_seen += 1
            if any(isinstance(a, (exp.Count, exp.Sum, exp.Avg, exp.Min, exp.Max)) for a in node.iter_expressions()
                   for a in a.walk()):
                raise _fail(where, f"{text!r} nests an aggregate inside another", "aggregate plain columns only")
        if not isinstance(node, allowed):
            what = next((v for k, v in _FRIENDLY.items() if isinstance(node, k)), None)
            if what is None and isinstance(node, exp.Func):
                name = node.sql_name() if hasattr(node, "sql_name") else type(node).__name__
                what = f"the function {name.lower()}()"
            what = what or f"{type(node).__name__} syntax"
            if kind != "aggregate" and isinstance(node, _AGGREGATES):
                raise _fail(where, f"{text!r} uses an aggregate ({what}) where a per-customer value is expected",
                            "aggregates belong in aggregate tags (config/tags.yaml, kind: aggregate)")
            raise _fail(where, f"{text!r} uses {what}, which is not allowed in rules",
                        f"allowed: comparisons, AND/OR/NOT, arithmetic, CASE, COALESCE, IN, BETWEEN, "
                        f"LIKE, simple functions and the macros {', '.join(sorted(MACROS))}")
        if isinstance(node, exp.Star) and not isinstance(node.parent, exp.Count):
            raise _fail(where, f"{text!r} uses '*' outside count(*)", "name the columns you need")
        if isinstance(node, exp.Anonymous):
            name = node.name.lower()
            if name not in MACROS and name not in functions:
                close = difflib.get_close_matches(name, list(MACROS) + list(functions), n=1)
                raise _fail(where, f"unknown function {name}()" + (f"; did you mean {close[0]}()?" if close else ""),
                            f"functions you can use: {', '.join(sorted(set(MACROS) | functions))} and plain SQL "
                            f"functions such as round, abs, least, coalesce")
            arity = MACROS.get(name)
            if arity is not None and len(node.expressions) != arity:
                raise _fail(where, f"{name}() takes {arity} argument(s), got {len(node.expressions)}",
                            f"write {name}(" + ", ".join(["x"] * arity) + ")")
        if isinstance(node, (exp.Cast, exp.TryCast)):
            target = node.to.this.name if isinstance(node.to.this, exp.DataType.Type) else str(node.to.this)
            if target.upper() not in _CAST_TYPES:
                raise _fail(where, f"{text!r} casts to {target}, which rules cannot use",
                            f"cast to one of {', '.join(sorted(_CAST_TYPES))}")
        if isinstance(node, exp.Column):
            if node.table:
                raise _fail(where, f"{text!r} names {node.sql()}; qualified names are not allowed",
                            f"write the column alone: {node.name}")
            if node.name not in columns:
                close = difflib.get_close_matches(node.name, list(columns), n=3)
                hint = f"did you mean {' or '.join(repr(c) for c in close)}?" if close else \
                    "known columns: " + ", ".join(sorted(columns)[:30]) + (" ..." if len(columns) > 30 else "")
                raise _fail(where, f"unknown column {node.name!r} in {text!r}", hint)
    if kind == "aggregate" and aggregates_seen == 0:
        raise _fail(where, f"{text!r} is not an aggregate", "use count(*), sum(x), avg(x), min(x) or max(x)")


_local = threading.local()


def _connection():
    conn = getattr(_local, "conn", None)
    if conn is None:
        import duckdb

        conn = _local.conn = duckdb.connect(":memory:")
    return conn


def _dry_run(tree: exp.Expression, columns: Mapping[str, str], where: str, text: str,
             functions: set[str] | None = None) -> str:
    """Type-check the expression by planning it over an empty relation of the known columns.

    A caller-replaced function (``functions``, e.g. ``score('churn')``) stands for a DOUBLE here."""
    import datetime as dt

    import duckdb

    used = sorted({c.name for c in tree.find_all(exp.Column)})
    projections = [exp.alias_(exp.cast(exp.null(), exp.DataType.build(columns[c], dialect="duckdb")), c, quoted=True)
                   for c in used] or [exp.alias_(exp.null(), "_", quoted=True)]
    inner = exp.select(*projections)

    def as_double(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Anonymous) and node.name.lower() in (functions or set()):
            return exp.cast(exp.null(), "DOUBLE")
        return node

    probe = expand(tree.copy().transform(as_double), dt.date(2000, 1, 1))
    query = exp.select(exp.alias_(probe, "r", quoted=True)).from_(inner.subquery("t")).limit(0)
    try:
        rel = _connection().cursor().sql(query.sql(dialect="duckdb"))
        return str(rel.types[0]).upper()
    except duckdb.Error as exc:
        msg = str(exc).split("\n")[0]
        for prefix in ("Binder Error: ", "Conversion Error: ", "Parser Error: ", "Catalog Error: "):
            msg = msg.replace(prefix, "")
        if "expression depth" in msg:  # DuckDB's own limit on very long chains such as a + 1 + 1 ...
            raise _fail(where, "the expression is too long a chain for the engine to check", _SPLIT) from None
        raise _fail(where, f"{text!r} does not type-check: {msg}",
                    "compare numbers with numbers, text with quoted text, dates with DATE '2024-01-31'") from None
