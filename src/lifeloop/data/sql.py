"""Small helpers to build DuckDB SQL as sqlglot trees (never by pasting text)."""

from __future__ import annotations

from sqlglot import exp

ROW, FILE, PART = "__row", "__file", "__part"
CAP = 20  # located problems kept per check; the rest are counted


def ident(name: str) -> exp.Identifier:
    return exp.to_identifier(name, quoted=True)


def col(name: str, table: str | None = None) -> exp.Column:
    return exp.column(name, table=table, quoted=True)


def create_table(name: str, query: exp.Expression, kind: str = "TABLE") -> str:
    """``CREATE OR REPLACE TABLE name AS query`` (or a VIEW) as DuckDB SQL text built from a tree."""
    return exp.Create(this=exp.Table(this=ident(name)), kind=kind, expression=query,
                      replace=True).sql(dialect="duckdb")
