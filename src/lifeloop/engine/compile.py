"""Compile user rules (lifecycle stages, segments, audiences) into engine-neutral boolean trees.

Rule text is parsed in one place, :func:`lifeloop.engine.rules.parse_expression`; everything here
works on the tree it returns: thresholds become number literals, macros expand for the as-of date,
and cheap static checks (bounds that contradict each other) read the compiled tree, never the text.
"""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Mapping
from typing import TYPE_CHECKING

from sqlglot import exp

from lifeloop.engine.macros import expand
from lifeloop.engine.rules import parse_expression
from lifeloop.errors import ConfigError, LifeloopError, Problem, RuleError

if TYPE_CHECKING:
    import pyarrow as pa


def duckdb_type(arrow_type: pa.DataType) -> str:
    """The DuckDB SQL type of an Arrow column type (what rule validation needs to know)."""
    import pyarrow as pa

    t = arrow_type
    if pa.types.is_boolean(t):
        return "BOOLEAN"
    if pa.types.is_int8(t) or pa.types.is_int16(t) or pa.types.is_int32(t):
        return "INTEGER"
    if pa.types.is_integer(t):
        return "BIGINT"
    if pa.types.is_floating(t):
        return "DOUBLE"
    if pa.types.is_decimal(t):
        return f"DECIMAL({t.precision},{t.scale})"
    if pa.types.is_date(t):
        return "DATE"
    if pa.types.is_timestamp(t):
        return "TIMESTAMP"
    return "VARCHAR"


def feature_columns(schema: pa.Schema) -> dict[str, str]:
    """Column name -> DuckDB type, for every column of a snapshot's schema (features, segments)."""
    return {f.name: duckdb_type(f.type) for f in schema}


def threshold_literal(value: float) -> exp.Expression:
    """A threshold as a number literal (integers stay integers so comparisons keep their type)."""
    return exp.Literal.number(int(value) if float(value).is_integer() else value)


MODEL_FUNCTIONS = ("score", "uplift")


def score_column(model: str) -> str:
    """The audience base's column holding a model's score of the day (``score('churn')`` reads it)."""
    return f"_score__{model}"


def scores_query(scores: str, models: list[str]) -> exp.Select:
    """The day's scores pivoted: one row per customer, one column per model (``score('churn')`` reads it);
    audiences and segments join it by customer."""
    cols: list[exp.Expression] = [exp.column("customer_id")]
    for m in models:
        pick = exp.Case(ifs=[exp.If(this=exp.EQ(this=exp.column("model"), expression=exp.Literal.string(m)),
                                    true=exp.column("score"))])
        cols.append(exp.alias_(exp.Max(this=pick), score_column(m), quoted=True))
    return exp.select(*cols).from_(scores).group_by(exp.column("customer_id"))


def model_calls(tree: exp.Expression, models: Mapping[str, str], where: str, text: str) -> dict[exp.Expression, str]:
    """Each ``score('name')`` / ``uplift('name')`` call of a parsed rule and the model it names, checked:
    one quoted model name, a model declared in config/models.yaml, ``uplift()`` only of an uplift model."""
    found: dict[exp.Expression, str] = {}
    known = ", ".join(sorted(models)) or "none"
    for node in tree.find_all(exp.Anonymous):
        fn = node.name.lower()
        if fn not in MODEL_FUNCTIONS:
            continue
        args = node.expressions
        if len(args) != 1 or not (isinstance(args[0], exp.Literal) and args[0].is_string):
            raise RuleError(f"{where}: {fn}() takes one model name in quotes, e.g. {fn}('churn'), in {text!r}",
                            hint=f"models declared in config/models.yaml: {known}")
        name = args[0].this
        if name not in models:
            close = difflib.get_close_matches(name, list(models), n=1)
            raise RuleError(f"{where}: unknown model {name!r} in {text!r}"
                            + (f"; did you mean {close[0]!r}?" if close else ""),
                            hint=f"models declared in config/models.yaml: {known}")
        if fn == "uplift" and models[name] != "uplift":
            raise RuleError(f"{where}: model {name!r} is a {models[name]} model; uplift() reads an uplift model",
                            hint=f"write score({name!r}) for its score, or declare an uplift model (kind: uplift)")
        found[node] = name
    return found


def compile_rule(text: str, *, columns: Mapping[str, str], thresholds: Mapping[str, float], as_of: dt.date,
                 where: str, models: Mapping[str, str] | None = None) -> exp.Expression:
    """Validate one boolean rule and return its engine-neutral tree (thresholds and macros replaced).

    ``meta["names"]`` of the result holds every name the text reads, columns and thresholds alike
    (``lifeloop why`` shows their values). With ``models`` (declared model name -> kind) the rule may
    read a model's score of the day, ``score('churn') >= 0.6`` or ``uplift('wealth_offer') > 0.02``: the
    call becomes the column :func:`score_column` names, and ``meta["models"]`` lists the models read.
    """
    clash = sorted(set(thresholds) & set(columns))
    if clash:
        raise ConfigError(f"{where}: threshold {clash[0]!r} has the same name as a feature column",
                          hint="rename the threshold, e.g. with a _days or _min suffix")
    names = {**columns, **{k: ("INTEGER" if float(v).is_integer() else "DOUBLE") for k, v in thresholds.items()}}
    tree = parse_expression(text, columns=names, kind="boolean", where=where,
                            functions=MODEL_FUNCTIONS if models is not None else ())
    read = frozenset(c.name for c in tree.find_all(exp.Column))
    out, calls = _filled(tree, thresholds, models, as_of, where, text)
    out.meta["names"] = read
    out.meta["models"] = frozenset(calls.values())
    return out


def compile_value(text: str, *, columns: Mapping[str, str], thresholds: Mapping[str, float], as_of: dt.date,
                  where: str, models: Mapping[str, str] | None = None) -> exp.Expression:
    """A numeric value to rank by (``uplift('wealth_uplift')``, ``score('churn') * aum``), compiled like a rule:
    model calls become score columns (``meta["models"]``), thresholds literals, macros expanded."""
    names = {**columns, **{k: ("INTEGER" if float(v).is_integer() else "DOUBLE") for k, v in thresholds.items()}}
    tree = parse_expression(text, columns=names, kind="value", where=where,
                            functions=MODEL_FUNCTIONS if models is not None else ())
    kind = tree.meta["sql_type"].split("(")[0]
    if kind not in ("INTEGER", "BIGINT", "DOUBLE", "DECIMAL", "FLOAT", "HUGEINT", "SMALLINT", "TINYINT"):
        raise RuleError(f"{where}: {text!r} is a {kind}; a ranking needs a number",
                        hint="rank by a score or a numeric column, e.g. uplift('wealth_uplift')")
    out, calls = _filled(tree, thresholds, models, as_of, where, text)
    out.meta["models"] = frozenset(calls.values())
    return out


def _filled(tree: exp.Expression, thresholds: Mapping[str, float], models: Mapping[str, str] | None,
            as_of: dt.date, where: str, text: str) -> tuple[exp.Expression, dict[exp.Expression, str]]:
    """A parsed rule or value with thresholds as literals, model calls as score columns, macros expanded."""
    calls = model_calls(tree, models, where, text) if models is not None else {}
    by_sql = {node.sql(): name for node, name in calls.items()}

    def fill(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Column) and node.name in thresholds:
            return threshold_literal(thresholds[node.name])
        if isinstance(node, exp.Anonymous) and node.sql() in by_sql:
            return exp.column(score_column(by_sql[node.sql()]), quoted=True)
        return node

    return expand(tree.copy().transform(fill), as_of), calls


def rule_problem(error: LifeloopError, where: str, **located: object) -> Problem:
    """An error raised for one rule (``where`` prefixed, as compile_rule does) as one located problem."""
    message = error.message.removeprefix(f"{where}: ")
    return Problem(message, hint=error.hint, **located)  # type: ignore[arg-type]


def is_catch_all(text: str) -> bool:
    """True for the rule that matches everyone (``when: "true"``)."""
    return text.strip().lower() == "true"


_FLIP = {"GT": "LT", "GTE": "LTE", "LT": "GT", "LTE": "GTE", "EQ": "EQ"}


def contradictions(tree: exp.Expression) -> list[str]:
    """Columns whose AND-ed bounds no value satisfies (``x > 5 AND x < 3``), in a compiled rule's tree.

    Thresholds must already be literals (as :func:`compile_rule` returns them); a cheap check, not a
    solver: it reads comparisons of one column with one number at the top level of an AND.
    """
    bounds: dict[str, list[tuple[str, float]]] = {}

    def number(node: exp.Expression) -> float | None:
        node = node.unnest()
        if isinstance(node, exp.Neg):
            inner = number(node.this)
            return -inner if inner is not None else None
        if isinstance(node, exp.Literal) and node.is_number:
            return float(node.this)
        return None

    root = tree.unnest()
    for part in root.flatten() if isinstance(root, exp.And) else [root]:
        part = part.unnest()
        op = type(part).__name__
        if op not in _FLIP:
            continue
        left, right = part.this, part.expression
        if isinstance(left, exp.Column) and (v := number(right)) is not None:
            bounds.setdefault(left.name, []).append((op, v))
        elif isinstance(right, exp.Column) and (v := number(left)) is not None:
            bounds.setdefault(right.name, []).append((_FLIP[op], v))
    found = []
    for col, bs in bounds.items():
        lo, lo_open, hi, hi_open = float("-inf"), False, float("inf"), False
        for op, v in bs:
            if op in ("GT", "GTE", "EQ") and (v > lo or (v == lo and op == "GT")):
                lo, lo_open = v, op == "GT"
            if op in ("LT", "LTE", "EQ") and (v < hi or (v == hi and op == "LT")):
                hi, hi_open = v, op == "LT"
        if lo > hi or (lo == hi and (lo_open or hi_open)):
            found.append(col)
    return found
