"""Shared by the review-vs-truth tests: one simulated bank, many what-if branches of its future.

``base_workspace`` simulates and ingests one bank and runs the insight steps on its last day.
``branch`` copies it (Parquet files hard-linked: they are never written in place), gives the branch
its own holdout salt and its own chance in the simulator (``SimulatedBank.reseed``), plans and
dispatches the day, lets the bank live ``observe`` days (contacts' true effect recorded by the
simulator), measures outcomes and reviews them. ``true_uplift`` turns the recorded effects into the
true uplift of each strategy on the same entries and windows the review measured.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from lifeloop.cli.demo import DEMO_CHANNELS
from lifeloop.context import Context

CONVERSION_DAYS = 30  # the simulator spreads a decided conversion evenly over the 30 days after the contact


def base_workspace(root: Path, customers: int, seed: int = 11, days: int = 400) -> tuple[Path, dt.date]:
    """A workspace with a simulated bank ingested and the insight steps run on its last day."""
    ctx = Context.init(root)
    (ctx.config_dir / "channels.yaml").write_text(DEMO_CHANNELS, encoding="utf-8")
    sim = ctx.simulate(root / "extracts", customers=customers, days=days, seed=seed)
    ctx.ingest(root / "extracts", as_of=sim.as_of)
    with ctx:
        ctx.run(sim.as_of, steps=["features", "lifecycle", "segments"])
    return root, sim.as_of


def _link_parquet(src: str, dst: str) -> None:
    if src.endswith(".parquet"):
        os.link(src, dst)
    else:
        shutil.copy2(src, dst)


def branch(base: Path, dest: Path, seed: int, as_of: dt.date, observe: int, *, entry_days: int = 1,
           holdout: float | None = None, edit_lists: Any = None) -> dict[str, Any]:
    """Plan with salt ``seed`` for ``entry_days`` days, then live ``observe`` more days, and review (interim).

    ``holdout`` sets every strategy's control share (a larger control group makes tighter intervals)."""
    import re

    import pyarrow.parquet as pq

    from lifeloop.data.simulator import SimulatedBank
    from lifeloop.execution.closed_loop import run_loop

    shutil.copytree(base, dest, copy_function=_link_parquet)
    strategies = dest / "config" / "strategies.yaml"
    text = strategies.read_text(encoding="utf-8")
    text = text.replace("holdout_salt: lifeloop-2024", f"holdout_salt: truth-{seed}")
    if holdout is not None:
        text = re.sub(r"(?m)^(    holdout: )[0-9.]+", rf"\g<1>{holdout}", text)
    strategies.write_text(text, encoding="utf-8")
    SimulatedBank.open(dest / "extracts").reseed(10_000 + seed)
    ctx = Context(dest)
    with ctx:
        ctx.run(as_of, steps=["audiences", "plan"])
        if edit_lists is not None:
            edit_lists(ctx, as_of)
        ctx.run(as_of, steps=["dispatch"])
        days = run_loop(ctx, dest / "extracts", as_of, entry_days - 1, truth=True)
        days += run_loop(ctx, dest / "extracts", days[-1].bank_day if days else as_of, observe, steps=(), truth=True)
        last = days[-1].bank_day
        ctx.run(last, steps=["outcomes"])
        doc = ctx.evaluate(interim=True)
        outcomes = pq.read_table(ctx.lake.snapshot_dir("outcomes", last) / "outcomes.parquet")
    effects = [d.truth.append_column("as_of", pa.array([d.as_of] * d.truth.num_rows, pa.date32()))
               for d in days if d.truth is not None]
    return {"doc": doc, "outcomes": outcomes, "effects": pa.concat_tables(effects) if effects else None}


def true_uplift(outcomes: pa.Table, effects: pa.Table | None, money: bool = False) -> dict[str, float]:
    """Per strategy: mean true incremental conversions (or money) of treated entries minus control entries.

    Every contact the simulator saw for the entry's customer and offer counts (another strategy's too),
    weighted by the share of its 30 conversion days that falls inside the entry's observed window."""
    by_customer: dict[tuple[str, str], list[tuple[dt.date, float]]] = {}
    if effects is not None:
        value = "incremental_money" if money else "incremental_conversions"
        for c, o, d, v in zip(effects["customer_id"].to_pylist(), effects["offer"].to_pylist(),
                              effects["as_of"].to_pylist(), effects[value].to_pylist(), strict=False):
            if v:
                by_customer.setdefault((c, o), []).append((d, float(v)))
    sums: dict[str, dict[str, list[float]]] = {}
    for s, c, offer, entry, seen, arm in zip(*(outcomes[k].to_pylist() for k in (
            "strategy", "customer_id", "offer", "entry_date", "observed_through", "arm")), strict=False):
        total = 0.0
        for d, v in by_customer.get((c, offer), []):
            if d >= entry:
                total += v * min(max((seen - d).days, 0), CONVERSION_DAYS) / CONVERSION_DAYS
        sums.setdefault(s, {}).setdefault(arm, []).append(total)
    return {s: float(np.mean(a.get("treated", [0.0]))) - float(np.mean(a.get("control", [0.0])))
            for s, a in sums.items() if a.get("treated") and a.get("control")}


def comparison(doc: dict[str, Any], strategy: str, outcome: str) -> dict[str, Any] | None:
    """The treated-vs-control comparison of one outcome of one strategy in a review, if evaluated."""
    s = next((x for x in doc["strategies"] if x["strategy"] == strategy), None)
    if s is None or s["evaluation"] is None:
        return None
    o = next((x for x in s["evaluation"]["outcomes"] if x["name"] == outcome), None)
    return None if o is None else o["versus_control"][0]
