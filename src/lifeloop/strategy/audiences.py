"""Audiences (定名单): who is eligible for which strategy and wave as of D, and why.

First waves: customers for whom the strategy's audience rule is true today (over features, the
lifecycle stage, segments and the day's events), who have not entered the strategy within its
``reentry_days``. Later waves: customers whose earlier wave (the one named in ``depends_on``) went
out ``day - depends_on.day`` days ago with the required outcome; the control group follows the
journey as "no response", so treated and control stay comparable wave by wave. A treated customer of a
cell (A/B test inside a strategy) is a candidate only for the waves of their cell.

Writes ``lake/audiences/as_of=D/audiences.parquet``: customer_id, strategy, wave, rm_id, reason —
the reason names the values that made the rule true (``stage=honeymoon, tenure_days=1``) — and cell:
for a strategy with selection cells (``select:``), the first cell whose rule is true (before the holdout,
so control customers carry it too); null otherwise and on later waves.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from lifeloop.config.contact_policy import ContactPolicy
from lifeloop.config.lifecycle import HISTORY_COLUMNS, LifecycleConfig
from lifeloop.config.segments import SegmentsConfig
from lifeloop.config.shelf import ModelsConfig
from lifeloop.config.strategies import StrategiesConfig
from lifeloop.contract import Inputs, Output, Read, Step, Table
from lifeloop.engine.compile import feature_columns, score_column, scores_query
from lifeloop.strategy.checks import check_references, check_structure, compile_audiences
from lifeloop.strategy.events import EVENT_COLUMNS, events_query
from lifeloop.strategy.history import REFUSED, RESPONDED
from lifeloop.strategy.holdout import in_cell_journey
from lifeloop.strategy.inputs import known_names

if TYPE_CHECKING:
    import pyarrow as pa


AREA = "audiences"
CONFIG_COPIES = ("strategies", "contact_policy")  # stored next to the snapshot (see run_step)
LIFECYCLE_COLUMNS = {"stage": "VARCHAR", **HISTORY_COLUMNS}
# names the joined relation takes from one place only (segments' aum repeats the feature as DECIMAL)
EXCLUDED = {"customer_id", "rm_id", "branch_id", *LIFECYCLE_COLUMNS, *EVENT_COLUMNS}
SEGMENT_EXCLUDED = EXCLUDED | {"aum"}


def output_schema() -> pa.Schema:
    """Columns of ``lake/audiences/as_of=D/audiences.parquet``."""
    import pyarrow as pa

    return pa.schema([("customer_id", pa.string()), ("strategy", pa.string()), ("wave", pa.string()),
                      ("rm_id", pa.string()), ("reason", pa.string()), ("cell", pa.string()),
                      ("value", pa.float64())])


def cell_expression(cells: list[tuple[str, exp.Expression]]) -> exp.Expression:
    """The first selection cell whose select is true (``CASE WHEN sel_1 THEN 'model' WHEN ... END``)."""
    return exp.Case(ifs=[exp.If(this=exp.func("coalesce", exp.Paren(this=sel.copy()), exp.false()),
                                true=exp.Literal.string(cid)) for cid, sel in cells])


def audience_columns(features: Mapping[str, str], segments: Mapping[str, str]) -> dict[str, str]:
    """Every name an audience rule may use: features, stage history, segment flags, the day's events, and the
    customer's home branch (``branch_id``: a branch's variant of a strategy is restricted with it)."""
    feat = {k: v for k, v in features.items() if k not in EXCLUDED}
    seg = {k: v for k, v in segments.items() if k not in SEGMENT_EXCLUDED}
    return {"customer_id": "VARCHAR", **feat, **LIFECYCLE_COLUMNS, **seg, **EVENT_COLUMNS, "branch_id": "VARCHAR"}


def base_query(features: str, lifecycle: str, segments: str, events: str, feature_columns: list[str],
               segment_columns: list[str], scores: str | None = None, models: list[str] | None = None
               ) -> exp.Select:
    """Features joined with stage, segments, events (and the day's scores of ``models`` from the pivoted
    ``scores`` relation): one row per customer, the rules' input."""
    cols: list[exp.Expression] = [exp.column("customer_id", table="f")]
    cols += [exp.column(c, table="f", quoted=True) for c in feature_columns]
    cols += [exp.column(c, table="l", quoted=True) for c in LIFECYCLE_COLUMNS]
    cols += [exp.column(c, table="s", quoted=True) for c in segment_columns]
    cols += [exp.column("rm_id", table="e"), exp.column("branch_id", table="e")]
    cols += [exp.column(c, table="e", quoted=True) for c in EVENT_COLUMNS]
    joins = [(lifecycle, "l"), (segments, "s"), (events, "e")]
    if scores is not None and models:
        cols += [exp.column(score_column(m), table="m", quoted=True) for m in models]
        joins.append((scores, "m"))
    q = exp.select(*cols).from_(exp.to_table(features).as_("f"))
    for rel, alias in joins:
        q = q.join(exp.to_table(rel).as_(alias), on=exp.EQ(this=exp.column("customer_id", table="f"),
                                                            expression=exp.column("customer_id", table=alias)),
                   join_type="left")
    return q


def reason_expression(tree: exp.Expression, columns: Mapping[str, str]) -> exp.Expression:
    """``'col=' || value`` for each column the rule reads: why this customer is in the audience.

    DOUBLEs are shown as DECIMAL(38,4): engines print floating-point numbers differently, decimals alike.
    """
    names = sorted({c.name for c in tree.find_all(exp.Column)})
    if not names:
        return exp.Literal.string("everyone")
    parts = []
    for n in names:
        value: exp.Expression = exp.column(n, quoted=True)
        if columns.get(n, "").upper() in ("DOUBLE", "FLOAT", "REAL"):
            value = exp.cast(exp.func("round", value, exp.Literal.number(4)), "DECIMAL(38,4)")
        text = exp.func("coalesce", exp.cast(value, "VARCHAR"), exp.Literal.string("NULL"))
        parts.append(exp.DPipe(this=exp.Literal.string(f"{n}="), expression=text, safe=True))
    return exp.func("concat_ws", exp.Literal.string(", "), *parts)


def first_wave_query(config: StrategiesConfig, trees: Mapping[str, exp.Expression], base: str,
                     as_of: dt.date, columns: Mapping[str, str] | None = None) -> exp.Select | None:
    """One pass over the base: per active strategy a flag (``_f<i>``) and its reason (``_r<i>``) for matching rows.

    One scan, not one per strategy: the base joins features, stages, segments and the day's events,
    and engines do not reliably share that work between the branches of a UNION.
    """
    cols: list[exp.Expression] = [exp.column("customer_id"), exp.column("rm_id")]
    flags = []
    for i, s in enumerate(config.strategies):
        if not s.active_on(as_of):
            continue
        tree = trees[s.id]
        flag = exp.func("coalesce", exp.Paren(this=tree.copy()), exp.false())
        cols.append(exp.alias_(flag, f"_f{i}"))
        cols.append(exp.alias_(exp.Case(ifs=[exp.If(this=flag.copy(), true=reason_expression(tree, columns or {}))]),
                               f"_r{i}"))
        if tree.meta.get("cells"):   # selection cells: which cell the customer falls in (control ones too)
            cols.append(exp.alias_(cell_expression(tree.meta["cells"]), f"_c{i}"))
        if "top" in tree.meta:   # the value a ranking rule sorts by (top share by a model's score)
            cols.append(exp.alias_(exp.cast(tree.meta["top"][1].copy(), "DOUBLE"), f"_s{i}"))
        if "value_by" in tree.meta:   # the customer's value of a success (expected.value_by), for arbitration
            cols.append(exp.alias_(exp.cast(tree.meta["value_by"].copy(), "DOUBLE"), f"_v{i}"))
        flags.append(flag.copy())
    if not flags:
        return None
    where = flags[0]
    for f in flags[1:]:
        where = exp.or_(where, f)
    return exp.select(*cols).from_(base).where(where)


def top_share(rows: pa.Table, value: str, share: float) -> pa.Table:
    """Pure: the top ``share`` of rows by ``value`` (highest first; ties by customer id; rows without a value
    are not ranked), rounded up so that a small audience keeps at least one."""
    import math

    import pyarrow.compute as pc

    ranked = rows.filter(pc.invert(pc.is_null(rows[value]))).sort_by([(value, "descending"),
                                                                       ("customer_id", "ascending")])
    return ranked.slice(0, math.ceil(share * ranked.num_rows)).sort_by("customer_id")


def first_waves(wide: pa.Table, config: StrategiesConfig, as_of: dt.date) -> pa.Table:
    """Unpivot the one-pass result: one row per (customer, strategy) whose flag is true (and, for a
    strategy with a ranking rule, in its top share)."""
    import pyarrow as pa

    schema = output_schema()
    parts = []
    for i, s in enumerate(config.strategies):
        if not s.active_on(as_of):
            continue
        rows = wide.filter(wide[f"_f{i}"])
        if f"_s{i}" in wide.column_names and s.top is not None:
            rows = top_share(rows, f"_s{i}", s.top.share)
        n = rows.num_rows
        parts.append(pa.table({"customer_id": rows["customer_id"], "strategy": pa.array([s.id] * n, pa.string()),
                               "wave": pa.array([s.waves[0].id] * n, pa.string()), "rm_id": rows["rm_id"],
                               "reason": rows[f"_r{i}"],
                               "cell": rows[f"_c{i}"] if f"_c{i}" in rows.column_names else pa.nulls(n, pa.string()),
                               "value": rows[f"_v{i}"] if f"_v{i}" in rows.column_names else pa.nulls(n, pa.float64())},
                              schema=schema))
    return pa.concat_tables(parts) if parts else schema.empty_table()


def drop_reentries(first: pa.Table, contacts: pa.Table, config: StrategiesConfig, as_of: dt.date) -> pa.Table:
    """Leave out customers who entered the strategy (treated or control) within its reentry_days."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if first.num_rows == 0 or contacts.num_rows == 0:
        return first
    keep = []
    for s in config.strategies:
        part = first.filter(pc.equal(first["strategy"], s.id))
        if part.num_rows == 0:
            continue
        since = as_of - dt.timedelta(days=s.reentry_days)
        seen = contacts.filter(pc.and_(pc.equal(contacts["strategy"], s.id),
                                       pc.greater_equal(contacts["contact_date"], since)))
        if seen.num_rows:
            part = part.filter(pc.invert(pc.is_in(part["customer_id"], seen["customer_id"].unique())))
        keep.append(part)
    return pa.concat_tables(keep) if keep else first.slice(0, 0)


def follow_ups(config: StrategiesConfig, contacts: pa.Table, as_of: dt.date) -> pa.Table:
    """Later waves due today: customer_id, strategy, wave, reason (rm_id is added by the caller)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    rows: dict[str, list[Any]] = {"customer_id": [], "strategy": [], "wave": [], "reason": []}
    for s in config.strategies:
        if not s.active_on(as_of):
            continue
        for w in s.waves[1:]:
            dep = w.depends_on
            assert dep is not None  # checked by check_structure
            sent = as_of - dt.timedelta(days=w.day - s.wave(dep.wave).day)  # type: ignore[union-attr]
            c = contacts.filter(pc.and_(pc.and_(pc.equal(contacts["strategy"], s.id),
                                                pc.equal(contacts["wave"], dep.wave)),
                                        pc.equal(contacts["contact_date"], sent)))
            for cust, treated, outcome in zip(c["customer_id"].to_pylist(), c["treated"].to_pylist(),
                                              c["outcome"].to_pylist(), strict=False):
                responded = bool(treated) and outcome in RESPONDED
                if outcome == REFUSED:
                    continue  # a customer who said no leaves the journey
                if dep.outcome == "responded" and not responded:
                    continue
                if dep.outcome == "no_response" and responded:
                    continue
                said = "control" if not treated else (outcome or "no response")
                rows["customer_id"].append(cust)
                rows["strategy"].append(s.id)
                rows["wave"].append(w.id)
                rows["reason"].append(f"wave {dep.wave} on {sent.isoformat()}: {said}")
    return pa.table(rows, schema=pa.schema([(k, pa.string()) for k in rows]))


def build(engine: Any, config: StrategiesConfig, trees: Mapping[str, exp.Expression], as_of: dt.date,
          contacts: pa.Table, columns: tuple[list[str], list[str]], files: Mapping[str, Path],
          types: Mapping[str, str] | None = None) -> pa.Table:
    """The audiences table for D (engine computes the first waves; later waves come from history)."""
    import pyarrow as pa

    engine.register("_aud_features", [files["features"]])
    engine.register("_aud_lifecycle", [files["lifecycle"]])
    engine.register("_aud_segments", [files["segments"]])
    engine.create_view("_aud_events", events_query(config.events, as_of))
    read = sorted({m for t in trees.values() for m in t.meta.get("models", ())})
    if read:
        engine.register("_aud_scores_long", [files["scores"]])
        engine.create_view("_aud_scores", scores_query("_aud_scores_long", read))
    engine.create_view("_aud_base", base_query("_aud_features", "_aud_lifecycle", "_aud_segments", "_aud_events",
                                               *columns, scores="_aud_scores" if read else None, models=read))
    schema = output_schema()
    query = first_wave_query(config, trees, "_aud_base", as_of, types)
    first = first_waves(engine.to_arrow(query), config, as_of) if query is not None else schema.empty_table()
    first = drop_reentries(first, contacts, config, as_of)
    later = in_cell_journey(follow_ups(config, contacts, as_of), config)  # a cell may stop its journey early
    if later.num_rows:
        rms = engine.to_arrow(exp.select("customer_id", "rm_id").from_("_aud_events"))
        # customers who left the bank since the earlier wave drop out here (inner join)
        later = later.join(rms, "customer_id", join_type="inner")
        later = (later.append_column("cell", pa.nulls(later.num_rows, pa.string()))
                 .append_column("value", pa.nulls(later.num_rows, pa.float64())).select(schema.names).cast(schema))
        first = pa.concat_tables([first, later])
    return first.sort_by([("strategy", "ascending"), ("wave", "ascending"), ("customer_id", "ascending")])


def compute(inputs: Inputs) -> Output:
    """Eligible customers per strategy and wave as of D, each with the reason the rule was true."""
    import pyarrow.parquet as pq

    config, doc = inputs.config("strategies"), inputs.doc("strategies")
    policy = inputs.config("contact_policy")
    check_structure(config, doc, policy)
    history = inputs.history.load(inputs.as_of, policy.lookback_days)
    files = {a: inputs.snapshot(a).file for a in ("features", "lifecycle", "segments")}
    shelf = inputs.configs["models"][0] if "models" in inputs.configs else ModelsConfig()
    found = inputs.snapshots.get("scores")
    scored: set[str] = set()
    if found is not None:
        files["scores"] = found.file
        scored = set(found.read(columns=["model"])["model"].unique().to_pylist())
    engine = inputs.engine
    products = set(engine.to_arrow(exp.select("product_id").from_("products"))["product_id"].to_pylist())
    stages, segments = known_names(inputs.configs)
    check_references(config, doc, products=products or None, stages=stages, segments=segments)
    seg_columns = feature_columns(pq.read_schema(files["segments"]))
    feat_columns = feature_columns(pq.read_schema(files["features"]))
    types = audience_columns(feat_columns, seg_columns)
    trees = compile_audiences(config, types, inputs.as_of, doc, models={m.name: m.kind for m in shelf.models},
                              scored=scored)
    fallbacks = {sid: t.meta["fallback"] for sid, t in trees.items() if t.meta.get("fallback")}
    types = {**types, **{score_column(m.name): "DOUBLE" for m in shelf.models}}   # reasons show scores rounded
    names = ([c for c in feat_columns if c not in EXCLUDED], [c for c in seg_columns if c not in SEGMENT_EXCLUDED])
    table = build(engine, config, trees, inputs.as_of, history.contacts, names, files, types)
    # the config text itself, so `lifeloop why` replays this day with exactly this version months later
    # (the live text: the strategy map with its approved versions, docs/strategies.md "Versions")
    copies = {f"{name}.yaml": inputs.config_source.source(name) for name in CONFIG_COPIES
              if inputs.config_source is not None and inputs.config_source.exists(name)}
    sizes = counts(table)
    previous = inputs.snapshots.get(AREA)
    shrink = inputs.settings.audience_shrink_warning if inputs.settings else 0.5
    warnings = audience_warnings(config, inputs.as_of, sizes, counts(previous.read()) if previous else None,
                                 previous.as_of if previous else None, shrink)
    used = {sid: sorted(t.meta["models"]) for sid, t in trees.items() if t.meta.get("models")}
    return Output(tables=[Table(AREA, table, (), output_schema())], files=copies,
                  manifest={"sizes": sizes, "models_read": used, "fallbacks": fallbacks},
                  summary={"sizes": sizes}, warnings=[*fallbacks.values(), *warnings])


def audience_warnings(config: StrategiesConfig, as_of: dt.date, sizes: Mapping[str, int],
                      before: Mapping[str, int] | None, before_as_of: dt.date | None, shrink: float) -> list[str]:
    """Said out loud: a live strategy whose first wave matches no one, or shrank by more than ``shrink``."""
    out = []
    for s in config.strategies:
        if not s.enabled or s.start > as_of or (s.end is not None and s.end < as_of):
            continue
        key = f"{s.id}/{s.waves[0].id}"
        now, then = sizes.get(key, 0), (before or {}).get(key)
        if now == 0:
            out.append(f"strategy {s.id}: its audience matches no one on {as_of} (rule: {s.audience})")
        elif then and (then - now) / then > shrink:
            out.append(f"strategy {s.id}: its audience shrank from {then:,} on {before_as_of} to {now:,} "
                       f"(-{(then - now) / then:.0%}; warning above -{shrink:.0%})")
    return out


def counts(table: pa.Table) -> dict[str, int]:
    """Eligible customers per ``strategy/wave``."""
    import pyarrow.compute as pc

    keys = pc.binary_join_element_wise(table["strategy"], table["wave"], "/")
    return {r["values"]: r["counts"] for r in sorted(keys.value_counts().to_pylist(), key=lambda r: r["values"])}


STEP = Step(AREA, compute, reads=(Read("features"), Read("lifecycle"), Read("segments"), Read(AREA, "before"),
                                  Read("scores", optional=True)),
            configs={"strategies": StrategiesConfig, "contact_policy": ContactPolicy,
                     "lifecycle": LifecycleConfig, "segments": SegmentsConfig, "models": ModelsConfig},
            writes=AREA, bank=True, history=True,
            doc="audiences (定名单): who is eligible for which strategy and wave as of D, and why")
