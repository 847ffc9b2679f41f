"""The review evaluates a real-time strategy like the others: the simulated bank's days replayed as events through
intake and the decider (salary day, 代发到账), its treated and control entries entering at the event's date, the
contacts delivered to the bank, and the outcomes and the board counting exactly the decider's entries."""

from __future__ import annotations

import csv

import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from lifeloop.cli.demo import DEMO_CHANNELS
from lifeloop.context import Context
from lifeloop.execution.closed_loop import run_loop
from lifeloop.realtime.entries import AREA
from lifeloop.store.ops.models import Dispatch, Moment, MomentDecision

STRATEGY = "payroll_salary_day"
INSIGHT = ["features", "lifecycle", "segments"]


@pytest.mark.slow
def test_a_real_time_strategy_is_reviewed_from_the_deciders_entries(tmp_path):
    ctx = Context.init(tmp_path / "ws")
    (ctx.config_dir / "channels.yaml").write_text(DEMO_CHANNELS, encoding="utf-8")
    extracts = tmp_path / "ws" / "extracts"
    sim = ctx.simulate(extracts, customers=1000, days=150, seed=11)
    ctx.ingest(extracts, as_of=sim.as_of)
    ctx.run(sim.as_of, steps=INSIGHT)
    # no batch plan at all: every entry of the strategy is the real-time decider's
    days = run_loop(ctx, extracts, sim.as_of, 10, steps=(*INSIGHT, "outcomes", "timers"), realtime=True)
    last = days[-1].bank_day
    assert all(d.events is not None and d.events.events == d.events.accepted for d in days)
    assert sum(d.events.decided.moments for d in days) > 0

    with ctx.ops()() as s:
        made = s.execute(sa.select(MomentDecision.customer_id, Moment.local_date, MomentDecision.outcome,
                                   MomentDecision.dispatch_key)
                         .join(Moment, Moment.moment_key == MomentDecision.moment_key)
                         .where(MomentDecision.strategy_id == STRATEGY,
                                MomentDecision.outcome.in_(("treated", "control")))).all()
    entered = {(c, d, o) for c, d, o, _ in made if d < last}
    arms = {o for _, _, o in entered}
    assert arms == {"treated", "control"}, arms
    # the treated contacts that went out reached the simulated bank (its delivered log and today's inbox), and
    # the control group was only recorded there (treated false), as the batch's controls are
    logs = [*(extracts / "_inbox" / "delivered").glob("*.csv"), extracts / "_inbox" / "contacts.csv"]
    delivered: dict[str, str] = {}
    for f in logs:
        if f.exists():
            with f.open(encoding="utf-8") as fh:
                delivered.update({r["key"]: r["treated"] for r in csv.DictReader(fh)})
    with ctx.ops()() as s:
        sent = set(s.scalars(sa.select(Dispatch.idempotency_key).where(Dispatch.strategy_id == STRATEGY,
                                                                        Dispatch.status == "sent")))
    treated_keys = {k for _, _, o, k in made if o == "treated"}
    control_keys = {k for _, _, o, k in made if o == "control"}
    assert sent and sent <= treated_keys
    assert {k for k, t in delivered.items() if t == "true" and k in treated_keys} == sent
    assert {k for k, t in delivered.items() if t == "false" and k in control_keys} == control_keys

    # published for the review, and measured: the outcomes' entries of the strategy are exactly the decider's
    assert ctx.lake.exists(AREA, last)
    outcomes = pq.read_table(ctx.lake.snapshot_file("outcomes", last)).to_pylist()
    mine = {(r["customer_id"], r["entry_date"], r["arm"]) for r in outcomes if r["strategy"] == STRATEGY}
    assert mine == entered
    assert all(r["window_days"] == 30 and r["offer"] == "WM030" for r in outcomes if r["strategy"] == STRATEGY)
    manifest = ctx.lake.manifest("outcomes", last)
    assert manifest["inputs"][AREA]["as_of"] == last.isoformat()

    board = ctx.evaluate([STRATEGY], interim=True)
    [row] = board["strategies"]
    assert (row["entries"]["treated"], row["entries"]["control"]) == (
        sum(o == "treated" for *_, o in entered), sum(o == "control" for *_, o in entered))
    assert row["entries"]["treated"] > 0 and row["entries"]["control"] > 0
    ctx.close()
