"""``lifeloop demo``: the main job, end to end on a simulated bank, then a few days of the loop."""

from __future__ import annotations

import datetime as dt
import shutil
import time
from pathlib import Path
from typing import Any

# every channel of the demo workspace delivers to the simulated bank, so its contacts change what
# the bank does next and the following days' extracts show it
DEMO_CHANNELS = """\
# The demo's channels: every contact goes to the simulated bank in extracts/ (docs/execution.md).
version: 1
language: zh
batch_size: 500
max_attempts: 5
channels:
  sms: {kind: simulator, bank: extracts}
  push: {kind: simulator, bank: extracts}
  email: {kind: simulator, bank: extracts}
  wechat: {kind: simulator, bank: extracts}
  call: {kind: simulator, bank: extracts}
  branch: {kind: simulator, bank: extracts}
  rm: {kind: simulator, bank: extracts}
"""


def run_demo(out: Any, directory: Path, *, customers: int, days: int, seed: int, loop_days: int = 5) -> None:
    """Init a workspace, simulate a bank, ingest it, run the daily steps, then loop a few days."""
    from lifeloop.cli.render import print_feature_summary, print_ingest, print_plan, print_steps
    from lifeloop.context import Context

    started = time.perf_counter()
    if directory.exists():
        shutil.rmtree(directory)
    ctx = Context.init(directory)
    (ctx.config_dir / "channels.yaml").write_text(DEMO_CHANNELS, encoding="utf-8")
    out.rule("[bold]1. A simulated bank")
    extracts = directory / "extracts"
    sim = ctx.simulate(extracts, customers=customers, days=days, seed=seed)
    out.print(sim.describe() if hasattr(sim, "describe") else sim)
    as_of: dt.date = sim.as_of

    out.rule("[bold]2. Ingest (map -> validate -> publish atomically)")
    print_ingest(out, ctx.ingest(extracts, as_of=as_of))

    with ctx:
        out.rule(f"[bold]3. Daily run as of {as_of}")
        results = ctx.run(as_of)
        print_steps(out, results)
        out.rule("[bold]4. Feature summary (标签)")
        print_feature_summary(out, ctx.features(as_of))
        out.rule("[bold]5. Customer insight (客户洞察)")
        from lifeloop.cli.insight import print_insight

        print_insight(out, ctx.insight(as_of))
        out.rule("[bold]6. Today's plan (策略执行名单)")
        print_plan(out, ctx.lists(as_of), as_of)
        out.rule(f"[bold]7. The loop: plan -> dispatch -> the bank lives a day -> ingest ({loop_days} days)")
        _loop(out, ctx, extracts, as_of, loop_days, results)
    out.print(f"\nDemo finished in {time.perf_counter() - started:.1f}s. Workspace: {directory.resolve()}")
    import sys

    # the command as it was started (after `make demo` that is .venv/bin/lifeloop, not on the PATH)
    exe = sys.argv[0] if sys.argv and Path(sys.argv[0]).name == "lifeloop" else "lifeloop"
    out.print(f"Try: {exe} -w {directory} insight   |   {exe} -w {directory} customer C000000042   |   "
              f"{exe} -w {directory} why C000000042 --as-of {as_of}")


def _loop(out: Any, ctx: Any, extracts: Path, first: dt.date, loop_days: int, results: list[Any]) -> None:
    """Each day: dispatch what was planned, let the bank live the day, ingest it, plan again."""
    from rich.table import Table

    from lifeloop.cli.render import plan_rows
    from lifeloop.execution.channels.simulator import deliver

    table = Table(title="What was sent, day by day (treated contacts go to the bank; controls are only recorded)",
                  title_justify="left")
    for col in ("as of", "planned", "held out", "dropped", "sent", "blocked", "bank's next day", "conversions"):
        table.add_column(col, justify="left" if col in ("as of", "bank's next day") else "right")
    as_of, day = first, None
    for i in range(loop_days + 1):
        if day is not None:  # the bank lived yesterday: load its new day, then run today
            ctx.ingest(day.folder, as_of=day.date)
            as_of = day.date
            results = ctx.run(as_of)
        rows = plan_rows(ctx.lists(as_of))
        # the daily run's last step dispatched the lists; its summary says what went out
        summary = next(r for r in results if r.step == "dispatch").summary
        if i == loop_days:
            table.add_row(as_of.isoformat(), f"{sum(r['treated'] for r in rows):,}",
                          f"{sum(r['control'] for r in rows):,}", f"{sum(r['dropped'] for r in rows):,}",
                          f"{summary['sent']:,}", f"{summary['blocked']:,}", "(stops here)", "")
            break
        day = deliver(extracts)
        conversions = sum(day.conversions.values()) if day.conversions else 0
        table.add_row(as_of.isoformat(), f"{sum(r['treated'] for r in rows):,}",
                      f"{sum(r['control'] for r in rows):,}", f"{sum(r['dropped'] for r in rows):,}",
                      f"{summary['sent']:,}", f"{summary['blocked']:,}", day.date.isoformat(), f"{conversions:,}")
    out.print(table)
    out.print("Post-evaluation of these contacts against their control groups comes with the review step "
              "(`lifeloop evaluate`); a campaign run elsewhere can already be evaluated with --from-file.")
