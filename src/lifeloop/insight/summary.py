"""The insight summary (客户洞察概览) as data: stages with changes, tiers and segments with AUM,
cluster profiles and holdings findings.

:func:`summarise` is pure (Arrow tables and configs in, plain dicts out, JSON-ready); :func:`build`
reads the published snapshots of a workspace. The CLI renders the result; the web UI will take the
same dict as JSON.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from lifeloop.config.lifecycle import LifecycleConfig
from lifeloop.config.segments import SegmentsConfig
from lifeloop.errors import DataError
from lifeloop.insight import clusters, holdings
from lifeloop.insight.transitions import share

if TYPE_CHECKING:
    import pyarrow as pa


def _counts(table: pa.Table | None, column: str) -> dict[Any, int]:
    if table is None or table.num_rows == 0:
        return {}
    return {r["values"]: int(r["counts"]) for r in table[column].value_counts().to_pylist()}


def _money(value: Any) -> float:
    return float(round(Decimal(value or 0), 2))



def stage_distribution(current: pa.Table, previous: pa.Table | None,
                       config: LifecycleConfig) -> list[dict[str, Any]]:
    """Customers per stage (display order), with the previous snapshot's count and the change."""
    now, before = _counts(current, "stage"), _counts(previous, "stage")
    total = current.num_rows
    names = [s.name for s in config.stages] + sorted(set(now) - {s.name for s in config.stages})
    out = []
    for name in names:
        s = config.stage(name)
        row: dict[str, Any] = {"stage": name, "zh": s.zh if s else "", "label": (s.label if s else "") or name,
                               "customers": now.get(name, 0), "share": share(now.get(name, 0), total)}
        if previous is not None:
            row["previous"] = before.get(name, 0)
            row["change"] = now.get(name, 0) - before.get(name, 0)
        out.append(row)
    return out


def rule_counts(current: pa.Table, config: LifecycleConfig) -> list[dict[str, Any]]:
    """Customers per deciding rule, in decision order (why customers are where they are)."""
    counts = _counts(current, "rule")
    return [{"rule": r.rule, "stage": r.stage, "customers": counts.get(r.rule, 0)} for r in config.rules]


def _money_by(table: pa.Table, key: str) -> dict[Any, float]:
    grouped = table.group_by(key).aggregate([("aum", "sum")]).to_pylist()
    return {r[key]: _money(r["aum_sum"]) for r in grouped}


def segment_sizes(segments: pa.Table, config: SegmentsConfig) -> dict[str, list[dict[str, Any]]]:
    """Tier, group and micro-segment sizes, each with customers, AUM and shares of the bank's total."""
    import pyarrow.compute as pc

    total = segments.num_rows
    total_aum = _money(pc.sum(segments["aum"]).as_py())
    counts, aum = _counts(segments, "tier"), _money_by(segments, "tier")
    tiers = [{"tier": t.name, "zh": t.zh, "label": t.label or t.name, "min": t.min, "max": t.max,
              "customers": counts.get(t.name, 0), "share": share(counts.get(t.name, 0), total),
              "aum": aum.get(t.name, 0.0), "aum_share": share(aum.get(t.name, 0.0), total_aum)}
             for t in sorted(config.tiers, key=lambda t: t.min)]

    def flagged(prefix: str, rules: list) -> list[dict[str, Any]]:
        rows = []
        for r in rules:
            mask = pc.fill_null(segments[prefix + r.name], False)
            inside = segments.filter(mask)
            rows.append({"name": r.name, "zh": r.zh, "label": r.label or r.name, "customers": inside.num_rows,
                         "share": share(inside.num_rows, total),
                         "aum": _money(pc.sum(inside["aum"]).as_py()) if inside.num_rows else 0.0})
        return rows

    return {"tiers": tiers, "groups": flagged("seg_", config.groups),
            "micro_segments": flagged("micro_", config.micro_segments),
            "totals": {"customers": total, "aum": total_aum}}


def summarise(as_of: dt.date, lifecycle: pa.Table, lifecycle_config: LifecycleConfig,
              previous: pa.Table | None = None, previous_as_of: dt.date | None = None,
              segments: pa.Table | None = None, segments_config: SegmentsConfig | None = None) -> dict[str, Any]:
    """The whole summary as plain data (dates as ISO text, money as numbers)."""
    out: dict[str, Any] = {
        "as_of": as_of.isoformat(),
        "previous_as_of": previous_as_of.isoformat() if previous_as_of else None,
        "customers": lifecycle.num_rows,
        "stages": stage_distribution(lifecycle, previous, lifecycle_config),
        "rules": rule_counts(lifecycle, lifecycle_config),
    }
    if segments is not None and segments_config is not None:
        out.update(segment_sizes(segments, segments_config))
    return out


def build(ctx: Any, as_of: dt.date | None = None) -> dict[str, Any]:
    """Read the published lifecycle and segments snapshots of a workspace and summarise them."""
    import pyarrow.parquet as pq


    lake = ctx.lake
    dates = lake.dates("lifecycle")
    if not dates:
        raise DataError("no lifecycle snapshot has been published yet",
                        hint="run `lifeloop run --as-of DATE` (features, lifecycle and segments steps) first")
    as_of = as_of or dates[-1]
    current = pq.read_table(lake.snapshot_file("lifecycle", as_of))
    prev = lake.previous_date("lifecycle", as_of)
    previous = pq.read_table(lake.snapshot_file("lifecycle", prev)) if prev else None
    lc_config, _ = ctx.load_config("lifecycle", LifecycleConfig)
    segments = seg_config = None
    if lake.exists("segments", as_of):
        segments = pq.read_table(lake.snapshot_file("segments", as_of))
        seg_config, _ = ctx.load_config("segments", SegmentsConfig)
    out = summarise(as_of, current, lc_config, previous, prev, segments, seg_config)
    out["warnings"] = list(lake.manifest("lifecycle", as_of).get("warnings", []))
    if segments is not None:
        out["warnings"] += lake.manifest("segments", as_of).get("warnings", [])
    else:
        out["warnings"].append(f"no segments snapshot as of {as_of}: run the segments step for tiers and groups")
    add_clusters_and_holdings(ctx, as_of, out, segments)
    return out


def add_clusters_and_holdings(ctx: Any, as_of: dt.date, out: dict[str, Any],
                              segments: pa.Table | None = None) -> None:
    """Add cluster profiles (``clusters``) and the holdings analysis (``holdings``) when their inputs exist."""

    profiles = clusters.profiles(ctx, as_of)
    if profiles is not None:
        out["clusters"] = profiles
    else:
        out["warnings"].append(f"no clusters snapshot as of {as_of}: run the clusters step for cluster profiles")
    analysis = holdings.build(ctx, as_of, segments)  # the snapshot build() already read
    if analysis is not None:
        out["holdings"] = analysis
