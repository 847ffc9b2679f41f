"""Strategy-map coverage (策略覆盖): which segment x lifecycle-stage cells the day's strategies reach.

Rows are segments — each value tier (价值分层) and each featured group (特色客群, the ``seg_<name>``
columns of the segments snapshot; a customer is in one tier and any number of groups, so a customer
counts once per row they belong to). Columns are lifecycle stages. Each cell holds its customers and
AUM on D and, from the day's audiences snapshot, how many of them each strategy reaches.

* A **gap** is a cell no strategy reaches although it holds at least ``gap_min_customers``
  customers or ``gap_min_aum`` of AUM (``coverage:`` in strategies.yaml).
* An **overlap** is a cell where at least ``overlap_min_customers`` customers qualify for two or more
  strategies the same day; from the day's lists it says which strategy won (was contacted) how often.

Pure functions over Arrow tables; the CLI (``lifeloop strategies --coverage``) reads the snapshots.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from lifeloop.config.strategies import CoverageSettings

if TYPE_CHECKING:
    import pyarrow as pa

GROUP_PREFIX = "seg_"


def memberships(segments: pa.Table, lifecycle: pa.Table) -> list[tuple[str, str, str, str, float]]:
    """(customer, segment kind, segment, stage, AUM) for every tier and featured group a customer is in."""
    import pyarrow.compute as pc

    stage = dict(zip(lifecycle["customer_id"].to_pylist(), lifecycle["stage"].to_pylist(), strict=False))
    ids = segments["customer_id"].to_pylist()
    aum = [float(x or 0) for x in pc.cast(segments["aum"], "float64").to_pylist()] if "aum" in segments.column_names \
        else [0.0] * len(ids)
    out = []
    for c, tier, a in zip(ids, segments["tier"].to_pylist(), aum, strict=False):
        out.append((c, "tier", tier or "(none)", stage.get(c) or "(none)", a))
    for col in segments.column_names:
        if col.startswith(GROUP_PREFIX):
            name = col[len(GROUP_PREFIX):]
            for c, flag, a in zip(ids, segments[col].to_pylist(), aum, strict=False):
                if flag:
                    out.append((c, "group", name, stage.get(c) or "(none)", a))
    return out


def coverage(segments: pa.Table, lifecycle: pa.Table, audiences: pa.Table, lists: pa.Table | None,
             settings: CoverageSettings, as_of: dt.date, stage_order: Sequence[str] = ()) -> dict[str, Any]:
    """The coverage matrix with gaps and overlaps (JSON-ready)."""
    reach: dict[str, set[str]] = defaultdict(set)
    for c, s in zip(audiences["customer_id"].to_pylist(), audiences["strategy"].to_pylist(), strict=False):
        reach[c].add(s)
    contacted: dict[str, list[str]] = defaultdict(list)
    if lists is not None:
        for c, s, st in zip(lists["customer_id"].to_pylist(), lists["strategy"].to_pylist(),
                            lists["status"].to_pylist(), strict=False):
            if st == "contact":
                contacted[c].append(s)
    cells: dict[tuple[str, str, str], dict[str, Any]] = {}
    for c, kind, seg, stage, a in memberships(segments, lifecycle):
        cell = cells.setdefault((kind, seg, stage), {"kind": kind, "segment": seg, "stage": stage, "customers": 0,
                                                     "aum": 0.0, "strategies": Counter(), "contested": 0,
                                                     "wins": Counter()})
        cell["customers"] += 1
        cell["aum"] += a
        mine = reach.get(c, set())
        cell["strategies"].update(mine)
        if len(mine) >= 2:
            cell["contested"] += 1
            cell["wins"].update(s for s in contacted.get(c, []) if s in mine)
    rows, gaps, overlaps = [], [], []
    for key in sorted(cells, key=lambda k: (k[0] != "tier", k[1], _stage_rank(k[2], stage_order))):
        cell = cells[key]
        out = {"kind": cell["kind"], "segment": cell["segment"], "stage": cell["stage"],
               "customers": cell["customers"], "aum": round(cell["aum"], 2),
               "strategies": dict(sorted(cell["strategies"].items())), "contested": cell["contested"],
               "wins": dict(sorted(cell["wins"].items()))}
        rows.append(out)
        big = cell["customers"] >= settings.gap_min_customers or cell["aum"] >= settings.gap_min_aum
        if not cell["strategies"] and big:
            gaps.append({k: out[k] for k in ("kind", "segment", "stage", "customers", "aum")})
        if cell["contested"] >= settings.overlap_min_customers:
            wins = cell["wins"]
            overlaps.append({k: out[k] for k in ("kind", "segment", "stage", "contested", "strategies", "wins")}
                            | {"winner": max(sorted(wins), key=lambda s: wins[s]) if wins else None})
    gaps.sort(key=lambda g: (-g["aum"], -g["customers"]))
    overlaps.sort(key=lambda o: -o["contested"])
    stages = [s for s in stage_order if any(r["stage"] == s for r in rows)]
    stages += sorted({r["stage"] for r in rows} - set(stages))
    segs = list(dict.fromkeys((r["kind"], r["segment"]) for r in rows))
    return {"as_of": as_of.isoformat(), "stages": stages, "segments": [{"kind": k, "segment": s} for k, s in segs],
            "cells": rows, "gaps": gaps, "overlaps": overlaps,
            "thresholds": settings.model_dump()}


def _stage_rank(stage: str, order: Sequence[str]) -> tuple[int, str]:
    return (list(order).index(stage), "") if stage in order else (len(order), stage)
