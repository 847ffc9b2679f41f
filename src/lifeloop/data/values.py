"""One mapped value as a SQL tree: source column, expression or constant, then code map, date format, cast.

Every step that can fail on a row (an unknown code, a date that does not match its format, a text
that is not a number) leaves a :class:`ValueCheck`: "rows where ``base`` has a value but ``result``
does not". :mod:`lifeloop.data.transform` runs these checks before any row is published, so a bad
value is reported with its file, row and column instead of surfacing as an engine error.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlglot import exp

from lifeloop.data.mapping import ColumnSpec
from lifeloop.engine.adapters.base import date_literal

_TIME_DIRECTIVES = ("%H", "%I", "%M", "%S", "%f", "%p", "%X", "%c")
DERIVE_TYPES = ("VARCHAR", "BOOLEAN", "INTEGER", "BIGINT", "DOUBLE", "DATE", "TIMESTAMP")


@dataclass
class ValueCheck:
    """Rows where ``base`` is not NULL but ``result`` is: the value could not be read."""

    kind: str                      # "code" (unmapped code), "format" (date format), "type" (cast)
    base: exp.Expression
    result: exp.Expression | None  # None for "code": the codes outside ``codes`` fail
    column: str                    # the column named in problems (source column or target name)
    target: str                    # the canonical or derived column being made
    detail: str                    # "DATE with format %y%m%d", "DECIMAL(18,2)"
    codes: list[str] = field(default_factory=list)


def literal(value: Any) -> exp.Expression:
    """A constant from the mapping as a SQL literal."""
    if value is None:
        return exp.null()
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, (int, float)):
        return exp.Literal.number(value)
    if isinstance(value, dt.date):
        return date_literal(value)
    return exp.Literal.string(str(value))


def literal_type(value: Any) -> str:
    """The SQL type of a constant from the mapping."""
    if isinstance(value, bool):
        return "BOOLEAN"
    if isinstance(value, int):
        return "BIGINT"
    if isinstance(value, float):
        return "DOUBLE"
    if isinstance(value, dt.date):
        return "DATE"
    return "VARCHAR"


def _varchar(e: exp.Expression) -> exp.Expression:
    return exp.cast(e.copy(), exp.DataType.build("VARCHAR"))


def _same_type(a: str, b: str) -> bool:
    return a.replace(" ", "").upper() == b.replace(" ", "").upper()


def build_value(spec: ColumnSpec, *, env: Mapping[str, str], target_type: str | None, target: str,
                parse_expr: Callable[[str], tuple[exp.Expression, str]],
                missing_column: Callable[[str], None]) -> tuple[exp.Expression, str, list[ValueCheck]]:
    """The tree of one mapped value, its SQL type, and the checks that find rows it cannot read.

    ``env`` maps the names usable here to their types; ``parse_expr`` parses a user expression
    (restricted, see lifeloop.engine.rules); ``missing_column`` reports a column the source lacks.
    ``target_type`` is the canonical column's type (None for a derived value: ``spec.type`` or inferred).
    """
    checks: list[ValueCheck] = []
    if "column" in spec.model_fields_set:
        name = spec.column or ""
        label = name
        if name in env:
            cur: exp.Expression = exp.column(name, quoted=True)
            cur_type = env[name]
        else:  # reported; carry on with NULL so the types downstream stay as they will be once fixed
            missing_column(name)
            cur, cur_type = exp.null(), "VARCHAR"
    elif "expr" in spec.model_fields_set:
        cur, cur_type = parse_expr(spec.expr or "")
        label = target
    else:
        cur, cur_type, label = literal(spec.value), literal_type(spec.value), target

    if spec.map is not None:
        default = literal(spec.default) if spec.has_default else exp.null()
        ifs = [exp.If(this=exp.EQ(this=_varchar(cur), expression=exp.Literal.string(k)), true=literal(v))
               for k, v in spec.map.items()]
        if spec.has_default:
            # a missing value takes the default as well: "anything not listed"
            ifs.insert(0, exp.If(this=exp.Is(this=cur.copy(), expression=exp.null()), true=default.copy()))
        else:
            checks.append(ValueCheck("code", cur.copy(), None, label, target, "code", codes=list(spec.map)))
        values = [v for v in spec.map.values() if v is not None]
        cur_type = literal_type(values[0]) if values and len({literal_type(v) for v in values}) == 1 else "VARCHAR"
        cur = exp.Case(ifs=ifs, default=default)

    if spec.format:
        parsed = exp.Anonymous(this="try_strptime", expressions=[_varchar(cur), exp.Literal.string(spec.format)])
        checks.append(ValueCheck("format", cur.copy(), parsed, label, target, f"a date with format {spec.format}"))
        has_time = any(d in spec.format for d in _TIME_DIRECTIVES)
        cur, cur_type = parsed, "TIMESTAMP"
        if target_type is None and not spec.type:
            target_type = "TIMESTAMP" if has_time else "DATE"

    want = target_type or spec.type or cur_type
    if _same_type(want, cur_type):
        return cur, want, checks
    result = exp.TryCast(this=cur.copy(), to=exp.DataType.build(want, dialect="duckdb"))
    checks.append(ValueCheck("type", cur.copy(), result, label, target, want))
    return result, want, checks
