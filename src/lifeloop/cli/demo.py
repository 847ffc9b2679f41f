"""``lifeloop demo``: the main job, end to end on a simulated bank."""

from __future__ import annotations

import datetime as dt
import shutil
import time
from pathlib import Path
from typing import Any


def run_demo(out: Any, directory: Path, *, customers: int, days: int, seed: int) -> None:
    """Init a workspace, simulate a bank, ingest it, compute features and print summaries."""
    from lifeloop.cli.render import print_feature_summary, print_ingest, print_steps
    from lifeloop.context import Context

    started = time.perf_counter()
    if directory.exists():
        shutil.rmtree(directory)
    ctx = Context.init(directory)
    out.rule("[bold]1. A simulated bank")
    extracts = directory / "extracts"
    sim = ctx.simulate(extracts, customers=customers, days=days, seed=seed)
    out.print(sim.describe() if hasattr(sim, "describe") else sim)
    as_of: dt.date = sim.as_of

    out.rule("[bold]2. Ingest (map -> validate -> publish atomically)")
    print_ingest(out, ctx.ingest(extracts, as_of=as_of))

    with ctx:
        out.rule(f"[bold]3. Daily run as of {as_of}")
        print_steps(out, ctx.run(as_of))
        out.rule("[bold]4. Feature summary (标签)")
        print_feature_summary(out, ctx.features(as_of))
        out.rule("[bold]5. Customer insight (客户洞察)")
        from lifeloop.cli.insight import print_insight

        print_insight(out, ctx.insight(as_of))
        out.rule("[bold]6. Today's plan (策略执行名单)")
        from lifeloop.cli.render import print_plan

        print_plan(out, ctx.lists(as_of), as_of)
    out.print(f"\nDemo finished in {time.perf_counter() - started:.1f}s. Workspace: {directory.resolve()}")
    out.print(f"Try: lifeloop -w {directory} features --as-of {as_of}")
