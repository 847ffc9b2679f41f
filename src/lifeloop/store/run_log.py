"""The lake's run log read back (运行记录): which steps published which day's snapshot, when, how long, how many rows.

Every publish appends one line to ``lake/_runs.jsonl`` (:meth:`lifeloop.store.lake.Lake.publish`: area, as-of,
run id, seconds, wall-clock time, rows) and leaves a manifest beside the snapshot (step, run id, rows, the input
snapshots' run ids, config hashes, the step's summary). :func:`days` folds the log into one row per as-of date,
:func:`day` lays one date out step by step from its manifests and its log lines (a re-run shows as a second
publish of the same area). Nothing here writes; a line that is not JSON (a crash mid-write) is skipped.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from lifeloop.store.lake import BANK, STEP_OF_AREA, Lake

LOG = "_runs.jsonl"
# manifest fields shown per step (the rest — file hashes, encrypted content hashes — is for verifying, not reading)
SHOWN = ("step", "run_id", "rows", "engine", "config_hash")


def entries(root: str | Path) -> list[dict[str, Any]]:
    """Every line of the run log, oldest first (unreadable lines skipped)."""
    path = Path(root) / LOG
    if not path.exists():
        return []
    out = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if isinstance(row, dict) and row.get("area") and row.get("as_of"):
                out.append(row)
    return out


def step_of(area: str) -> str:
    """The step (or the ingest) that publishes an area."""
    return "ingest" if area == BANK else STEP_OF_AREA.get(area, area)


def days(log: Iterable[dict[str, Any]], order: Sequence[str] = ()) -> list[dict[str, Any]]:
    """One row per as-of date, newest first: the steps published (in ``order``, then by name), publishes, rows per
    step, seconds in all, first and last wall-clock time (pure)."""
    rank = {s: i for i, s in enumerate(order)}
    by_day: dict[str, dict[str, Any]] = {}
    for e in log:
        d = by_day.setdefault(e["as_of"], {"as_of": e["as_of"], "publishes": 0, "seconds": 0.0, "rows": {},
                                           "first_at": e.get("at"), "last_at": e.get("at")})
        d["publishes"] += 1
        d["seconds"] += float(e.get("seconds") or 0)
        d["rows"][step_of(e["area"])] = e.get("rows")
        at = e.get("at")
        if at and (d["first_at"] is None or at < d["first_at"]):
            d["first_at"] = at
        if at and (d["last_at"] is None or at > d["last_at"]):
            d["last_at"] = at
    out = []
    for d in by_day.values():
        steps = sorted(d["rows"], key=lambda s: (rank.get(s, len(rank)), s))
        out.append({**d, "seconds": round(d["seconds"], 3), "steps": steps,
                    "rows": {s: d["rows"][s] for s in steps}})
    return sorted(out, key=lambda d: d["as_of"], reverse=True)


def day(lake: Lake, as_of: dt.date, log: Iterable[dict[str, Any]], order: Sequence[str] = ()) -> dict[str, Any]:
    """One as-of date step by step: each area's manifest (step, run id, rows, engine, config hash, the inputs it
    read with their run ids, the step's summary numbers) and every publish of it in the log (re-runs too)."""
    rank = {s: i for i, s in enumerate(order)}
    iso = as_of.isoformat()
    publishes: dict[str, list[dict[str, Any]]] = {}
    for e in log:
        if e["as_of"] == iso:
            publishes.setdefault(e["area"], []).append({k: e.get(k) for k in ("at", "seconds", "rows", "run_id")})
    areas = set(publishes) | {a.name for a in _areas(lake) if lake.exists(a.name, as_of)}
    steps = []
    for area in areas:
        manifest = lake.manifest(area, as_of) if lake.exists(area, as_of) else {}
        inputs = manifest.get("inputs") or {}
        steps.append({
            "area": area, "step": step_of(area), "published": bool(manifest),
            **{k: manifest.get(k) for k in SHOWN if k != "step"},
            "inputs": {k: (v.get("run_id") if isinstance(v, dict) and "run_id" in v else
                           sorted(v) if isinstance(v, dict) else v) for k, v in sorted(inputs.items())},
            "summary": {k: v for k, v in sorted(manifest.items()) if isinstance(v, (int, float)) and
                        not isinstance(v, bool) and k != "rows"},
            "publishes": publishes.get(area, [])})
    steps.sort(key=lambda s: (rank.get(s["step"], len(rank)), s["step"]))
    return {"as_of": iso, "steps": steps}


def _areas(lake: Lake) -> list[Path]:
    root = lake.root
    return [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")] if root.is_dir() else []
