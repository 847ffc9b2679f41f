"""``lifeloop report --out FILE.html``: the self-contained HTML report from what the lake holds."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lifeloop.cli.strategies import coverage_report
from lifeloop.config.channels import ChannelsConfig
from lifeloop.config.lifecycle import LifecycleConfig
from lifeloop.config.segments import SegmentsConfig
from lifeloop.config.strategies import StrategiesConfig
from lifeloop.errors import LifeloopError
from lifeloop.review.lake_evaluation import evaluate_lake
from lifeloop.review.report import render_report
from lifeloop.strategy.inputs import load_map

KPI_DAYS = 90  # default KPI window: the last 90 days of lifecycle snapshots


def report_command(ctx: Any, out: Any, out_file: Path, as_of: dt.date | None, start: dt.date | None,
                   interim: bool = False) -> Path:
    """Read the review, KPIs and coverage on or before ``as_of``, render the report, write it atomically.

    ``interim``: the board measures every entry to date, windows still running included (as
    ``lifeloop evaluate --interim``); by default only closed evaluation windows count."""

    missing: dict[str, str] = {}
    day = as_of or _latest(ctx, ("lifecycle", "audiences", "bank"), None)
    review = load_review(ctx, as_of, missing, interim)
    kpis = load_kpis(ctx, as_of, start, missing)
    coverage = load_coverage(ctx, as_of, missing)
    models = load_models(ctx, as_of, missing)
    html = render_report(bank_name=ctx.config.bank.name, as_of=day, review=review, kpis=kpis, coverage=coverage,
                         labels=workspace_labels(ctx), missing=missing, language=_language(ctx),
                         generated=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"), models=models)
    size = write_atomically(out_file, html)
    out.print(f"[green]Report written[/] {out_file} ({size:,} bytes)")
    for section, why in missing.items():
        out.print(f"  {section}: {why}")
    return out_file


def write_atomically(path: Path, text: str) -> int:
    """Write ``text`` beside ``path`` then rename it over, so a reader never sees half a report."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    data = text.encode("utf-8")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return len(data)


def _latest(ctx: Any, areas: tuple[str, ...], as_of: dt.date | None) -> dt.date | None:
    """The newest published date on or before ``as_of`` in the first area that has one."""
    for area in areas:
        dates = [d for d in ctx.lake.dates(area) if as_of is None or d <= as_of]
        if dates:
            return dates[-1]
    return None


def load_review(ctx: Any, as_of: dt.date | None, missing: dict[str, str],
                interim: bool = False) -> Mapping[str, Any] | None:
    """The lake's post-evaluation (``lifeloop.review/1``), or None with the reason in ``missing``."""

    try:
        return evaluate_lake(ctx, as_of, interim=interim)
    except LifeloopError as exc:
        missing["review"] = f"No post-evaluation: {exc.message}" + (f" ({exc.hint})" if exc.hint else "")
        return None


def load_kpis(ctx: Any, as_of: dt.date | None, start: dt.date | None, missing: dict[str, str]) -> dict[str, Any] | None:
    """Lifecycle KPIs over ``start`` .. the newest lifecycle snapshot on or before ``as_of``
    (default start: 90 days earlier, clamped to the first snapshot)."""
    dates = [d for d in ctx.lake.dates("lifecycle") if as_of is None or d <= as_of]
    if not dates:
        missing["kpis"] = ("No lifecycle snapshot is published" + (f" on or before {as_of}" if as_of else "")
                           + ": run `lifeloop run --as-of DATE` first. 暂无生命周期快照。")
        return None
    end = dates[-1]
    if start is not None and start > end:
        raise LifeloopError(f"--from {start} is after the newest lifecycle snapshot {end}",
                            hint=f"give a date on or before {end}")
    first = start or max(end - dt.timedelta(days=KPI_DAYS), dates[0])
    try:
        return ctx.kpis(first, end)
    except LifeloopError as exc:
        missing["kpis"] = f"No KPIs: {exc.message}"
        return None


def load_coverage(ctx: Any, as_of: dt.date | None, missing: dict[str, str]) -> dict[str, Any] | None:
    """The strategy-map coverage on the newest audiences snapshot on or before ``as_of``."""

    day = _latest(ctx, ("audiences",), as_of)
    if day is None:
        missing["coverage"] = ("No audiences snapshot is published" + (f" on or before {as_of}" if as_of else "")
                               + ": run the daily steps first. 暂无策略覆盖数据。")
        return None
    try:
        config, _, _ = load_map(ctx)
        return coverage_report(ctx, config, day, _stage_order(ctx))
    except LifeloopError as exc:
        missing["coverage"] = f"No coverage: {exc.message}"
        return None


def load_models(ctx: Any, as_of: dt.date | None, missing: dict[str, str]) -> list[dict[str, Any]]:
    """Each active classifier evaluated on its newest closed outcome window (``lifeloop models evaluate``)."""
    found = []
    for m in ctx.models():
        if m["active"] is None:
            continue
        try:
            found.append(ctx.evaluate_model(m["name"], m["active"], as_of))
        except LifeloopError as exc:
            missing[f"model {m['name']}"] = f"not evaluated: {exc.message}"
    return found


def _stage_order(ctx: Any) -> list[str] | None:

    try:
        config, _ = ctx.load_config("lifecycle", LifecycleConfig)
    except LifeloopError:
        return None
    return [s.name for s in config.stages]


def _language(ctx: Any) -> str:

    try:
        config, _ = ctx.load_config("channels", ChannelsConfig)
    except LifeloopError:
        return "zh"
    return config.language


def workspace_labels(ctx: Any) -> dict[str, dict[str, tuple[str, str]]]:
    """zh / en names of the workspace's stages, tiers, groups and strategies (each file optional)."""

    labels: dict[str, dict[str, tuple[str, str]]] = {}

    def add(kind: str, code: str, zh: str | None, en: str | None) -> None:
        if zh or en:
            labels.setdefault(kind, {})[code] = (zh or en or code, en or zh or code)

    for name, model in (("lifecycle", LifecycleConfig), ("segments", SegmentsConfig), ("strategies", StrategiesConfig)):
        try:
            config, _ = ctx.load_config(name, model)
        except LifeloopError:
            continue
        if name == "lifecycle":
            for s in config.stages:
                add("stage", s.name, s.zh, s.label)
        elif name == "segments":
            for t in config.tiers:
                add("tier", t.name, t.zh, t.label)
            for g in config.groups:
                add("group", g.name, g.zh, g.label)
        else:
            for s in config.strategies:
                add("strategy", s.id, s.name.zh, s.name.en)
    return labels
