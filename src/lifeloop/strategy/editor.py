"""The strategy editor's work (策略编辑, maker-checker): what ``Context`` does for the CLI and the web app.

Every function takes the acting :class:`~lifeloop.context.Context` (``ctx``: its principal, operations database,
configuration and lake) and checks who may do what with :mod:`lifeloop.strategy.versions`' rules; a version of
another branch's variant is refused exactly as one that does not exist. Drafts are validated like every rule
of the map (:func:`lifeloop.strategy.live.single`, then the audience rule against the latest snapshot's
columns) when saved and when submitted. docs/strategies.md, "Versions".
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlglot import exp

from lifeloop.config.contact_policy import ContactPolicy
from lifeloop.config.lifecycle import LifecycleConfig
from lifeloop.config.loader import load_yaml
from lifeloop.config.scripts import customer_variables, render
from lifeloop.config.segments import SegmentsConfig
from lifeloop.config.shelf import ModelsConfig
from lifeloop.config.strategies import StrategiesConfig, Strategy
from lifeloop.data.access import PermissionDenied, not_visible
from lifeloop.engine.adapters import connect
from lifeloop.engine.compile import feature_columns, scores_query
from lifeloop.errors import ConfigError, LifeloopError
from lifeloop.store.ops import strategy_versions as store
from lifeloop.store.ops.database import unit_of_work
from lifeloop.strategy.audiences import audience_columns, base_query
from lifeloop.strategy.checks import check_references, compile_audiences
from lifeloop.strategy.coverage import coverage
from lifeloop.strategy.events import events_query
from lifeloop.strategy.inputs import known_names
from lifeloop.strategy.live import single, wrap
from lifeloop.strategy.versions import (
    BASELINE,
    VersionError,
    check_checker,
    diff,
    dump,
    may_edit,
    may_see,
    transition,
    variant_id,
)

SNAPSHOT_AREAS = ("features", "lifecycle", "segments")
MAX_TEXT = 60_000   # characters of one strategy's YAML (the template's longest is ~2,000)


# ---------------------------------------------------------------------------------------------- reading
def baseline(ctx: Any) -> dict[str, Any]:
    """config/strategies.yaml as plain data (the head office's baseline, version 0 of its strategies)."""
    path = ctx.configs.path("strategies")
    if not path.exists():
        return {"strategies": []}
    data = load_yaml(path).data
    return data if isinstance(data, dict) else {"strategies": []}


def baseline_strategy(ctx: Any, strategy_id: str) -> dict[str, Any] | None:
    return next((s for s in baseline(ctx).get("strategies") or [] if isinstance(s, dict)
                 and s.get("id") == strategy_id), None)


def _visible_rows(ctx: Any, strategy_id: str | None = None) -> list[dict[str, Any]]:
    principal = ctx.principal
    with ctx.ops()() as session:
        rows = [store.row(v) for v in store.versions(session, strategy_id)]
    return [r for r in rows if may_see(principal, r["branch_id"])]


def _known(ctx: Any, strategy_id: str) -> bool:
    """A strategy of the YAML or with a version the reader may see."""
    return baseline_strategy(ctx, strategy_id) is not None or bool(_visible_rows(ctx, strategy_id))


def _all_ids(ctx: Any) -> list[str]:
    ids = {s.get("id") for s in baseline(ctx).get("strategies") or [] if isinstance(s, dict)}
    ids |= {r["strategy_id"] for r in _visible_rows(ctx)}
    return sorted(str(i) for i in ids if i)


def _refuse_unknown(ctx: Any, strategy_id: str, permission: str = "strategies.read") -> Exception:
    return ctx._refused(not_visible("strategy", strategy_id, _all_ids(ctx)), permission, "strategy", strategy_id)


def versions(ctx: Any, strategy_id: str) -> dict[str, Any]:
    """A strategy's versions the reader may see (version 0: the YAML), the live one per branch, and the pending."""
    ctx.require("strategies.read", "read the strategy map")
    base = baseline_strategy(ctx, strategy_id)
    rows = _visible_rows(ctx, strategy_id)
    if base is None and not rows:
        raise _refuse_unknown(ctx, strategy_id)
    live: dict[str, int] = {}
    for r in rows:
        if r["status"] == "approved":
            key = r["branch_id"] or ""
            live[key] = max(live.get(key, 0), r["version"])
    listed = ([{"strategy_id": strategy_id, "version": BASELINE, "branch_id": None, "status": "baseline",
                "author": "config/strategies.yaml", "definition": dump(base)}] if base is not None else []) + rows
    for r in listed:
        r["live"] = (r["version"] == live.get(r["branch_id"] or "", BASELINE if r["branch_id"] is None else -1))
    return {"strategy_id": strategy_id, "versions": listed,
            "live": {k or "head_office": v for k, v in live.items()},
            "pending": [r["version"] for r in rows if r["status"] in ("draft", "submitted")]}


def _text_of(ctx: Any, strategy_id: str, version: int) -> tuple[str, str | None]:
    """(YAML text, branch) of a version the reader may see (0: the YAML's), else the not-found refusal."""
    if version == BASELINE:
        base = baseline_strategy(ctx, strategy_id)
        if base is None:
            raise _refuse_unknown(ctx, strategy_id)
        return dump(base), None
    with ctx.ops()() as session:
        v = store.get(session, strategy_id, version)
        found = (v.definition, v.branch_id) if v is not None and may_see(ctx.principal, v.branch_id) else None
    if found is None:
        raise ctx._refused(not_visible("strategy version", f"{strategy_id} v{version}"), "strategies.read",
                           "strategy_version", f"{strategy_id}@{version}")
    return found


def version_diff(ctx: Any, strategy_id: str, before: int, after: int) -> str:
    """The unified diff of two versions' YAML text."""
    ctx.require("strategies.read", "read the strategy map")
    a, _ = _text_of(ctx, strategy_id, before)
    b, _ = _text_of(ctx, strategy_id, after)
    return diff(a, b, f"{strategy_id} v{before}", f"{strategy_id} v{after}")


def live_version_text(ctx: Any, strategy_id: str, branch: str | None) -> tuple[str, int]:
    """The text an editor starts from: the branch's live variant, else the strategy's live version, else the YAML."""
    info = versions(ctx, strategy_id)
    rows = {r["version"]: r for r in info["versions"]}
    for key in ([branch] if branch else []) + ["head_office"]:
        if key in info["live"]:
            return rows[info["live"][key]]["definition"], info["live"][key]
    if BASELINE in rows:
        return rows[BASELINE]["definition"], BASELINE
    newest = max(rows)
    return rows[newest]["definition"], newest


# ---------------------------------------------------------------------------------------------- checking
def _policy(ctx: Any) -> ContactPolicy | None:
    try:
        return ctx.load_config("contact_policy", ContactPolicy)[0] if ctx.configs.exists("contact_policy") else None
    except LifeloopError:
        return None


def _thresholds(ctx: Any) -> dict[str, float]:
    return dict(baseline(ctx).get("thresholds") or {})


def latest_snapshot(ctx: Any) -> dt.date | None:
    """The newest date with features, lifecycle and segments published (what rules are checked and counted on)."""
    common: set[dt.date] | None = None
    for area in SNAPSHOT_AREAS:
        days = set(ctx.lake.dates(area))
        common = days if common is None else common & days
    return max(common) if common else None


def _columns(ctx: Any, day: dt.date) -> tuple[dict[str, str], list[str], list[str]]:
    import pyarrow.parquet as pq

    feat = feature_columns(pq.read_schema(ctx.lake.snapshot_file("features", day)))
    seg = feature_columns(pq.read_schema(ctx.lake.snapshot_file("segments", day)))
    return audience_columns(feat, seg), list(feat), list(seg)


def _models(ctx: Any) -> dict[str, str]:
    if not ctx.configs.exists("models"):
        return {}
    try:
        return {m.name: m.kind for m in ctx.load_config("models", ModelsConfig)[0].models}
    except LifeloopError:
        return {}


def check(ctx: Any, strategy_id: str, text: str, *, branch: str | None = None) -> Strategy:
    """A draft's text validated like every rule of the map: the schema and structure, the references (products,
    stages, segments) and the rules against the latest snapshot's columns; a ConfigError names each field."""
    if len(text) > MAX_TEXT:
        raise ConfigError(f"the strategy's text is {len(text):,} characters, more than {MAX_TEXT:,}",
                          hint="a strategy is a page of YAML; remove what is not needed")
    label = f"strategy {strategy_id}" + (f" ({branch})" if branch else "")
    strategy, doc = single(text, strategy_id=strategy_id, label=label, thresholds=_thresholds(ctx),
                           policy=_policy(ctx))
    config = StrategiesConfig(thresholds=_thresholds(ctx), strategies=[strategy])
    stages, segments = _names(ctx)
    check_references(config, _wrapped(doc), products=None, stages=stages, segments=segments)
    day = latest_snapshot(ctx)
    if day is not None:
        types, _, _ = _columns(ctx, day)
        compile_audiences(config, types, day, _wrapped(doc), models=_models(ctx) or None, scored=set(_models(ctx)))
    return strategy


def _wrapped(doc: Any) -> Any:
    return wrap(doc)


def _names(ctx: Any) -> tuple[set[str] | None, set[str] | None]:
    configs = {}
    for name, model in (("lifecycle", LifecycleConfig), ("segments", SegmentsConfig)):
        if ctx.configs.exists(name):
            try:
                configs[name] = ctx.load_config(name, model)
            except LifeloopError:
                pass
    return known_names(configs)


def problems_of(exc: LifeloopError) -> list[dict[str, Any]]:
    """A refusal's problems as data for a form: the field (``holdout``, ``waves[1].depends_on``), line, message."""
    out = []
    for p in getattr(exc, "problems", None) or []:
        field = (p.field or "").removeprefix("strategies[0].").removeprefix("strategies[0]")
        out.append({"field": field or None, "line": p.line, "message": p.message})
    return out or [{"field": None, "line": None, "message": exc.message}]


def audience_count(ctx: Any, strategy: Strategy, *, branch: str | None = None) -> dict[str, Any]:
    """How many customers the strategy's audience rule selects on the latest snapshot — of the reader's branch for a
    branch manager (the number only, never who). None without a snapshot."""
    day = latest_snapshot(ctx)
    if day is None:
        return {"as_of": None, "customers": None}
    types, feat, seg = _columns(ctx, day)
    models = _models(ctx)
    scored: set[str] = set()
    engine = connect("duckdb", ctx)
    try:
        engine.register_bank(ctx.lake, day)
        for area in SNAPSHOT_AREAS:
            engine.register(f"_ed_{area}", [ctx.lake.snapshot_file(area, day)])
        if models and ctx.lake.exists("scores", day):
            engine.register("_ed_scores_long", [ctx.lake.snapshot_file("scores", day)])
            import pyarrow.parquet as pq

            scored = set(pq.read_table(ctx.lake.snapshot_file("scores", day), columns=["model"])["model"]
                         .unique().to_pylist())
        config = StrategiesConfig(thresholds=_thresholds(ctx), strategies=[strategy])
        tree = compile_audiences(config, types, day, None, models=models or None, scored=scored)[strategy.id]
        read = sorted(tree.meta.get("models", ()))
        if read:
            engine.create_view("_ed_scores", scores_query("_ed_scores_long", read))
        engine.create_view("_ed_events", events_query(config.events, day))
        base = base_query("_ed_features", "_ed_lifecycle", "_ed_segments", "_ed_events",
                          [c for c in feat if c in types], [c for c in seg if c in types],
                          scores="_ed_scores" if read else None, models=read)
        where = exp.func("coalesce", exp.Paren(this=tree.copy()), exp.false())
        scope = ctx.principal.scope("strategies.edit") if ctx.principal.can("strategies.edit") else None
        branches = sorted({branch} if branch else (scope.branch_ids if scope is not None and not scope.all else ()))
        if branches:
            where = exp.and_(where, exp.column("branch_id").isin(*[exp.Literal.string(b) for b in branches]))
        query = exp.select(exp.func("count", exp.Star()).as_("n")).from_(base.subquery("_b")).where(where)
        n = engine.to_arrow(query)["n"][0].as_py()
    finally:
        engine.close()
    return {"as_of": day.isoformat(), "customers": int(n or 0), "branch": branches[0] if branches else None,
            "fallback": tree.meta.get("fallback")}


def preview(ctx: Any, strategy_id: str, text: str, *, branch: str | None = None,
            count: bool = True) -> dict[str, Any]:
    """The editor's live answer while typing: problems (by field) or none, and the audience count."""
    ctx.require("strategies.read", "read the strategy map")
    try:
        strategy = check(ctx, strategy_id, text, branch=branch)
    except LifeloopError as exc:
        if not isinstance(exc, ConfigError):
            raise
        return {"valid": False, "problems": problems_of(exc), "audience": None, "scripts": []}
    sample = customer_variables({"customer_name": "王小明", "gender": "F", "rm_name": "李经理",
                                 "branch_name": "滨江支行",
                                 "product_name": strategy.offer.product_id or strategy.offer.code,
                                 "offer_code": strategy.offer.code or "", "days_to_maturity": 7,
                                 "maturing_amount": 52_000, "holiday_name": "中秋节",
                                 "bank_name": ctx.config.bank.name})
    scripts = [{"channel": ch, "zh": render(s.zh, sample) if s.zh else "", "en": render(s.en, sample) if s.en else ""}
               for ch, s in strategy.scripts.items()]
    audience = audience_count(ctx, strategy, branch=branch) if count else None
    return {"valid": True, "problems": [], "audience": audience, "scripts": scripts}


# ---------------------------------------------------------------------------------------------- changing
def _may_edit(ctx: Any, strategy_id: str, branch: str | None) -> Any:
    principal = ctx.require("strategies.edit", "draft strategy versions")
    if not may_edit(principal, branch):
        if branch is None:   # a branch manager drafting head office's own version
            raise ctx._refused(PermissionDenied(
                f"user {principal.user_id} may draft only their branch's variants of strategy {strategy_id}",
                hint=f"draft a variant: --branch {sorted(principal.scope('strategies.edit').branch_ids)[0]}"
                if principal.scope("strategies.edit").branch_ids else "head office drafts its strategies"),
                "strategies.edit", "strategy", strategy_id)
        raise _refuse_unknown(ctx, strategy_id, "strategies.edit")   # another branch: as if it did not exist
    return principal


def _for_branch(principal: Any, branch: str | None) -> str | None:
    """A branch manager always drafts for their branch (one branch: implied)."""
    if branch is None and not principal.scope("strategies.edit").all:
        own = sorted(principal.scope("strategies.edit").branch_ids)
        return own[0] if len(own) == 1 else None
    return branch


def draft(ctx: Any, strategy_id: str, text: str, *, branch: str | None = None, note: str | None = None,
          version: int | None = None) -> dict[str, Any]:
    """Save a draft: a new version (``version`` None), or the author's own draft ``version`` edited. Validated."""
    principal = ctx.require("strategies.edit", "draft strategy versions")
    branch = _for_branch(principal, branch)
    _may_edit(ctx, strategy_id, branch)
    if branch is not None and baseline_strategy(ctx, strategy_id) is None and not _has_head_office(ctx, strategy_id):
        raise _refuse_unknown(ctx, strategy_id, "strategies.edit")   # a variant needs head office's strategy
    check(ctx, strategy_id, text, branch=branch)
    with unit_of_work(ctx.ops()) as session:
        if version is not None:
            v = store.get(session, strategy_id, version)
            if v is None or v.author != principal.user_id or v.branch_id != branch:
                raise ctx._refused(not_visible("draft", f"{strategy_id} v{version}"), "strategies.edit",
                                   "strategy_version", f"{strategy_id}@{version}")
            transition(v.status, "save", strategy=strategy_id, version=version)
            return store.row(store.save(session, v, definition=text, note=note, actor=principal.user_id,
                                        now=ctx.clock()))
        base = _live_number(session, strategy_id, branch)
        return store.row(store.create(session, strategy_id=strategy_id, branch_id=branch, definition=text,
                                      author=principal.user_id, base_version=base, note=note, now=ctx.clock()))


def _has_head_office(ctx: Any, strategy_id: str) -> bool:
    with ctx.ops()() as session:
        return any(v.branch_id is None and v.status == "approved" for v in store.versions(session, strategy_id))


def _live_number(session: Any, strategy_id: str, branch: str | None) -> int:
    found = [v.version for v in store.versions(session, strategy_id) if v.status == "approved"
             and v.branch_id == branch]
    return max(found) if found else BASELINE


def _visible_version(ctx: Any, session: Any, strategy_id: str, version: int, permission: str) -> Any:
    v = store.get(session, strategy_id, version)
    if v is None or not may_see(ctx.principal, v.branch_id):
        raise ctx._refused(not_visible("strategy version", f"{strategy_id} v{version}"), permission,
                           "strategy_version", f"{strategy_id}@{version}")
    return v


def submit(ctx: Any, strategy_id: str, version: int) -> dict[str, Any]:
    """Hand a draft to a checker (the author, or another editor of the same scope); validated again first."""
    principal = ctx.require("strategies.edit", "submit strategy versions")
    with ctx.ops()() as session:
        v = _visible_version(ctx, session, strategy_id, version, "strategies.edit")
        text, branch, status = v.definition, v.branch_id, v.status
    _may_edit(ctx, strategy_id, branch)
    transition(status, "submit", strategy=strategy_id, version=version)
    check(ctx, strategy_id, text, branch=branch)
    with unit_of_work(ctx.ops()) as session:
        v = store.get(session, strategy_id, version)
        transition(v.status, "submit", strategy=strategy_id, version=version)
        return store.row(store.submit(session, v, actor=principal.user_id, now=ctx.clock()))


def decide(ctx: Any, strategy_id: str, version: int, *, approve: bool, comment: str | None) -> dict[str, Any]:
    """The checker approves (it goes live with the next run) or rejects a submitted version, with a comment."""
    principal = ctx.require("strategies.approve", "approve or reject strategy versions")
    with unit_of_work(ctx.ops()) as session:
        v = _visible_version(ctx, session, strategy_id, version, "strategies.approve")
        if not approve and not (comment or "").strip():
            raise VersionError("a rejection needs a comment: say what to change",
                               hint='--comment "holdout too small"')
        try:
            check_checker(principal, v.author, strategy_id, version)
        except PermissionDenied as exc:
            raise ctx._refused(exc, "strategies.approve", "strategy_version", f"{strategy_id}@{version}") from None
        transition(v.status, "approve" if approve else "reject", strategy=strategy_id, version=version)
        return store.row(store.decide(session, v, approve=approve, actor=principal.user_id,
                                      comment=(comment or "").strip() or None, now=ctx.clock()))


def revert(ctx: Any, strategy_id: str, version: int, *, note: str | None = None) -> dict[str, Any]:
    """Put an earlier version back: a new version with its text, submitted for a checker's approval (a revert
    changes what goes live, so it gets the same four eyes as any change). Version 0: the YAML's."""
    principal = ctx.require("strategies.edit", "revert strategy versions")
    text, found = _text_of(ctx, strategy_id, version)
    branch = found if version != BASELINE else _for_branch(principal, None)   # 0: a variant back to the YAML's
    _may_edit(ctx, strategy_id, branch)
    check(ctx, strategy_id, text, branch=branch)
    with unit_of_work(ctx.ops()) as session:
        base = _live_number(session, strategy_id, branch)
        return store.row(store.create(session, strategy_id=strategy_id, branch_id=branch, definition=text,
                                      author=principal.user_id, base_version=base, status="submitted",
                                      reverts_version=version, note=note or f"revert to version {version}",
                                      now=ctx.clock()))


# ---------------------------------------------------------------------------------------------- the map
def map_view(ctx: Any) -> dict[str, Any]:
    """The live map for the editor: per strategy its live version (head office and branch variants), the pending
    drafts the reader may see, and the segment x stage grid with the latest coverage (customers reached)."""
    ctx.require("strategies.read", "read the strategy map")
    config, _ = ctx.load_config("strategies", StrategiesConfig)
    rows = _visible_rows(ctx)
    principal = ctx.principal
    out = []
    base_ids = {s.get("id") for s in baseline(ctx).get("strategies") or [] if isinstance(s, dict)}
    variant_of = {variant_id(r["strategy_id"], r["branch_id"]): r["strategy_id"] for r in rows if r["branch_id"]}
    for s in config.strategies:
        if s.id in variant_of:
            continue
        mine = [r for r in rows if r["strategy_id"] == s.id]
        live = {}
        for r in mine:
            if r["status"] == "approved":
                key = r["branch_id"] or "head_office"
                live[key] = max(live.get(key, 0), r["version"])
        out.append({"id": s.id, "name": {"zh": s.name.zh, "en": s.name.en}, "owner": s.owner,
                    "objective": s.objective.kind, "scenario": s.scenario.kind, "stages": s.scenario.stages,
                    "segments": s.scenario.segments, "priority": s.priority, "holdout": s.holdout,
                    "enabled": s.enabled, "in_yaml": s.id in base_ids,
                    "live": {"head_office": live.get("head_office", BASELINE),
                             **{k: v for k, v in live.items() if k != "head_office"}},
                    "pending": [{"version": r["version"], "status": r["status"], "author": r["author"],
                                 "branch_id": r["branch_id"]} for r in mine if r["status"] in ("draft", "submitted")],
                    "may_edit": principal.can("strategies.edit")})
    return {"strategies": out, "grid": grid(config), "coverage": coverage_cells(ctx, config)}


def grid(config: StrategiesConfig) -> dict[str, Any]:
    """Segment x stage -> the strategies targeting it (``all``: no restriction)."""
    cells: dict[str, dict[str, list[str]]] = {}
    stages: list[str] = []
    for s in config.strategies:
        for seg in s.scenario.segments or ["all"]:
            for stage in s.scenario.stages or ["all"]:
                cells.setdefault(seg, {}).setdefault(stage, []).append(s.id)
                if stage not in stages:
                    stages.append(stage)
    columns = [st for st in stages if st != "all"] + (["all"] if "all" in stages else [])
    rows = [seg for seg in cells if seg != "all"] + (["all"] if "all" in cells else [])
    return {"rows": rows, "columns": columns, "cells": cells}


def coverage_cells(ctx: Any, config: StrategiesConfig) -> dict[str, Any] | None:
    """The latest day's coverage (策略覆盖: customers per segment x stage and how many the strategies reached),
    over the reader's branch for a branch manager; None before the first audiences snapshot."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    days = ctx.lake.dates("audiences")
    if not days:
        return None
    day = days[-1]
    try:
        read = {a: pq.read_table(ctx.lake.snapshot_file(a, day)) for a in ("segments", "lifecycle", "audiences")}
    except LifeloopError:
        return None
    principal = ctx.principal
    scope = principal.scope("strategies.read")
    if not scope.all and not principal.roles & {"approver"}:
        keep = pa.array(ctx._visible_customers(scope), pa.string())
        read = {a: t.filter(pc.is_in(t["customer_id"], value_set=keep)) for a, t in read.items()}
    report = coverage(read["segments"], read["lifecycle"], read["audiences"], None, config.coverage, day, ())
    top = max([c["customers"] for c in report["cells"]] or [1]) or 1
    cells = [{"kind": c["kind"], "segment": c["segment"], "stage": c["stage"], "customers": c["customers"],
              "reached": sum(c["strategies"].values()), "strategies": len(c["strategies"]),
              "heat": min(5, int(5 * c["customers"] / top + 0.999)) if c["customers"] else 0,
              "gap": any((g["kind"], g["segment"], g["stage"]) == (c["kind"], c["segment"], c["stage"])
                         for g in report["gaps"])}
             for c in report["cells"]]
    return {"as_of": day.isoformat(), "stages": report["stages"],
            "segments": [f"{s['kind']} {s['segment']}" for s in report["segments"]], "cells": cells}


MAIN_FIELDS = {"audience": str, "holdout": float, "priority": int}


def with_fields(text: str, fields: dict[str, str]) -> str:
    """The YAML text with the form's structured fields (audience, holdout, priority, objective) written into it
    when they differ from the text's; text that is not a mapping is returned as it is (its check says why)."""
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if not isinstance(data, dict):
        return text
    changed = False
    for name, kind in MAIN_FIELDS.items():
        given = (fields.get(name) or "").strip()
        if not given:
            continue
        try:
            value = kind(given)
        except ValueError:
            value = given   # the check names the field and what it must be
        if data.get(name) != value:
            data[name], changed = value, True
    kind_given = (fields.get("objective_kind") or "").strip()
    if kind_given and isinstance(data.get("objective"), dict) and data["objective"].get("kind") != kind_given:
        data["objective"] = {**data["objective"], "kind": kind_given}
        changed = True
    return dump(data) if changed else text
