"""``lifeloop strategies``: the strategy map (策略图谱) as segment x stage x scenario, and one line per strategy;
``--coverage`` (the map as it reached the bank on a day) and ``--values`` (prior, evidence and the expected
value arbitration used, per strategy x wave x channel and segment)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import typer

from lifeloop.config.lifecycle import LifecycleConfig
from lifeloop.config.strategies import StrategiesConfig
from lifeloop.errors import DataError, LifeloopError
from lifeloop.strategy.coverage import coverage
from lifeloop.strategy.editor import live_version_text
from lifeloop.strategy.inputs import load_map
from lifeloop.strategy.learning import ALL, learned_values
from lifeloop.strategy.plan import day_evidence, day_tiers, tier_names

ANY = "all"


def map_grid(config: StrategiesConfig, stage_order: list[str] | None = None) -> dict[str, Any]:
    """The map as data: rows (segments), columns (stages), cells {segment: {stage: ["id (scenario)", ...]}}."""
    cells: dict[str, dict[str, list[str]]] = {}
    stages_seen: list[str] = []
    for s in config.strategies:
        label = f"{s.id} ({s.scenario.kind})"
        for seg in s.scenario.segments or [ANY]:
            for stage in s.scenario.stages or [ANY]:
                cells.setdefault(seg, {}).setdefault(stage, []).append(label)
                if stage not in stages_seen:
                    stages_seen.append(stage)
    order = [st for st in (stage_order or []) if st in stages_seen]
    columns = (order + [st for st in stages_seen if st not in order and st != ANY]
               + ([ANY] if ANY in stages_seen else []))
    rows = [seg for seg in cells if seg != ANY] + ([ANY] if ANY in cells else [])
    return {"rows": rows, "columns": columns, "cells": cells}


def strategy_rows(config: StrategiesConfig) -> list[dict[str, Any]]:
    """One summary per strategy: id, name, owner, objective, scenario, offer, waves, holdout, priority, dates."""
    out = []
    for s in config.strategies:
        out.append({
            "id": s.id, "name": s.name.zh or s.name.en, "owner": s.owner,
            "objective": f"{s.objective.kind}: {s.objective.metric} / {s.objective.window_days}d",
            "scenario": s.scenario.name or s.scenario.kind, "offer": s.offer.product_id or s.offer.code,
            "waves": " -> ".join(f"D+{w.day} {w.channel or '/'.join(s.channels)}"
                                 + (f" ({w.depends_on.outcome})" if w.depends_on
                                    and w.depends_on.outcome != "any" else "")
                                 for w in s.waves),
            "holdout": f"{s.holdout:.0%}", "priority": s.priority,
            "dates": f"{s.start}..{s.end or ''}", "enabled": s.enabled})
    return out


def print_map(out: Any, config: StrategiesConfig, stage_order: list[str] | None = None) -> None:
    """Print the grid and the strategy list with rich."""
    from rich.table import Table

    grid = map_grid(config, stage_order)
    t = Table(title="Strategy map (策略图谱): segment x stage, strategy (scenario)", title_justify="left",
              show_lines=True)
    t.add_column("segment \\ stage")
    for col in grid["columns"]:
        t.add_column(col)
    for row in grid["rows"]:
        t.add_row(row, *["\n".join(grid["cells"][row].get(col, [])) for col in grid["columns"]])
    out.print(t)
    d = Table(title="Strategies", title_justify="left")
    rows = strategy_rows(config)
    for col in ("id", "name", "owner", "objective", "offer", "waves", "holdout", "priority"):
        d.add_column(col, justify="right" if col in ("holdout", "priority") else "left")
    for r in rows:
        d.add_row(*[str(r[c]) for c in ("id", "name", "owner", "objective", "offer", "waves", "holdout", "priority")])
    out.print(d)


def coverage_report(ctx: Any, config: StrategiesConfig, as_of: dt.date | None,
                    order: list[str] | None) -> dict[str, Any]:
    """Read the day's segments, lifecycle, audiences (and lists, if planned) and compute the coverage."""
    import pyarrow.parquet as pq


    if as_of is None:
        dates = ctx.lake.dates("audiences")
        if not dates:
            raise DataError("no audiences snapshot to measure coverage on",
                            hint="run `lifeloop run --as-of DATE --steps audiences,plan` first")
        as_of = dates[-1]
    read = {area: pq.read_table(ctx.lake.snapshot_file(area, as_of)) for area in ("segments", "lifecycle", "audiences")}
    lists = pq.read_table(ctx.lake.snapshot_file("lists", as_of)) if ctx.lake.exists("lists", as_of) else None
    report = coverage(read["segments"], read["lifecycle"], read["audiences"], lists, config.coverage, as_of,
                      order or ())
    # what the audiences step said out loud that day (an audience that matches no one, or shrank sharply)
    report["warnings"] = list(ctx.lake.manifest("audiences", as_of).get("warnings") or [])
    return report


def print_coverage(out: Any, report: dict[str, Any]) -> None:
    """Print the coverage matrix (customers / AUM / strategies per cell), then gaps and overlaps."""
    from rich.table import Table

    t = Table(title=f"Coverage (策略覆盖) as of {report['as_of']}: segment x stage, customers / AUM "
                    "/ strategies reached",
              title_justify="left", show_lines=True)
    t.add_column("segment \\ stage")
    for st in report["stages"]:
        t.add_column(st)
    by = {(c["kind"], c["segment"], c["stage"]): c for c in report["cells"]}
    gap_keys = {(g["kind"], g["segment"], g["stage"]) for g in report["gaps"]}
    for seg in report["segments"]:
        cells = []
        for st in report["stages"]:
            c = by.get((seg["kind"], seg["segment"], st))
            if c is None:
                cells.append("")
                continue
            head = f"{c['customers']:,} / {c['aum'] / 10_000:,.0f}万"
            names = "\n".join(f"{s} {n}" for s, n in c["strategies"].items())
            mark = "[red]GAP[/red]" if (seg["kind"], seg["segment"], st) in gap_keys else names or "-"
            cells.append(f"{head}\n{mark}")
        t.add_row(f"{seg['kind']} {seg['segment']}", *cells)
    out.print(t)
    for w in report.get("warnings") or []:
        out.print(f"[bold yellow]Warning[/] (audiences): {w}")
    if report["gaps"]:
        g = Table(title="Gaps: big cells no strategy reaches", title_justify="left")
        for col in ("segment", "stage", "customers", "AUM"):
            g.add_column(col, justify="right" if col in ("customers", "AUM") else "left")
        for row in report["gaps"]:
            g.add_row(f"{row['kind']} {row['segment']}", row["stage"], f"{row['customers']:,}", f"{row['aum']:,.0f}")
        out.print(g)
    if report["overlaps"]:
        o = Table(title="Overlaps: customers who qualify for several strategies, and who won the plan",
                  title_justify="left")
        for col in ("segment", "stage", "contested", "strategies", "wins", "winner"):
            o.add_column(col)
        for row in report["overlaps"]:
            o.add_row(f"{row['kind']} {row['segment']}", row["stage"], f"{row['contested']:,}",
                      ", ".join(f"{s} {n}" for s, n in row["strategies"].items()),
                      ", ".join(f"{s} {n}" for s, n in row["wins"].items()) or "(not planned)", row["winner"] or "-")
        out.print(o)


def values_report(ctx: Any, config: StrategiesConfig, policy: Any, as_of: dt.date | None) -> dict[str, Any]:
    """The learned values of a day: stored with its plan, else computed from the evidence as of that day.

    Default day: the latest plan. Without any plan, the latest bank batch's date (evidence as of it).
    """
    import pyarrow.parquet as pq


    lake = ctx.lake
    if as_of is None:
        planned = lake.dates("lists")
        banks = lake.dates("bank")
        as_of = planned[-1] if planned else (banks[-1] if banks else None)
    stored = lake.snapshot_dir("lists", as_of) / "values.parquet" if as_of else None
    if stored is not None and lake.exists("lists", as_of) and stored.exists():
        table, source = pq.read_table(stored), f"stored with the plan of {as_of}"
    else:
        evidence = day_evidence(lake, as_of) if as_of else None
        tiers = day_tiers(lake, as_of) if as_of else None
        table = learned_values(config, policy, evidence, tier_names(tiers))
        source = (f"computed from the evidence as of {as_of} (no plan stored values that day)" if as_of
                  else "the configured priors (no bank data yet)")
    a = policy.arbitration
    rows = []
    for r in table.to_pylist():
        se, up = r["se"], r["observed_uplift"]
        r["ci95"] = [up - 1.96 * se, up + 1.96 * se] if se is not None and up is not None else None
        rows.append(r)
    return {"as_of": as_of.isoformat() if as_of else None, "source": source,
            "arbitration": {"rank_by": a.rank_by, "class_size": a.class_size, "learn": a.learn,
                            "prior_sd": a.prior_sd, "min_customers": a.min_customers},
            "rows": rows}


def rank_text(arbitration: dict[str, Any]) -> str:
    """How arbitration ranked the day's candidates, in words."""
    if arbitration.get("rank_by") == "value":
        return f"priority class (priority // {arbitration.get('class_size')}), then value"
    return "priority, then value"


def print_values(out: Any, report: dict[str, Any]) -> None:
    """Per strategy x wave x channel (and segments with evidence): prior, evidence, weight, uplift used, value."""
    from rich.table import Table


    a = report["arbitration"]
    t = Table(title=f"Expected value (期望价值) as of {report['as_of'] or '-'}: {report['source']}; ranked by "
                    + rank_text(a) + ("" if a["learn"] else "; learning off: priors only"),
              title_justify="left")
    for col in ("strategy / wave", "channel", "segment", "prior", "treated / control", "observed uplift (95% CI)",
                "weight", "uplift used", "value", "cost", "expected value"):
        t.add_column(col, justify="left" if col in ("strategy / wave", "channel", "segment") else "right")
    for r in report["rows"]:
        if r["segment"] != ALL and not r["treated"]:
            continue   # a segment without evidence uses the row above: nothing new to show
        seen = "-"
        if r["observed_uplift"] is not None:
            lo, hi = r["ci95"] or (None, None)
            seen = f"{r['observed_uplift']:+.4f}" + (f" ({lo:+.4f}..{hi:+.4f})" if lo is not None else "")
            if not r["evidence_used"]:
                seen += " not used"
        t.add_row(f"{r['strategy']} / {r['wave']}" if r["segment"] == ALL else "",
                  r["channel"] if r["segment"] == ALL else "",
                  "all" if r["segment"] == ALL else r["segment"], f"{r['prior_uplift']:.4f}",
                  f"{r['treated']:,} / {r['control']:,}" if r["treated"] or r["control"] else "-", seen,
                  f"{r['weight']:.2f}", f"{r['uplift']:.4f}", f"{r['value_of_success']:g}", f"{r['cost']:g}",
                  f"{r['expected_value']:g}")
    out.print(t)


def strategies_command(ctx: Any, out: Any, as_json: bool = False, coverage: bool = False,
                       as_of: dt.date | None = None, values: bool = False) -> None:
    """Load and check the map of the workspace, then print it, its coverage or its learned values on a day (or JSON)."""
    import json


    def show(report: Any, printer: Any) -> None:
        if as_json:
            out.print_json(json.dumps(report, ensure_ascii=False, default=str))
        else:
            printer(out, report)

    config, _, policy = load_map(ctx)
    if values:
        show(values_report(ctx, config, policy, as_of), print_values)
        return
    try:
        lifecycle, _ = ctx.load_config("lifecycle", LifecycleConfig)
        order = [s.name for s in lifecycle.stages]
    except LifeloopError:  # the map is still worth showing without a lifecycle file
        order = None
    if coverage:
        show(coverage_report(ctx, config, as_of, order), print_coverage)
        return
    if as_json:
        out.print_json(json.dumps({"grid": map_grid(config, order), "strategies": strategy_rows(config)},
                                  ensure_ascii=False, default=str))
    else:
        print_map(out, config, order)


# ---------------------------------------------------------------------------------------------- versions (编辑与复核)
def strategies_app(context: Any, console: Any, parse_date: Any) -> Any:
    """``lifeloop strategies``: the map (no sub-command, as before) and its versions with maker-checker:
    ``versions S``, ``diff S V1 V2``, ``draft S --file F``, ``submit S V``, ``approve S V``, ``reject S V``,
    ``revert S V`` (docs/strategies.md, "Versions"). Each acts as the signed-in user."""
    import json

    app = typer.Typer(help="The strategy map (策略图谱) and its versions: draft, submit, approve (双人复核), revert.",
                      invoke_without_command=True)

    @app.callback()
    def show_map(
        c: typer.Context,
        as_json: bool = typer.Option(False, "--json", help="Print the map (or its coverage, or its values) as JSON."),
        coverage: bool = typer.Option(False, "--coverage",
                                      help="Coverage on a day: segment x stage, gaps and overlaps."),
        values: bool = typer.Option(
            False, "--values", help="Prior, evidence and expected value per strategy x wave x channel (and tier)."),
        as_of: str | None = typer.Option(None, "--as-of",
                                         help="Day of the coverage or values (default: latest audiences "
                                              "snapshot / latest plan)."),
    ) -> None:
        """The live strategy map (策略图谱: config/strategies.yaml with its approved versions): segment x stage x
        scenario and one line per strategy, its coverage, or its values; sub-commands edit it (maker-checker)."""
        if c.invoked_subcommand is not None:
            return
        with context() as ctx:
            strategies_command(ctx, console(), as_json, coverage=coverage, as_of=parse_date(as_of), values=values)

    def said(row: dict[str, Any], what: str) -> None:
        branch = f" for branch {row['branch_id']}" if row.get("branch_id") else ""
        console().print(f"strategy {row['strategy_id']} version {row['version']}{branch}: {what} "
                        f"(status {row['status']}; audited)")

    @app.command("versions")
    def versions_command(
        strategy: str = typer.Argument(..., help="Strategy id."),
        as_json: bool = typer.Option(False, "--json", help="Print the versions as JSON (with their text)."),
    ) -> None:
        """A strategy's versions: 0 is config/strategies.yaml; * marks the live one (per branch)."""
        from rich.table import Table

        with context() as ctx:
            info = ctx.strategy_versions(strategy)
        if as_json:
            console().print_json(json.dumps(info, ensure_ascii=False, default=str))
            return
        t = Table(title=f"Versions of {strategy} (live: " + ", ".join(f"{k} v{v}" for k, v in info["live"].items())
                  + ("" if info["live"] else "the YAML") + ")", title_justify="left")
        for col in ("", "version", "branch", "status", "author", "checker", "comment", "when"):
            t.add_column(col)
        for r in info["versions"]:
            t.add_row("*" if r.get("live") else "", str(r["version"]), r.get("branch_id") or "head office",
                      r["status"], r.get("author") or "", r.get("decided_by") or "", r.get("comment") or r.get("note")
                      or "", str(r.get("decided_at") or r.get("submitted_at") or r.get("created_at") or ""))
        console().print(t)

    @app.command("diff")
    def diff_command(strategy: str = typer.Argument(...), before: int = typer.Argument(..., help="Version (0: YAML)."),
                     after: int = typer.Argument(..., help="Version.")) -> None:
        """The unified diff of two versions' YAML text."""
        with context() as ctx:
            text = ctx.strategy_diff(strategy, before, after)
        typer.echo(text or f"versions {before} and {after} of {strategy} are the same")

    @app.command("draft")
    def draft_command(
        strategy: str = typer.Argument(..., help="Strategy id (a new one: a new strategy)."),
        file: Path | None = typer.Option(None, "--file", "-f", help="The strategy's YAML (one strategy's fields)."),
        branch: str | None = typer.Option(None, "--branch", help="A branch's variant (一行一策), e.g. B01."),
        note: str | None = typer.Option(None, "--note", help="Why: for the checker."),
        version: int | None = typer.Option(None, "--version", help="Edit this draft of yours instead of a new one."),
        show: bool = typer.Option(False, "--show", help="Print the text to start from (the live version) and stop."),
    ) -> None:
        """Save a draft version, validated like every rule (errors name the field); `--show` prints the live text."""
        with context() as ctx:
            if show or file is None:
                if not show:
                    raise LifeloopError("give the strategy's YAML with --file FILE",
                                        hint=f"start from the live text: lifeloop strategies draft {strategy} --show "
                                             f"> {strategy}.yaml, edit it, then --file {strategy}.yaml")
                typer.echo(live_version_text(ctx, strategy, branch)[0], nl=False)
                return
            row = ctx.strategy_draft(strategy, file.read_text(encoding="utf-8"), branch=branch, note=note,
                                     version=version)
        said(row, "draft saved; submit it with `lifeloop strategies submit "
             f"{strategy} {row['version']}`")

    @app.command("submit")
    def submit_command(strategy: str = typer.Argument(...), version: int = typer.Argument(...)) -> None:
        """Submit a draft for a checker (another person with the approver role)."""
        with context() as ctx:
            said(ctx.strategy_submit(strategy, version), "submitted for approval")

    @app.command("approve")
    def approve_command(strategy: str = typer.Argument(...), version: int = typer.Argument(...),
                        comment: str | None = typer.Option(None, "--comment", help="The checker's comment.")) -> None:
        """Approve a submitted version (never one's own): the next run uses it."""
        with context() as ctx:
            said(ctx.strategy_decide(strategy, version, approve=True, comment=comment),
                 "approved; the next run uses it")

    @app.command("reject")
    def reject_command(strategy: str = typer.Argument(...), version: int = typer.Argument(...),
                       comment: str = typer.Option(..., "--comment", help="What to change (required).")) -> None:
        """Reject a submitted version with a comment."""
        with context() as ctx:
            said(ctx.strategy_decide(strategy, version, approve=False, comment=comment), "rejected")

    @app.command("revert")
    def revert_command(strategy: str = typer.Argument(...),
                       version: int = typer.Argument(..., help="The version to put back (0: the YAML's)."),
                       note: str | None = typer.Option(None, "--note")) -> None:
        """Put an earlier version back: a new version with its text, submitted for approval (four eyes again)."""
        with context() as ctx:
            said(ctx.strategy_revert(strategy, version, note=note), "revert submitted for approval")

    return app
