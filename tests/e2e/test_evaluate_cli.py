"""`lifeloop evaluate` over a workspace's lake: the board, the JSON, --interim, and the errors that say what to run.

The workspace is the default bank template; its outcomes snapshot is written by hand with Lake.publish
(no simulator): honeymoon_welcome (objective: activation, planned holdout 10%) has 360 treated entries
of whom 216 became active (60%) and 40 control entries of whom 8 did (20%), all windows closed on
2024-06-30, plus 12 treated entries still in their window (all active).
"""

from __future__ import annotations

import datetime as dt
import json

import pyarrow.parquet as pq
import pytest
from statsmodels.stats import proportion
from typer.testing import CliRunner

from lifeloop.cli.app import app
from lifeloop.store.lake import Lake
from tests.cli_runner import lifeloop
from tests.fixtures.outcomes_tables import flags, rows, table

AS_OF = dt.date(2024, 6, 30)


def run(*args, cwd=None, process=False):
    """What a user sees on stderr when something is wrong: main() in this process (tests/cli_runner.py), or with
    ``process=True`` the real command in its own."""
    return lifeloop(*args, cwd=cwd, process=process)


def invoke(*args):
    """The command in this process (statistics libraries load once for the whole file)."""
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    ws = tmp_path_factory.mktemp("evaluate") / "bank"
    invoke("init", str(ws))
    sid = "honeymoon_welcome"
    entry = dt.date(2024, 3, 1)
    outcomes = table(rows(sid, "treated", 360, entry=entry, window=90, active=flags(216, 360), cost=0.05),
                     rows(sid, "control", 40, entry=entry, window=90, active=flags(8, 40)),
                     rows(sid, "treated", 12, entry=dt.date(2024, 6, 1), window=90, complete=False, active=True,
                          cost=0.05, start=500))
    Lake(ws / "lake").publish("outcomes", AS_OF, lambda staging: pq.write_table(outcomes, staging / "outcomes.parquet"))
    return ws


def test_the_json_review_carries_each_strategys_uplift_interval_and_verdict(workspace):
    doc = json.loads(invoke("-w", str(workspace), "evaluate", "--json"))
    assert (doc["schema"], doc["as_of"], doc["interim"]) == ("lifeloop.review/1", "2024-06-30", False)
    (s,) = doc["strategies"]
    assert (s["strategy"], s["primary_outcome"], s["verdict"]) == ("honeymoon_welcome", "active", "works")
    assert (s["entries"]["treated"], s["entries"]["control"], s["entries"]["in_window"]) == (360, 40, 12)
    low, high = proportion.confint_proportions_2indep(216, 360, 8, 40, method="newcomb")
    h = s["headline"]
    assert h["uplift"] == pytest.approx(0.4, abs=1e-12)
    assert (h["ci_low"], h["ci_high"]) == (pytest.approx(low, abs=1e-12), pytest.approx(high, abs=1e-12))
    assert s["sample_ratio"]["observed_holdout"] == pytest.approx(0.1) and not s["sample_ratio"]["mismatch"]
    assert s["money"]["cost"] == pytest.approx(18.0)                # 360 closed treated entries x 0.05
    assert s["feedback"] == {"recorded": 0, "by_outcome": {}}       # the ops database has no feedback yet
    assert [x["kind"] for x in doc["suggestions"]] == ["works"]


def test_interim_also_reviews_the_windows_still_running(workspace):
    doc = json.loads(invoke("-w", str(workspace), "evaluate", "honeymoon_welcome", "--interim", "--json"))
    (s,) = doc["strategies"]
    assert doc["interim"] is True
    assert (s["entries"]["treated"], s["entries"]["in_window"]) == (372, 12)
    assert s["headline"]["treated_mean"] == pytest.approx(228 / 372)
    assert s["money"]["cost"] == pytest.approx(18.6)


def test_the_board_shows_the_strategy_its_verdict_and_the_suggestion(workspace):
    out = invoke("-w", str(workspace), "evaluate")
    assert "Strategy board (策略管理看板) as of 2024-06-30 — closed windows only" in out
    assert "honeymoon_welcome" in out and "360 / 40 (12)" in out
    # (rich wraps long cells at the 140 columns of a pipe: compare without the line breaks and borders)
    flat = " ".join(out.replace("│", " ").split())
    assert "active: 60.00% vs" in flat and "20.00%" in flat and "+40.00pp" in flat and "works 有效" in flat
    assert "Suggestions (策略优化建议)" in out


def test_one_strategy_asked_for_shows_every_outcome_and_its_breakdowns(workspace):
    out = invoke("-w", str(workspace), "evaluate", "honeymoon_welcome")
    assert "honeymoon_welcome: every outcome, treated vs control" in out
    assert "honeymoon_welcome: active by channel" in out


def test_an_unknown_strategy_is_an_error_with_a_did_you_mean(workspace):
    result = run("-w", str(workspace), "evaluate", "honeymoon_welcom", process=True)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "did you mean 'honeymoon_welcome'" in result.stderr


def test_a_day_before_any_outcomes_snapshot_says_to_run_the_daily_steps(workspace):
    result = run("-w", str(workspace), "evaluate", "--as-of", "2024-06-29")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "no outcomes snapshot to evaluate on or before 2024-06-29" in result.stderr
    assert "lifeloop run --as-of" in result.stderr


def test_a_workspace_without_outcomes_says_to_run_the_daily_steps(tmp_path):
    ws = tmp_path / "bank"
    invoke("init", str(ws))
    result = run("-w", str(ws), "evaluate")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "no outcomes snapshot to evaluate" in result.stderr and "outcomes" in result.stderr
    assert "lifeloop run --as-of" in result.stderr


def test_outside_a_workspace_evaluate_says_how_to_make_one(tmp_path):
    result = run("evaluate", cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "lifeloop init" in result.stderr
