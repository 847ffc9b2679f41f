"""``lifeloop demo``: the main job, end to end on a simulated bank, then weeks of the closed loop.

insight -> strategy -> execution -> review, and back: every simulated day the plan is dispatched to
the simulated bank, the bank lives the day (the contacts change what customers do), its extracts are
ingested and the daily run measures outcomes and plans again. Each day is also replayed as an event stream
through the real-time intake and decider (关键时刻: salary credited 代发到账, large outflow 大额转出), whose
strategies are reviewed on the same board. It ends with the strategy board (post-evaluation with confidence
intervals), the suggestions and a self-contained HTML report.
"""

from __future__ import annotations

import datetime as dt
import shutil
import time
from importlib import resources
from pathlib import Path
from typing import Any

from lifeloop.cli.demo_users import DemoUser, create_demo_users, web_message, write_users_file
from lifeloop.cli.insight import print_insight
from lifeloop.cli.render import print_feature_summary, print_ingest, print_plan, print_steps
from lifeloop.cli.report import report_command
from lifeloop.context import Context
from lifeloop.data.schema import TABLES
from lifeloop.execution.closed_loop import run_loop
from lifeloop.insight.money import workspace_money_tags
from lifeloop.realtime.entries import AREA as MOMENT_ENTRIES
from lifeloop.review import simulator_truth
from lifeloop.review.board import print_board

# the demo bank's response truth (docs/simulator.md, "The demo's truth"): copied into the workspace's demo/
DEMO_TRUTH = Path(str(resources.files("lifeloop") / "templates" / "demo" / "truth.yaml"))

# every channel of the demo workspace delivers to the simulated bank, so its contacts change what
# the bank does next and the following days' extracts show it
DEMO_CHANNELS = """\
# The demo's channels: every contact goes to the simulated bank in extracts/ (docs/execution.md).
version: 1
language: zh
batch_size: 500
max_attempts: 5
replay_at: "19:00"    # the simulated bank lives day D at once: dispatch D as if it were 19:00 on D (local)
channels:
  sms: {kind: simulator, bank: extracts}
  push: {kind: simulator, bank: extracts}
  email: {kind: simulator, bank: extracts}
  wechat: {kind: simulator, bank: extracts}
  call: {kind: simulator, bank: extracts}
  branch: {kind: simulator, bank: extracts}
  rm: {kind: simulator, bank: extracts, worklist_due_in_days: 3}   # the call happens, and is in the RM's worklist
"""


LOOP_DAYS = 21   # three simulated weeks: the board has something true to say and the demo stays under five minutes


def run_demo(out: Any, directory: Path, *, customers: int, days: int, seed: int, loop_days: int = LOOP_DAYS) -> None:
    """Init a workspace, simulate a bank, ingest it, run the daily steps, loop ``loop_days`` days, review."""

    started = time.perf_counter()
    if directory.exists():
        shutil.rmtree(directory)
    ctx = Context.init(directory)
    (ctx.config_dir / "channels.yaml").write_text(DEMO_CHANNELS, encoding="utf-8")
    out.rule("[bold]1. A simulated bank")
    extracts = directory / "extracts"
    truth = simulator_truth.truth_file(directory)   # the bank's response truth: marks the demo workspace
    truth.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(DEMO_TRUTH, truth)
    sim = ctx.simulate(extracts, customers=customers, days=days, seed=seed, truth=truth)
    out.print(sim.describe())
    as_of: dt.date = sim.as_of

    out.rule("[bold]2. Ingest (map -> validate -> publish atomically)")
    print_ingest(out, ctx.ingest(extracts, as_of=as_of))

    with ctx:
        _churn_model(out, ctx, as_of)
        out.rule(f"[bold]3. Daily run as of {as_of}")
        results = ctx.run(as_of)
        print_steps(out, results)
        out.rule("[bold]4. Feature summary (标签)")
        print_feature_summary(out, ctx.features(as_of), workspace_money_tags(ctx.configs))
        out.rule("[bold]5. Customer insight (客户洞察)")

        print_insight(out, ctx.insight(as_of))
        out.rule("[bold]6. Today's plan (策略执行名单)")
        print_plan(out, ctx.lists(as_of), as_of)
        out.rule(f"[bold]7. The closed loop: dispatch -> the bank lives a day -> ingest -> outcomes -> plan "
                 f"({loop_days} days)")
        last = _loop(out, ctx, extracts, as_of, loop_days)
        out.rule(f"[bold]8. Post-evaluation (策略后评估) as of {last}")

        out.print("Windows of 30-90 days are still running after a few weeks: the board is interim (every entry "
                  "measured to date, treated and control over the same days). `lifeloop evaluate` alone shows "
                  "closed windows only.")
        board = ctx.evaluate(interim=True)
        print_board(out, board)
        print_realtime_review(out, ctx, board, last)
        out.rule("[bold]9. The report")
        report = _report(out, ctx, directory, last)
        users = create_demo_users(ctx)
    users_file = write_users_file(directory, users, WEB_URL)
    out.print(f"\nDemo finished in {time.perf_counter() - started:.1f}s. Workspace: {directory.resolve()}")
    for line in final_message(_exe(), directory, report, users_file, users, as_of):
        out.print(line)


WEB_URL = "http://127.0.0.1:8000/"   # `lifeloop serve`'s default address and port


def _exe() -> str:
    """The command as it was started (after `make demo` that is .venv/bin/lifeloop, not on the PATH)."""
    import sys

    return sys.argv[0] if sys.argv and Path(sys.argv[0]).name == "lifeloop" else "lifeloop"


def final_message(exe: str, directory: Path, report: Path, users_file: Path, users: list[DemoUser],
                  as_of: dt.date) -> list[str]:
    """The demo's last lines: the report, what to try, how to open the web app and where its users are."""
    return [f"Report: {report.resolve()}  (open it in a browser; it works offline)",
            f"Try: {exe} -w {directory} evaluate dormant_reactivation --interim   |   "
            f"{exe} -w {directory} insight   |   "
            f"{exe} -w {directory} customer C000000042   |   {exe} -w {directory} why C000000042 --as-of {as_of}",
            *web_message(exe, directory, users_file, users, WEB_URL)]


HISTORY_STEP_DAYS = 45      # the history is filed as batches this far apart ...
HISTORY_BATCHES = 4         # ... this many before the as-of date: two 90-day label windows (fit + out-of-time test)


def _churn_model(out: Any, ctx: Any, as_of: dt.date) -> None:
    """Fit the churn warning (流失预警) on the simulated history and make it active, before the loop.

    The simulated history arrives as one extract; it is filed as batches 45 days apart with disjoint facts (as
    such extracts would have arrived), features and stages are backfilled on those dates, and the churn
    model is fitted as of D (labels only from snapshots on or before D, validated out of time against the
    ``declining`` rule) and promoted, so the daily scores step scores every customer and the churn-warning
    strategy's model cell (``score('churn') >= ...``) is compared with its rule cell (``stage = 'declining'``)."""
    cuts = sorted(as_of - dt.timedelta(days=HISTORY_STEP_DAYS * k) for k in range(1, HISTORY_BATCHES + 1))
    out.rule("[bold]2b. The churn warning model (流失预警模型) on the history")
    started = time.perf_counter()
    file_history(ctx.lake, as_of, cuts)
    ctx.backfill(cuts, steps=("features", "lifecycle"))
    manifest = ctx.fit_model("churn", as_of)
    ctx.promote_model("churn", manifest["version"], reason="demo: fitted on the simulated history, validated out "
                                                           "of time")
    v = manifest.get("validation") or {}
    model, rule = v.get("model") or {}, v.get("rule_declining") or {}
    out.print(f"History filed as {len(cuts) + 1} batches ({cuts[0]} .. {as_of}); features and stages backfilled on "
              f"{len(cuts)} dates; churn model {manifest['version']} fitted as of {as_of} and made active "
              f"({time.perf_counter() - started:.0f}s).")
    auc, rule_auc = (model.get("auc") or {}).get("value"), (rule.get("auc") or {}).get("value")
    if auc is not None and rule_auc is not None:
        out.print(f"Out of time: AUC {auc:.3f} for the model against {rule_auc:.3f} for the rule "
                  "stage = 'declining'. The churn-warning strategy (churn_warning) puts both to the test: its cell "
                  "`model` selects by the score, its cell `rule` by the stage, with one shared holdout.")


def file_history(lake: Any, last: dt.date, cuts: list[dt.date]) -> None:
    """File the one ingested bank batch of ``last`` as batches on ``cuts`` and ``last`` with disjoint facts.

    Fact rows (dated) go to the batch of the first cut on or after their date; reference tables (customers,
    products, ...) go to every batch. The bank's views as of D read every fact batch on or before D, so D's
    view is unchanged on ``last`` and exists on each cut (features and stages can be computed there)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    folder = lake.snapshot_dir("bank", last)
    tables = {f.stem: lake.read_table(f) for f in folder.glob("*.parquet")}
    bounds = [None, *sorted(cuts), last]
    for low, high in zip(bounds, bounds[1:], strict=False):
        def write(staging: Path, low: dt.date | None = low, high: dt.date = high) -> None:
            for name, t in tables.items():
                column = TABLES[name].date_column if name in TABLES else None
                if column:
                    keep = pc.less_equal(t[column], pa.scalar(high, type=t[column].type))
                    if low is not None:
                        keep = pc.and_(keep, pc.greater(t[column], pa.scalar(low, type=t[column].type)))
                    t = t.filter(keep)
                lake.write_table(staging / f"{name}.parquet", t, name)
        lake.publish("bank", high, write)


def _loop(out: Any, ctx: Any, extracts: Path, first: dt.date, loop_days: int) -> dt.date:
    """Run the closed loop; print one line per simulated week. Returns the last as-of date."""

    out.print("Each day: the lists go to the simulated bank (controls are only recorded), the bank lives the day, "
              "its extracts are ingested, the day is replayed as events through the real-time decider (moments: "
              "salary credited, large outflow), outcomes are measured and tomorrow is planned.")
    week: list[Any] = []
    weeks = [0]

    def close_week() -> None:
        if not week:
            return
        weeks[0] += 1
        plans = [next((r.summary for r in d.results if r.step == "plan"), {}) for d in week]
        treated = sum(p.get("status", {}).get("contact", 0) for p in plans)
        held = sum(p.get("status", {}).get("control", 0) for p in plans)
        conv = {k: sum(d.conversions.get(k, 0) for d in week) for k in ("treated", "control", "organic")}
        out.print(f"  week {weeks[0]}: {week[0].bank_day} .. {week[-1].bank_day}: {treated:,} contacted, {held:,} held "
                  f"out; the bank saw {conv['treated']:,} conversions after a contact, {conv['control']:,} in control "
                  f"groups, {conv['organic']:,} on their own ({sum(d.seconds for d in week):.0f}s)")
        out.print("          " + realtime_week([d.events for d in week if d.events is not None]))
        week.clear()

    def on_day(day: Any) -> None:
        if day.truth is not None:   # what the simulator knew of the day's contacts: the board's truth column
            simulator_truth.record_contacts(ctx.workspace, day.as_of, day.truth)
        week.append(day)
        if len(week) == 7:
            close_week()

    days = run_loop(ctx, extracts, first, loop_days, on_day=on_day, realtime=True, truth=True)
    close_week()
    return days[-1].bank_day if days else first


def realtime_week(days: list[Any]) -> str:
    """One line: what the real-time decider did with a week of replayed events."""
    from collections import Counter

    outcomes: Counter = Counter()
    for d in days:
        outcomes.update(d.decided.outcomes)
    sent = sum(d.decided.drain.sent for d in days)
    return (f"real time: {sum(d.events for d in days):,} events replayed, {sum(d.decided.moments for d in days):,} "
            f"moments; decisions " + (", ".join(f"{k} {v:,}" for k, v in sorted(outcomes.items())) or "none")
            + f"; {sent:,} contacts sent ({sum(d.seconds for d in days):.0f}s)")


def print_realtime_review(out: Any, ctx: Any, board: dict[str, Any], as_of: dt.date) -> None:
    """The real-time strategies' lines of the board, and how many of their entries the decider made."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    if not ctx.lake.exists(MOMENT_ENTRIES, as_of):
        out.print("No real-time entries were published: no moment reached a strategy's audience.")
        return
    rt = pq.read_table(ctx.lake.snapshot_file(MOMENT_ENTRIES, as_of))
    for s in board["strategies"]:
        mine = rt.filter(pc.equal(rt["strategy"], s["strategy"]))
        if not mine.num_rows:
            continue
        arms = {a: int(pc.sum(pc.equal(mine["group"], a)).as_py() or 0) for a in ("treated", "control")}
        e = s["entries"]
        out.print(f"Real time (关键时刻): {s['strategy']} — {mine.num_rows:,} entries decided in real time at the "
                  f"event's time ({arms['treated']:,} treated, {arms['control']:,} control); on the board "
                  f"{e['treated']:,} treated / {e['control']:,} control, verdict {s['verdict']}. "
                  f"`lifeloop why CUSTOMER --as-of DAY` shows a customer's real-time decisions.")


def _report(out: Any, ctx: Any, directory: Path, as_of: dt.date) -> Path:
    """Write the HTML report (interim, like the board printed) into the workspace."""

    path = directory / "report.html"
    report_command(ctx, out, path, as_of, None, interim=True)
    return path
