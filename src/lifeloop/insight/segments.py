"""Segments (客户分层分群): value tiers, featured groups (特色客群) and micro-segments (微细分).

One row per customer in ``lake/segments/as_of=D/segments.parquet``:

* ``tier`` — exactly one value tier: the tier whose ``[min, max)`` holds the tier measure (AUM;
  NULL counts as 0). Tiers must partition ``[0, inf)``, checked before anything runs;
* ``aum`` — the tier measure as DECIMAL(18,2), so summaries can add money up per segment;
* ``seg_<group>`` — one boolean per featured group (NULL rule results count as false);
* ``micro_<name>`` — one boolean per micro-segment, and ``micro_segment``: the first that matches.
"""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from lifeloop.config.segments import SegmentsConfig
from lifeloop.config.shelf import ModelsConfig
from lifeloop.contract import Inputs, Output, Read, Step, Table
from lifeloop.engine.compile import (
    compile_rule,
    compile_value,
    contradictions,
    feature_columns,
    rule_problem,
    score_column,
    scores_query,
)
from lifeloop.errors import ConfigError, DataError, Problem

if TYPE_CHECKING:
    import pyarrow as pa

    from lifeloop.config.loader import LocatedYaml

AREA = "segments"
CONFIG = "config/segments.yaml"


def check_tiers(config: SegmentsConfig, doc: LocatedYaml | None = None) -> None:
    """Tier ranges must partition [0, inf): start at 0, each max is the next min, the last is open."""
    file = doc.file if doc else CONFIG

    def line(i: int) -> int | None:
        return doc.line_of(("tiers", i)) if doc else None

    problems: list[Problem] = []
    tiers = sorted(enumerate(config.tiers), key=lambda t: t[1].min)
    names = [t.name for t in config.tiers]
    for dup in sorted({n for n in names if names.count(n) > 1}):
        problems.append(Problem(f"tier {dup!r} is defined twice", file=file, line=line(names.index(dup)),
                                field=f"tiers[{names.index(dup)}].name"))
    for i, t in enumerate(config.tiers):
        if t.max is not None and t.max <= t.min:
            problems.append(Problem(f"tier {t.name!r}: max {t.max:g} is not above min {t.min:g}", file=file,
                                    line=line(i), field=f"tiers[{i}]"))
    first_i, first = tiers[0]
    if first.min != 0:
        problems.append(Problem(f"tier {first.name!r} starts at {first.min:g}: customers below it have no tier "
                                "(the lowest tier must start at 0)", file=file, line=line(first_i),
                                field=f"tiers[{first_i}].min"))
    for (ai, a), (bi, b) in zip(tiers, tiers[1:], strict=False):
        if a.max is None:
            problems.append(Problem(f"tiers {a.name!r} and {b.name!r} overlap: {a.name!r} has no max",
                                    file=file, line=line(ai), field=f"tiers[{ai}].max"))
        elif a.max > b.min:
            problems.append(Problem(f"tiers {a.name!r} and {b.name!r} overlap between {b.min:g} and {a.max:g}",
                                    file=file, line=line(bi), field=f"tiers[{bi}].min"))
        elif a.max < b.min:
            problems.append(Problem(f"gap between tiers {a.name!r} and {b.name!r}: no tier covers "
                                    f"{a.max:g} to {b.min:g}", file=file, line=line(bi),
                                    field=f"tiers[{bi}].min"))
    last_i, last = tiers[-1]
    if last.max is not None:
        problems.append(Problem(f"tier {last.name!r} ends at {last.max:g}: customers above it have no tier "
                                "(leave max empty on the highest tier)", file=file, line=line(last_i),
                                field=f"tiers[{last_i}].max"))
    if problems:
        raise ConfigError(f"{file}: the value tiers do not partition AUM from 0 upwards; first: {problems[0]}",
                          problems=problems, hint="make each tier's max equal the next tier's min, start at 0, "
                                                  "and leave max empty on the top tier")


def tier_case(config: SegmentsConfig, measure: exp.Expression) -> exp.Expression:
    """CASE giving the tier name for a measure value (tiers already checked to partition [0, inf))."""
    tiers = sorted(config.tiers, key=lambda t: t.min)
    ifs = []
    for t in tiers[:-1]:
        ifs.append(exp.If(this=exp.LT(this=measure.copy(), expression=_num(t.max)), true=exp.Literal.string(t.name)))
    # negative values (an overdrawn total) fall into the lowest tier rather than none
    return exp.Case(ifs=ifs, default=exp.Literal.string(tiers[-1].name)) if ifs else exp.Literal.string(tiers[0].name)


def _num(v: float | None) -> exp.Literal:
    assert v is not None
    return exp.Literal.number(int(v) if float(v).is_integer() else v)


def segments_query(config: SegmentsConfig, columns: Mapping[str, str], features: str, as_of: dt.date,
                   doc: LocatedYaml | None = None, models: Mapping[str, str] | None = None,
                   scores: str | None = None) -> tuple[exp.Select, list[Problem]]:
    """The segments query over a feature relation, and warnings (rules that can never fire).

    With ``models`` (declared model name -> kind) the tier measure and the rules may read a model's score of
    the day (``tier_measure: score('clv')``); ``meta["models"]`` of the query lists the models read, whose
    long scores relation ``scores`` (model, customer_id, score) is then joined by customer.
    """
    query, warnings = _segments(config, columns, features, as_of, doc, errors=None, models=models, scores=scores)
    assert query is not None
    return query, warnings


def check_segments(config: SegmentsConfig, columns: Mapping[str, str] | None, as_of: dt.date,
                   doc: LocatedYaml | None = None, models: Mapping[str, str] | None = None
                   ) -> tuple[list[Problem], list[Problem]]:
    """Every problem of tiers, groups and micro-segments at once, as (errors, warnings), never raising.

    Rules are compiled only when the feature ``columns`` are known (a broken tags.yaml leaves them unknown).
    """
    errors: list[Problem] = []
    _, warnings = _segments(config, columns, "features", as_of, doc, errors=errors, models=models, scores=None)
    return errors, warnings


def _is_column_name(text: str) -> bool:
    return text.replace("_", "a").isalnum() and not text[0].isdigit()


def _segments(config: SegmentsConfig, columns: Mapping[str, str] | None, features: str, as_of: dt.date,
              doc: LocatedYaml | None, errors: list[Problem] | None, models: Mapping[str, str] | None,
              scores: str | None) -> tuple[exp.Select | None, list[Problem]]:
    """Build the query, raising at the first failing check; given ``errors``, collect every problem there instead."""
    file = doc.file if doc else CONFIG

    def line(*path: object) -> int | None:
        return doc.line_of(path) if doc else None

    def fail(exc: ConfigError) -> None:
        if errors is None:
            raise exc
        errors.extend(replace(p, hint=p.hint or exc.hint) for p in exc.problems or [Problem(exc.message, file=file)])

    try:
        check_tiers(config, doc)
    except ConfigError as exc:
        fail(exc)
    measure_tree: exp.Expression | None = None
    read: set[str] = set()   # models whose scores the measure or the rules read
    if columns is not None and _is_column_name(config.tier_measure) and config.tier_measure not in columns:
        close = difflib.get_close_matches(config.tier_measure, list(columns), n=1)
        message = f"tier_measure {config.tier_measure!r} is not a feature column" + (
            f"; did you mean {close[0]!r}?" if close else "")
        hint = "name a feature of config/tags.yaml, e.g. aum, or a model's score, e.g. score('clv')"
        fail(ConfigError(f"{file}: {message}", hint=hint, problems=[
            Problem(message, file=file, line=line("tier_measure"), field="tier_measure", hint=hint)]))
    elif columns is not None:
        where = f"{file}:{line('tier_measure')} tier_measure" if line("tier_measure") else f"{file} tier_measure"
        try:
            measure_tree = compile_value(config.tier_measure, columns=columns, thresholds={}, as_of=as_of,
                                         where=where, models=models if models is not None else {})
            read |= measure_tree.meta["models"]
        except ConfigError as exc:
            if errors is None:
                raise
            errors.append(rule_problem(exc, where, file=file, line=line("tier_measure"), field="tier_measure"))
    # every tier's lower bound is a threshold too (wealth_min, private_min), so rules follow the tiers
    thresholds = {f"{t.name}_min": t.min for t in config.tiers}
    for name in sorted(set(thresholds) & set(config.thresholds)):
        hint = f"remove it from thresholds; it is the tier's min ({thresholds[name]:g})"
        fail(ConfigError(f"{file}: threshold {name!r} is already defined by the tiers", hint=hint, problems=[
            Problem(f"threshold {name!r} is already defined by the tiers", file=file,
                    line=line("thresholds", name), field=f"thresholds.{name}", hint=hint)]))
    thresholds.update(config.thresholds)
    warnings: list[Problem] = []
    seen: set[str] = set()
    building = errors is None  # collecting checks only; the tiers may not even partition
    cols: list[exp.Expression] = []
    if building:
        assert measure_tree is not None
        measure = exp.func("coalesce", exp.Paren(this=measure_tree), exp.Literal.number(0))
        cols = [exp.column("customer_id"), exp.alias_(tier_case(config, measure), "tier"),
                exp.alias_(exp.cast(measure.copy(), "DECIMAL(18,2)"), "aum")]
    micro_ifs: list[exp.If] = []
    for key, prefix in (("groups", "seg_"), ("micro_segments", "micro_")):
        for i, rule in enumerate(getattr(config, key)):
            ln = line(key, i, "when")
            out = prefix + rule.name
            if out in seen:
                hint = "give each group and micro-segment its own name"
                fail(ConfigError(f"{file}:{ln} {key} {rule.name}: the name is used twice", hint=hint, problems=[
                    Problem("duplicate name", file=file, line=line(key, i, "name"), rule=rule.name,
                            field=f"{key}[{i}].name", hint=hint)]))
            seen.add(out)
            if columns is None:
                continue
            where = f"{file}:{ln} {key[:-1].replace('_', '-')} {rule.name}" if ln else f"{file} {rule.name}"
            try:
                tree = compile_rule(rule.when, columns=columns, thresholds=thresholds, as_of=as_of, where=where,
                                    models=models if models is not None else {})
                read |= tree.meta["models"]
            except ConfigError as exc:
                if errors is None:
                    raise
                errors.append(rule_problem(exc, where, file=file, line=ln, rule=rule.name, field=f"{key}[{i}].when"))
                continue
            for col in contradictions(tree):
                warnings.append(Problem(f"can never match: the bounds on {col!r} contradict each other",
                                        file=file, line=ln, rule=rule.name, field=f"{key}[{i}].when",
                                        hint=f"check the comparisons of {col} and the thresholds they use"))
            if not building:
                continue
            flag = exp.func("coalesce", exp.Paren(this=tree), exp.false())
            cols.append(exp.alias_(flag, out))
            if key == "micro_segments":
                micro_ifs.append(exp.If(this=flag.copy(), true=exp.Literal.string(rule.name)))
    if not building:
        return None, warnings
    primary = exp.Case(ifs=micro_ifs, default=exp.cast(exp.null(), "VARCHAR")) if micro_ifs else \
        exp.cast(exp.null(), "VARCHAR")
    cols.append(exp.alias_(primary, "micro_segment"))
    query = exp.select(*cols).from_(features)
    if read:
        if scores is None:
            raise DataError(f"{file}: the tiers or rules read the scores of {', '.join(sorted(read))}, and this day "
                            "has no scores", hint="fit and promote the model (lifeloop models fit/promote) and run "
                            "the scores step first, or measure tiers by a feature (tier_measure: aum)")
        base = exp.select(exp.Star(), *[exp.column(score_column(m), table="m", quoted=True) for m in sorted(read)]
                          ).from_(exp.to_table(features).as_("f")).join(
            scores_query(scores, sorted(read)).subquery("m"),
            on=exp.EQ(this=exp.column("customer_id", table="f"), expression=exp.column("customer_id", table="m")),
            join_type="left")
        # f.* and m's score columns only: customer_id comes once, from the features
        base.expressions[0] = exp.Column(this=exp.Star(), table=exp.to_identifier("f"))
        query = exp.select(*cols).from_(base.subquery("_seg_base"))
    query.meta["models"] = frozenset(read)
    return query, warnings


def output_schema(config: SegmentsConfig) -> pa.Schema:
    """Columns of ``lake/segments/as_of=D/segments.parquet``."""
    import pyarrow as pa

    fields = [("customer_id", pa.string()), ("tier", pa.string()), ("aum", pa.decimal128(18, 2))]
    fields += [(f"seg_{g.name}", pa.bool_()) for g in config.groups]
    fields += [(f"micro_{m.name}", pa.bool_()) for m in config.micro_segments]
    fields += [("micro_segment", pa.string())]
    return pa.schema(fields)


def assign(engine: Any, config: SegmentsConfig, features_file: Path, as_of: dt.date,
           doc: LocatedYaml | None = None, models: Mapping[str, str] | None = None,
           scores_file: Path | None = None) -> tuple[pa.Table, list[Problem]]:
    """Segments for one date on any engine: the Arrow result (sorted by customer) and warnings.

    ``models`` (declared name -> kind) and the day's ``scores_file`` let tiers and rules read scores."""
    import pyarrow.parquet as pq

    columns = feature_columns(pq.read_schema(features_file))
    if "customer_id" not in columns:
        raise DataError(f"{features_file}: the feature snapshot has no customer_id column",
                        hint="re-run the features step")
    query, warnings = segments_query(config, columns, "_segments_features", as_of, doc, models=models,
                                     scores="_segments_scores" if scores_file is not None else None)
    engine.register("_segments_features", [features_file])
    if query.meta["models"]:
        assert scores_file is not None
        scored = set(pq.read_table(scores_file, columns=["model"])["model"].unique().to_pylist())
        missing = sorted(query.meta["models"] - scored)
        if missing:
            raise DataError(f"config/segments.yaml: the tiers or rules read score({missing[0]!r}), and the scores "
                            f"of {as_of} have none ({scores_file})",
                            hint=f"promote a version of {missing[0]} (lifeloop models promote) and run the scores "
                                 "step again, or measure tiers by a feature (tier_measure: aum)")
        engine.register("_segments_scores", [scores_file])
    schema = output_schema(config)
    table = engine.to_arrow(query).select(schema.names).cast(schema).sort_by([("customer_id", "ascending")])
    return table, warnings


def sizes(table: pa.Table, config: SegmentsConfig) -> dict[str, dict[str, int]]:
    """Customers per tier, per group and per micro-segment (for manifests and summaries)."""
    import pyarrow.compute as pc

    out: dict[str, dict[str, int]] = {"tiers": {}, "groups": {}, "micro_segments": {}}
    counts = {r["values"]: r["counts"] for r in table["tier"].value_counts().to_pylist()}
    out["tiers"] = {t.name: counts.get(t.name, 0) for t in config.tiers}
    for g in config.groups:
        out["groups"][g.name] = int(pc.sum(pc.cast(table[f"seg_{g.name}"], "int64")).as_py() or 0)
    for m in config.micro_segments:
        out["micro_segments"][m.name] = int(pc.sum(pc.cast(table[f"micro_{m.name}"], "int64")).as_py() or 0)
    return out


def compute(inputs: Inputs) -> Output:
    """Tiers, groups and micro-segments as of D from the day's features."""
    config = inputs.config("segments")
    shelf = inputs.configs["models"][0] if "models" in inputs.configs else ModelsConfig()
    scores = inputs.snapshots.get("scores")
    table, warnings = assign(inputs.engine, config, inputs.snapshot("features").file, inputs.as_of,
                             inputs.doc("segments"), models={m.name: m.kind for m in shelf.models},
                             scores_file=scores.file if scores is not None else None)
    found = sizes(table, config)
    return Output(tables=[Table(AREA, table, ("customer_id",), output_schema(config))], manifest={"sizes": found},
                  summary=dict(found), warnings=[str(w) for w in warnings])


STEP = Step(AREA, compute, reads=(Read("features"), Read("scores", optional=True)),
            configs={"segments": SegmentsConfig, "models": ModelsConfig}, writes=AREA,
            doc="segments (客群): value tiers, featured groups and micro-segments over the day's features")
