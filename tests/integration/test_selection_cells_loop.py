"""Selection cells through the loop on a small simulated bank: the churn model fitted on the history, the
template's churn-warning strategy (cell ``model``: ``score('churn') >= churn_warning_score``, cell ``rule``:
``stage = 'declining'``), a few days of plan -> dispatch -> the bank lives -> outcomes, then the review.

Checked: both cells in the lists, one holdout (every row's group is the strategy's hash draw, whatever the
cell), control rows tagged with the cell their selection picked (recomputed here from the day's scores and
stages), and the review JSON with each selection against its control and their difference with its interval.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from rich.console import Console
from typer.testing import CliRunner

from lifeloop.cli.app import app
from lifeloop.cli.demo import DEMO_CHANNELS, _churn_model
from lifeloop.config.strategies import StrategiesConfig
from lifeloop.context import Context
from lifeloop.execution.closed_loop import run_loop
from lifeloop.strategy.holdout import draws

pytestmark = pytest.mark.slow   # a 2,000-customer bank: history filed and backfilled, a model fitted, 4 loop days

STRATEGY = "churn_warning"
LOOP_DAYS = 4


@pytest.fixture(scope="module")
def loop(tmp_path_factory):
    root = tmp_path_factory.mktemp("selection")
    ctx = Context.init(root / "ws")
    (ctx.config_dir / "channels.yaml").write_text(DEMO_CHANNELS, encoding="utf-8")
    sim = ctx.simulate(root / "extracts", customers=2000, days=300, seed=11)
    ctx.ingest(root / "extracts", as_of=sim.as_of)
    printed = io.StringIO()
    with ctx:
        _churn_model(Console(file=printed, width=200), ctx, sim.as_of)
        ctx.run(sim.as_of)
        days = [sim.as_of] + [d.bank_day for d in run_loop(ctx, root / "extracts", sim.as_of, LOOP_DAYS)]
        doc = ctx.evaluate([STRATEGY], interim=True)
        yield {"ctx": ctx, "days": days, "doc": doc, "printed": printed.getvalue(), "root": root}


def lists(ctx, day):
    t = pq.read_table(ctx.lake.snapshot_dir("lists", day) / "lists.parquet")
    return t.filter(pc.equal(t["strategy"], STRATEGY))


def test_the_demo_step_fits_and_activates_the_churn_model_on_the_filed_history(loop):
    ctx = loop["ctx"]
    assert "churn model" in loop["printed"] and "made active" in loop["printed"]
    [churn] = [m for m in ctx.models() if m["name"] == "churn"]
    assert churn["active"] is not None
    assert len(ctx.lake.dates("bank")) >= 9 and len(ctx.lake.dates("lifecycle")) >= 9


def test_both_cells_one_holdout_and_control_rows_tagged_with_their_selection(loop):
    ctx = loop["ctx"]
    threshold = ctx.load_config("strategies", StrategiesConfig)[0].thresholds["churn_warning_score"]   # 0.03
    seen = set()
    for day in loop["days"]:
        t = lists(ctx, day)
        if not t.num_rows:
            continue
        rows = t.to_pylist()
        ids = [r["customer_id"] for r in rows]
        # one holdout: the group is the strategy's hash draw, the same whatever cell the customer is in
        expected = ["control" if d < 0.2 else "treated" for d in draws(ids, STRATEGY, "lifeloop-2024")]
        assert [r["group"] for r in rows] == expected
        # every row (control too) carries the first cell whose select is true on that day's scores and stages
        scores = ctx.snapshot("scores", day)
        score = dict(zip(scores["customer_id"].to_pylist(), scores["score"].to_pylist(), strict=True))
        stages = ctx.lifecycle(day)
        stage = dict(zip(stages["customer_id"].to_pylist(), stages["stage"].to_pylist(), strict=True))
        for r in rows:
            want = ("model" if (score.get(r["customer_id"]) or 0) >= threshold else
                    "rule" if stage[r["customer_id"]] == "declining" else None)
            assert r["cell"] == want, r
            seen.add((r["cell"], r["group"]))
    assert seen == {("model", "treated"), ("model", "control"), ("rule", "treated"), ("rule", "control")}


def test_the_review_compares_each_selection_with_its_control_and_gives_the_difference_with_its_interval(loop):
    [s] = loop["doc"]["strategies"]
    sel = s["selections"]
    assert sel["outcome"] == "inflow" and [c["cell"] for c in sel["cells"]] == ["model", "rule"]
    outcomes = loop["ctx"].snapshot("outcomes").filter(pc.equal(loop["ctx"].snapshot("outcomes")["strategy"],
                                                                STRATEGY))
    for c in sel["cells"]:
        mine = outcomes.filter(pc.equal(outcomes["cell"], c["cell"]))
        assert c["treated"] == pc.sum(pc.equal(mine["arm"], "treated")).as_py() > 0
        assert c["control"] == pc.sum(pc.equal(mine["arm"], "control")).as_py() > 0
        assert c["uplift"] is not None and c["ci_low"] <= c["uplift"] <= c["ci_high"]
    assert sel["control_without_cell"] == 0
    [d] = sel["differences"]
    a, b = sel["cells"]
    assert d["difference"] == pytest.approx(a["uplift"] - b["uplift"])
    assert d["se"] == pytest.approx(math.hypot(a["se"], b["se"]))
    assert d["ci_low"] < d["difference"] < d["ci_high"]
    assert d["verdict"] in ("too_early", "no_difference_yet", "differs")


def test_evaluate_prints_the_model_group_against_the_non_model_group_and_the_json_carries_it(loop):
    ws = str(loop["ctx"].workspace)
    out = CliRunner().invoke(app, ["--workspace", ws, "evaluate", STRATEGY, "--interim"], terminal_width=200)
    assert out.exit_code == 0, out.output
    assert "模型组 vs 非模型组" in out.output and "model - rule (difference of uplifts)" in out.output
    raw = CliRunner().invoke(app, ["--workspace", ws, "evaluate", STRATEGY, "--interim", "--json"])
    assert raw.exit_code == 0, raw.output
    doc = json.loads(raw.output)
    assert doc["strategies"][0]["selections"]["differences"][0]["cell"] == "model"
    assert Path(ws).exists()
