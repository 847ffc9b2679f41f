"""Lifecycle stages (客户生命周期): ordered stage rules -> one CASE tree, with stage history.

For an as-of date D every customer in the feature snapshot gets exactly one stage: the stage of the
first rule in ``config/lifecycle.yaml`` whose condition is true (the last rule is a catch-all).
Rules see the feature columns, the named thresholds, and two history columns from the latest
lifecycle snapshot before D:

* ``previous_stage`` — the stage in that snapshot (NULL if the customer was not in it, or none exists);
* ``days_in_stage`` — how long the customer had been in ``previous_stage`` by D: the previous
  snapshot's ``days_in_stage`` plus the days between the two snapshots (NULL without history).

The output keeps, per customer: ``stage``, ``rule`` (the rule that decided), ``previous_stage`` and
``days_in_stage``: carried forward (previous value + days elapsed) when the stage is unchanged, else
0 — a stage is dated from the first snapshot at which it was observed.
"""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from lifeloop.config.lifecycle import HISTORY_COLUMNS, LifecycleConfig
from lifeloop.contract import Inputs, Output, Read, Step, Table
from lifeloop.engine.adapters.base import date_literal
from lifeloop.engine.compile import compile_rule, contradictions, feature_columns, is_catch_all, rule_problem
from lifeloop.errors import ConfigError, DataError, Problem

if TYPE_CHECKING:
    import pyarrow as pa

    from lifeloop.config.loader import LocatedYaml

AREA = "lifecycle"
CONFIG = "config/lifecycle.yaml"


# ---------------------------------------------------------------------------- compiling the stages
@dataclass
class CompiledStages:
    """The stage decision as trees, plus warnings found while compiling."""

    rule_case: exp.Expression           # CASE WHEN rule1 THEN 'rule1' ... END
    stage_of_rule: dict[str, str]       # rule -> stage
    warnings: list[Problem] = field(default_factory=list)


def compile_stages(config: LifecycleConfig, columns: Mapping[str, str], as_of: dt.date,
                   doc: LocatedYaml | None = None) -> CompiledStages:
    """Check the rules (stages known, catch-all last, rules that can fire) and build the CASE tree."""
    return _stages(config, columns, as_of, doc, errors=None)


def check_stages(config: LifecycleConfig, columns: Mapping[str, str] | None, as_of: dt.date,
                 doc: LocatedYaml | None = None) -> tuple[list[Problem], list[Problem]]:
    """Every problem of the stages and rules at once, as (errors, warnings), never raising.

    Rules are compiled only when the feature ``columns`` are known (a broken tags.yaml leaves them unknown).
    """
    errors: list[Problem] = []
    compiled = _stages(config, columns, as_of, doc, errors=errors)
    return errors, compiled.warnings


def _stages(config: LifecycleConfig, columns: Mapping[str, str] | None, as_of: dt.date, doc: LocatedYaml | None,
            errors: list[Problem] | None) -> CompiledStages:
    """Compile the stages; raise at the first failing check, or, given ``errors``, collect every problem there."""
    file = doc.file if doc else CONFIG

    def line(*path: Any) -> int | None:
        return doc.line_of(path) if doc else None

    def where(i: int, rule: str) -> str:
        ln = line("rules", i, "when")
        return f"{file}:{ln} rule {rule}" if ln else f"{file} rule {rule}"

    problems: list[Problem] = []
    seen_stages: set[str] = set()
    for i, s in enumerate(config.stages):
        if s.name in seen_stages:
            problems.append(Problem(f"stage {s.name!r} is defined twice", file=file, line=line("stages", i),
                                    field=f"stages[{i}].name"))
        seen_stages.add(s.name)
    seen_rules: set[str] = set()
    for i, r in enumerate(config.rules):
        if r.rule in seen_rules:
            problems.append(Problem(f"rule {r.rule!r} is defined twice", file=file, line=line("rules", i), rule=r.rule,
                                    field=f"rules[{i}].rule"))
        seen_rules.add(r.rule)
        if r.stage not in seen_stages:
            close = difflib.get_close_matches(r.stage, list(seen_stages), n=1)
            problems.append(Problem(f"unknown stage {r.stage!r}" + (f"; did you mean {close[0]!r}?" if close else ""),
                                    file=file, line=line("rules", i, "stage"), rule=r.rule, field=f"rules[{i}].stage",
                                    hint="name a stage of stages: " + ", ".join(sorted(seen_stages))))
    if not is_catch_all(config.rules[-1].when):
        last = config.rules[-1]
        problems.append(Problem('the last rule must be a catch-all (when: "true") so that every customer gets a stage',
                                file=file, line=line("rules", len(config.rules) - 1), rule=last.rule,
                                field=f"rules[{len(config.rules) - 1}].when",
                                hint='add a last rule with when: "true"'))
    if problems and errors is None:
        raise ConfigError(f"{file}: {len(problems)} problem(s) in the lifecycle stages; first: {problems[0]}",
                          problems=problems, hint="fix the stages and rules named above (see docs/insight.md)")
    if errors is not None:
        errors.extend(problems)

    names = {**(columns or {}), **HISTORY_COLUMNS}
    warnings: list[Problem] = []
    ifs: list[exp.If] = []
    catch_all: str | None = None
    default: exp.Expression = exp.null()  # a catch-all is required above; this is only seen when collecting
    for i, r in enumerate(config.rules):
        if catch_all is not None:
            warnings.append(Problem(f"can never fire: the catch-all rule {catch_all!r} above it matches everyone",
                                    file=file, line=line("rules", i), rule=r.rule, field=f"rules[{i}]",
                                    hint="move the rule above the catch-all, or remove it"))
            continue
        if is_catch_all(r.when):
            catch_all = r.rule
            default = exp.Literal.string(r.rule)
            continue
        if columns is None:
            continue
        try:
            tree = compile_rule(r.when, columns=names, thresholds=config.thresholds, as_of=as_of,
                                where=where(i, r.rule))
            _check_stage_literals(tree, seen_stages, where(i, r.rule))
        except ConfigError as exc:
            if errors is None:
                raise
            errors.append(rule_problem(exc, where(i, r.rule), file=file, line=line("rules", i, "when"), rule=r.rule,
                                       field=f"rules[{i}].when"))
            continue
        for col in contradictions(tree):
            warnings.append(Problem(f"can never fire: the bounds on {col!r} contradict each other",
                                    file=file, line=line("rules", i, "when"), rule=r.rule, field=f"rules[{i}].when",
                                    hint=f"check the comparisons of {col} and the thresholds they use"))
        ifs.append(exp.If(this=tree, true=exp.Literal.string(r.rule)))
    used = {r.stage for r in config.rules}
    for i, s in enumerate(config.stages):
        if s.name not in used:
            warnings.append(Problem(f"stage {s.name!r} has no rule, so no customer can be in it",
                                    file=file, line=line("stages", i), field=f"stages[{i}]",
                                    hint="add a rule leading to it, or remove the stage"))
    case = exp.Case(ifs=ifs, default=default) if ifs else default
    return CompiledStages(case, {r.rule: r.stage for r in config.rules}, warnings)


def aliased(name: str, alias: str) -> exp.Table:
    """``name AS alias`` as a table tree."""
    return exp.to_table(name, alias=exp.TableAlias(this=exp.to_identifier(alias)))


def _check_stage_literals(tree: exp.Expression, stages: set[str], where: str) -> None:
    """``previous_stage = 'dormnt'`` would silently never match: stage names in comparisons must exist."""
    for node in tree.find_all(exp.EQ, exp.NEQ, exp.In):
        sides = [node.this] + (list(node.expressions) if isinstance(node, exp.In) else [node.expression])
        if not any(isinstance(x, exp.Column) and x.name == "previous_stage" for x in sides):
            continue
        for lit in sides:
            if isinstance(lit, exp.Literal) and lit.is_string and lit.this not in stages:
                close = difflib.get_close_matches(lit.this, sorted(stages), n=1)
                raise ConfigError(f"{where}: previous_stage is compared with {lit.this!r}, which is not a stage"
                                  + (f"; did you mean {close[0]!r}?" if close else ""),
                                  hint=f"stages are: {', '.join(sorted(stages))}")


def lifecycle_query(compiled: CompiledStages, features: str, feature_names: Sequence[str], as_of: dt.date,
                    previous: str | None, previous_as_of: dt.date | None) -> exp.Select:
    """The query giving one row per customer: stage, deciding rule, previous stage, days in stage."""
    col = exp.column
    # 1. features + history (the previous snapshot joined by customer)
    if previous is not None and previous_as_of is not None:
        gap = (as_of - previous_as_of).days
        prior_days = exp.cast(exp.Add(this=col("days_in_stage", "p"), expression=exp.Literal.number(gap)), "INTEGER")
        same_customer = exp.EQ(this=col("customer_id", "f"), expression=col("customer_id", "p"))
        history = (exp.select(*[col(n, table="f", quoted=True) for n in feature_names],
                              exp.alias_(col("stage", "p"), "previous_stage"),
                              exp.alias_(prior_days, "days_in_stage"))
                   .from_(aliased(features, "f"))
                   .join(aliased(previous, "p"), on=same_customer, join_type="left"))
    else:
        history = exp.select(*[col(n, quoted=True) for n in feature_names],
                             exp.alias_(exp.cast(exp.null(), "VARCHAR"), "previous_stage"),
                             exp.alias_(exp.cast(exp.null(), "INTEGER"), "days_in_stage")).from_(features)
    # 2. the deciding rule (first match wins)
    decided = exp.select(col("customer_id"), col("previous_stage"), exp.alias_(col("days_in_stage"), "prior_days"),
                         exp.alias_(compiled.rule_case.copy(), "rule")).from_(history.subquery("h"))
    # 3. stage from rule; days in stage carried forward only when the stage is unchanged
    stage_case = exp.Case(ifs=[exp.If(this=exp.EQ(this=col("rule"), expression=exp.Literal.string(r)),
                                      true=exp.Literal.string(s)) for r, s in compiled.stage_of_rule.items()])
    staged = exp.select(col("customer_id"), col("rule"), col("previous_stage"), col("prior_days"),
                        exp.alias_(stage_case, "stage")).from_(decided.subquery("d"))
    same = exp.and_(exp.EQ(this=col("stage"), expression=col("previous_stage")),
                    exp.Not(this=exp.Is(this=col("prior_days"), expression=exp.null())))
    days = exp.Case(ifs=[exp.If(this=same, true=col("prior_days"))], default=exp.Literal.number(0))
    return exp.select(
        col("customer_id"), col("stage"), col("rule"), col("previous_stage"),
        exp.alias_(exp.cast(days, "INTEGER"), "days_in_stage"),
        exp.alias_(date_literal(as_of), "as_of"),
    ).from_(staged.subquery("s"))


def output_schema() -> pa.Schema:
    """Columns of ``lake/lifecycle/as_of=D/lifecycle.parquet``."""
    import pyarrow as pa

    return pa.schema([("customer_id", pa.string()), ("stage", pa.string()), ("rule", pa.string()),
                      ("previous_stage", pa.string()), ("days_in_stage", pa.int32()), ("as_of", pa.date32())])


# ---------------------------------------------------------------------------- running it
def assign(engine: Any, config: LifecycleConfig, features_file: Path, as_of: dt.date,
           previous_file: Path | None = None, previous_as_of: dt.date | None = None,
           doc: LocatedYaml | None = None) -> tuple[pa.Table, list[Problem]]:
    """Stages for one date on any engine: the Arrow result (sorted by customer) and warnings."""
    import pyarrow.parquet as pq

    schema = pq.read_schema(features_file)
    columns = feature_columns(schema)
    if "customer_id" not in columns:
        raise DataError(f"{features_file}: the feature snapshot has no customer_id column",
                        hint="re-run the features step")
    taken = sorted(set(columns) & set(HISTORY_COLUMNS))
    if taken:
        raise DataError(f"{features_file}: the feature {taken[0]!r} has the name of a stage-history column",
                        hint="rename the tag in config/tags.yaml; lifecycle rules get this column from the history")
    compiled = compile_stages(config, columns, as_of, doc)
    engine.register("_lifecycle_features", [features_file])
    previous = None
    if previous_file is not None:
        engine.register("_lifecycle_previous", [previous_file])
        previous = "_lifecycle_previous"
    query = lifecycle_query(compiled, "_lifecycle_features", list(columns), as_of, previous, previous_as_of)
    table = engine.to_arrow(query)
    table = table.select(output_schema().names).cast(output_schema()).sort_by([("customer_id", "ascending")])
    unmatched = table["stage"].null_count
    if unmatched:
        # cannot happen with a catch-all, but a wrong stage map must never publish silently
        raise DataError(f"{unmatched:,} customer(s) matched no lifecycle stage as of {as_of}",
                        problems=[Problem("no stage", file=doc.file if doc else CONFIG)],
                        hint="make sure the last rule is a catch-all (when: \"true\")")
    return table, compiled.warnings


def stage_counts(table: pa.Table) -> dict[str, int]:
    """Customers per stage in a lifecycle table."""
    return {r["values"]: r["counts"] for r in table["stage"].value_counts().to_pylist()}


def compute(inputs: Inputs) -> Output:
    """Stages as of D from the day's features and the previous lifecycle snapshot (its history)."""
    previous = inputs.snapshots.get(AREA)
    table, warnings = assign(inputs.engine, inputs.config("lifecycle"), inputs.snapshot("features").file,
                             inputs.as_of, previous.file if previous else None, previous.as_of if previous else None,
                             inputs.doc("lifecycle"))
    counts = stage_counts(table)
    prev = previous.as_of if previous else None
    return Output(tables=[Table(AREA, table, ("customer_id",), output_schema())],
                  manifest={"previous_as_of": prev, "stages": dict(sorted(counts.items()))},
                  summary={"stages": counts, "previous_as_of": prev}, warnings=[str(w) for w in warnings])


STEP = Step(AREA, compute, reads=(Read("features"), Read(AREA, "before")), configs={"lifecycle": LifecycleConfig},
            writes=AREA, doc="lifecycle (生命周期): ordered stage rules over the day's features and yesterday's stages")


def month_ends(start: dt.date, end: dt.date) -> list[dt.date]:
    """Every month-end from ``start`` to ``end`` inclusive (a common backfill calendar)."""
    out = []
    y, m = start.year, start.month
    while True:
        nxt = dt.date(y + (m == 12), m % 12 + 1, 1)
        last = nxt - dt.timedelta(days=1)
        if last > end:
            return out
        if last >= start:
            out.append(last)
        y, m = nxt.year, nxt.month
