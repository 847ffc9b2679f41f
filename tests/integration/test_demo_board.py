"""The demo's board says something true (issue 15): a strategy works with an interval excluding zero, the
zero-uplift strategy shows no effect, a suggestion fires, and the truth column agrees with the truth file.

A full six-week, 20,000-customer demo is too slow for the suite, so this is a smaller, shorter configuration of
the same simulated bank and the same demo truth (templates/demo/truth.yaml): 10,000 customers, six days of
entries (the dormant backlog enters on the first), then the bank lives 24 more days (no new entries) so the
first days' conversion windows are nearly all seen. To give the small strategies 30+ controls in six days
(the verdict's minimum) every control share is 50% instead of 10-20% — an experiment's design, not its
statistics: the board, verdicts and suggestions are the code a bank runs. The demo's own size gives the same
findings with its own holdouts (docs/performance.md, "The demo").
"""

from __future__ import annotations

import re
import shutil

import pytest

from lifeloop.cli.demo import DEMO_CHANNELS, DEMO_TRUTH
from lifeloop.context import Context
from lifeloop.data.simulator.response import load_truth
from lifeloop.execution.closed_loop import run_loop
from lifeloop.review import simulator_truth

pytestmark = [pytest.mark.slow, pytest.mark.validate]   # `make validate`: 10,000 customers, 30 looped days

CUSTOMERS, ENTRY_DAYS, OBSERVE, HOLDOUT, SEED = 10_000, 6, 24, 0.5, 7
WORKS, ZERO = "dormant_reactivation", "birthday_care"


@pytest.fixture(scope="module")
def board(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo-board") / "ws"
    ctx = Context.init(root)
    (ctx.config_dir / "channels.yaml").write_text(DEMO_CHANNELS, encoding="utf-8")
    strategies = ctx.config_dir / "strategies.yaml"
    text = re.sub(r"(?m)^(    holdout: )[0-9.]+", rf"\g<1>{HOLDOUT}", strategies.read_text(encoding="utf-8"))
    strategies.write_text(text, encoding="utf-8")
    truth = simulator_truth.truth_file(root)
    truth.parent.mkdir(parents=True)
    shutil.copyfile(DEMO_TRUTH, truth)
    sim = ctx.simulate(root / "extracts", customers=CUSTOMERS, days=400, seed=SEED, truth=truth)
    ctx.ingest(root / "extracts", as_of=sim.as_of)

    def keep(day):
        if day.truth is not None:
            simulator_truth.record_contacts(root, day.as_of, day.truth)

    with ctx:
        ctx.run(sim.as_of)
        days = run_loop(ctx, root / "extracts", sim.as_of, ENTRY_DAYS - 1, truth=True, on_day=keep)
        days += run_loop(ctx, root / "extracts", days[-1].bank_day, OBSERVE, steps=(), truth=True, on_day=keep)
        ctx.run(days[-1].bank_day, steps=["outcomes"])
        doc = ctx.evaluate(interim=True)
    return {s["strategy"]: s for s in doc["strategies"]}, doc["suggestions"]


def test_a_strategy_works_with_an_interval_excluding_zero(board):
    strategies, _ = board
    s = strategies[WORKS]
    h = s["headline"]
    assert s["verdict"] == "works", (s["entries"], h)
    assert h["outcome"] == "reactivated" and h["ci_low"] > 0 and h["uplift"] > 0


def test_the_zero_uplift_strategy_has_enough_customers_and_a_true_uplift_of_zero(board):
    strategies, _ = board
    s = strategies[ZERO]
    assert min(s["entries"]["treated"], s["entries"]["control"]) >= 30, s["entries"]
    assert s["simulator_truth"]["uplift"] == 0.0            # none of its contacts changed a probability


def test_the_zero_uplift_strategy_shows_no_effect(board):
    """It once read 'harmful' here on ``retained``: its treated arm happened to hold more empty accounts (nothing to
    keep) than its control; retention now applies to customers who held assets at entry (docs/review.md)."""
    strategies, _ = board
    s = strategies[ZERO]
    assert s["verdict"] == "no_effect_yet", (s["headline"], s["entries"])
    assert s["headline"]["outcome"] == "retained" and s["entries"]["outcome_not_applicable"] > 0


def test_a_suggestion_fires(board):
    _, suggestions = board
    assert any(x["kind"] == "works" and x["strategy"] == WORKS for x in suggestions), suggestions


def test_the_truth_column_agrees_with_the_truth_file_and_the_interval(board):
    strategies, _ = board
    truth = load_truth(DEMO_TRUTH)
    gift = truth.offers["REACTIVATE_GIFT"]
    per_sms = gift.uplift * gift.by_stage["dormant"].uplift * truth.channels["sms"].uplift_multiplier
    assert per_sms == pytest.approx(0.06)                      # what docs/simulator.md says the demo's gift does
    t = strategies[WORKS]["simulator_truth"]
    assert t["outcome"] == "reactivated" and t["offer"] == "REACTIVATE_GIFT"
    # every entry saw at least 24 of the 30 conversion days; a few of Lifeloop's dormant customers are not
    # dormant in the simulator's hidden state (a smaller uplift) or had their outcome decided already (none)
    assert 0.5 * per_sms < t["uplift"] <= per_sms + 1e-9, t
    h = strategies[WORKS]["headline"]
    assert h["ci_low"] <= t["uplift"] <= h["ci_high"]            # the review tells the truth
