"""The feature step (标签): compile the catalogue into ONE query and publish lake/features/as_of=D/.

The query, for an as-of date D::

    WITH src_transactions AS (            -- one conditional aggregate per tag, one scan per source
           SELECT customer_id, COUNT(CASE WHEN <where> AND txn_date > D-30 THEN 1 END) AS txn_count_30d, ...
           FROM <transactions on or before D> GROUP BY customer_id),
         src_holdings AS (...), src_holdings_minus_90d AS (...),      -- holdings as of D and D-90
         base AS (SELECT customers.*, CAST(<aggregate or its empty value> AS <type>) AS <tag>, ...
                  FROM customers LEFT JOIN src_... ),
         layer_1 AS (SELECT *, CAST(<expression> AS <type>) AS <tag> FROM base), ...
    SELECT customer_id, <tags in catalogue order> FROM layer_n

Windowed aggregates are CASE WHEN inside the aggregate (not FILTER, not several scans) so both
engines read each source once and agree; every tag is cast to its declared type where it is made, so
later tags and the published file see the same types on every engine; AVG becomes SUM/COUNT and every
division a safe DOUBLE division (decimal AVG and division differ between engines).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from lifeloop.config.tags import TagsConfig
from lifeloop.contract import Inputs, Output, Step, Table
from lifeloop.engine.adapters.base import date_literal
from lifeloop.engine.macros import expand
from lifeloop.engine.views import SOURCES
from lifeloop.errors import DataError
from lifeloop.insight.catalogue import CUSTOMER_COLUMNS, Catalogue, Tag, resolve_catalogue, type_class

if TYPE_CHECKING:
    import pyarrow as pa

AREA = "features"
_AGGS = (exp.Count, exp.Sum, exp.Min, exp.Max)


def _q(name: str) -> exp.Identifier:
    return exp.to_identifier(name, quoted=True)


def _col(name: str, table: str | None = None) -> exp.Column:
    return exp.column(name, table=table, quoted=True)


def _quote_columns(tree: exp.Expression) -> exp.Expression:
    # user trees come back with bare names; quoting keeps a tag called e.g. "order" a column everywhere
    for col in tree.find_all(exp.Column):
        col.set("this", _q(col.name))
    return tree


def _avg_as_sum_over_count(tree: exp.Expression) -> exp.Expression:
    # AVG of a DECIMAL is a DOUBLE in DuckDB and a DECIMAL(p+4, s+4) in Spark; SUM is exact in both and
    # the (safe, DOUBLE) division that follows is IEEE in both
    def rewrite(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Avg):
            return exp.Div(this=exp.Sum(this=node.this.copy()), expression=exp.Count(this=node.this.copy()))
        return node

    return tree.transform(rewrite)


def _only_when(tree: exp.Expression, cond: exp.Expression | None) -> exp.Expression:
    """Make every aggregate in ``tree`` see only rows where ``cond`` holds (CASE WHEN inside it)."""
    if cond is None:
        return tree

    def guard(value: exp.Expression) -> exp.Expression:
        return exp.Case(ifs=[exp.If(this=cond.copy(), true=value)])

    for node in list(tree.find_all(*_AGGS)):
        arg = node.this
        if isinstance(arg, exp.Star):
            node.set("this", guard(exp.Literal.number(1)))
        elif isinstance(arg, exp.Distinct):
            arg.set("expressions", [guard(e.copy()) for e in arg.expressions])
        else:
            node.set("this", guard(arg.copy()))
    return tree


def _empty_value(tree: exp.Expression) -> exp.Expression:
    """The aggregate's value over no rows: COUNT is 0, every other aggregate NULL."""
    def rewrite(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Count):
            return exp.Literal.number(0)
        if isinstance(node, _AGGS):
            return exp.null()
        return node

    return tree.copy().transform(rewrite)


def _literal(value: Any) -> exp.Expression:
    if isinstance(value, bool):
        return exp.true() if value else exp.false()
    if isinstance(value, (int, float)):
        return exp.Literal.number(value)
    return exp.Literal.string(str(value))


def _typed(value: exp.Expression, tag: Tag) -> exp.Expression:
    """CAST to the declared type; a fraction going into an integer is rounded (engines would differ)."""
    if tag.default is not None:
        value = exp.Coalesce(this=value, expressions=[_literal(tag.default)])
    if type_class(tag.type) == "integer" and type_class(tag.sql_type) in ("decimal", "double"):
        # DuckDB rounds on CAST(2.7 AS INT), Spark truncates: round explicitly, half away from zero
        value = exp.Round(this=value)
    return exp.cast(value, exp.DataType.build(tag.type, dialect="duckdb"))


def _source_groups(catalogue: Catalogue) -> dict[tuple[str, int], list[Tag]]:
    groups: dict[tuple[str, int], list[Tag]] = {}
    for tag in catalogue.tags:
        if tag.kind == "aggregate":
            assert tag.source is not None
            groups.setdefault((tag.source, tag.offset_days), []).append(tag)
    return groups


def _source_cte(source_name: str, offset: int, tags: Iterable[Tag], as_of: dt.date) -> exp.Select:
    """One scan of a source: customer_id and one (conditional) aggregate per tag."""
    tags = list(tags)
    source = SOURCES[source_name]
    day = as_of - dt.timedelta(days=offset)
    projections: list[exp.Expression] = [_col("customer_id")]
    for tag in tags:
        cond = expand(_quote_columns(tag.where.copy()), day) if tag.where is not None else None
        if tag.window is not None and source.date_column:
            start = exp.GT(this=_col(source.date_column),
                           expression=date_literal(day - dt.timedelta(days=tag.window)))
            cond = start if cond is None else exp.and_(exp.Paren(this=cond), start)
        # macros first, then AVG -> SUM / COUNT, whose new division the second pass makes safe
        tree = expand(_avg_as_sum_over_count(expand(_quote_columns(tag.tree.copy()), day)), day)
        projections.append(exp.alias_(_only_when(tree, cond), tag.name, quoted=True))
    query = exp.select(*projections).from_(source.relation(day).subquery("r"))
    windows = [t.window for t in tags]
    if source.date_column and all(w is not None for w in windows):
        # every tag of this source looks back at most this far: older rows need not be read at all
        oldest = day - dt.timedelta(days=max(w for w in windows if w is not None))
        query = query.where(exp.GT(this=_col(source.date_column), expression=date_literal(oldest)))
    return query.group_by(_col("customer_id"))


def cte_name(source: str, offset: int) -> str:
    """The name of a source's aggregate CTE (``src_holdings_minus_90d`` for an offset)."""
    return f"src_{source}" + (f"_minus_{offset}d" if offset else "")


def compile_features(catalogue: Catalogue, as_of: dt.date) -> exp.Select:
    """The whole feature computation for ``as_of`` as ONE sqlglot SELECT in Lifeloop's DuckDB SQL."""
    groups = _source_groups(catalogue)
    ctes: list[tuple[str, exp.Expression]] = []
    base_cols: list[exp.Expression] = [_col(c, "c") for c in CUSTOMER_COLUMNS]
    for (source, offset), tags in groups.items():
        name = cte_name(source, offset)
        ctes.append((name, _source_cte(source, offset, tags, as_of)))
        for tag in tags:
            day = as_of - dt.timedelta(days=offset)
            empty = _empty_value(_avg_as_sum_over_count(expand(tag.tree.copy(), day)))
            found = _col(tag.name, name)
            if not isinstance(empty, exp.Null):
                # a customer with no rows at all still gets count 0 (the aggregate over no rows)
                empty = expand(_quote_columns(empty), day)
                found = exp.Case(ifs=[exp.If(this=exp.Is(this=_col("customer_id", name), expression=exp.null()),
                                             true=empty)], default=found)
            base_cols.append(exp.alias_(_typed(found, tag), tag.name, quoted=True))
    base = exp.select(*base_cols).from_(exp.to_table("customers", quoted=True).as_("c"))
    for source, offset in groups:
        name = cte_name(source, offset)
        base = base.join(exp.to_table(name, quoted=True), join_type="left",
                         on=exp.EQ(this=_col("customer_id", name), expression=_col("customer_id", "c")))
    ctes.append(("base", base))
    previous = "base"
    for i, layer in enumerate(catalogue.layers, start=1):
        cols: list[exp.Expression] = [exp.Star()]
        for name in layer:
            tag = catalogue.by_name[name]
            value = expand(_quote_columns(tag.tree.copy()), as_of)
            cols.append(exp.alias_(_typed(value, tag), name, quoted=True))
        ctes.append((f"layer_{i}", exp.select(*cols).from_(exp.to_table(previous, quoted=True))))
        previous = f"layer_{i}"
    final = exp.select(_col("customer_id"), *[_col(n) for n in catalogue.names]).from_(
        exp.to_table(previous, quoted=True))
    for name, query in ctes:
        final = final.with_(_q(name), as_=query)
    return final


_ARROW = {"INTEGER": "int32", "BIGINT": "int64", "DOUBLE": "float64", "BOOLEAN": "bool_", "DATE": "date32",
          "VARCHAR": "string"}


def feature_schema(catalogue: Catalogue) -> pa.Schema:
    """The Arrow schema of the published feature table (identical whichever engine computed it)."""
    import pyarrow as pa

    fields = [pa.field("customer_id", pa.string(), nullable=False)]
    for tag in catalogue.tags:
        if tag.type.startswith("DECIMAL"):
            p, s = tag.type[len("DECIMAL("):-1].split(",")
            typ = pa.decimal128(int(p), int(s))
        else:
            typ = getattr(pa, _ARROW[tag.type])()
        fields.append(pa.field(tag.name, typ, metadata={"label_zh": tag.label_zh, "label_en": tag.label_en}))
    return pa.schema(fields)


def compute(inputs: Inputs) -> Output:
    """Every tag for every customer as of D, from the bank's tables registered on the step's engine."""
    if "customers" not in inputs.bank_files:
        raise DataError(f"no customers on or before {inputs.as_of}: nothing to compute features for",
                        hint="ingest a batch of the bank's extracts first (lifeloop ingest SOURCE --as-of DATE)")
    catalogue = resolve_catalogue(inputs.config("tags"), inputs.doc("tags"))
    table = inputs.engine.to_arrow(compile_features(catalogue, inputs.as_of))
    return Output(tables=[Table(AREA, table, ("customer_id",), feature_schema(catalogue))],
                  manifest={"tags": len(catalogue.tags)},
                  summary={"tags": len(catalogue.tags), "engine": inputs.engine.name})


STEP = Step(AREA, compute, configs={"tags": TagsConfig}, writes=AREA, bank=True,
            doc="features (标签): config/tags.yaml -> one SQL tree over the bank's tables as of D")
