"""The lifecycle and segments steps in a workspace: history across runs, the summary, the commands."""

from __future__ import annotations

import datetime as dt
import json

import pyarrow.parquet as pq
import pytest
from rich.console import Console

from lifeloop.cli.insight import insight_command, transitions_command
from lifeloop.context import Context
from tests.unit.insight_factories import customer, publish_features

D1, D2 = dt.date(2024, 5, 31), dt.date(2024, 6, 30)


def month_one():
    return [customer("c_lead", products_held=0, days_since_last_txn=None),
            customer("c_new", tenure_days=80, aum=80000, aum_90d_ago=None, payroll_flag=True, age=30),
            customer("c_quiet", days_since_last_txn=200, aum=5000),
            customer("c_rich", aum=7000000, aum_90d_ago=7000000, age=62, product_lines=3, products_held=5,
                     tenure_days=3000),
            customer("c_plain")]


def month_two():
    return [customer("c_lead", products_held=0, days_since_last_txn=None),
            customer("c_new", tenure_days=110, aum=90000, aum_90d_ago=None, payroll_flag=True, age=30),
            customer("c_quiet", days_since_last_txn=4, aum=5000),          # came back
            customer("c_rich", aum=7000000, aum_90d_ago=7000000, age=62, product_lines=3, products_held=5,
                     tenure_days=3030),
            customer("c_plain"),
            customer("c_fresh", tenure_days=2)]


@pytest.fixture()
def ctx(tmp_path):
    context = Context.init(tmp_path / "ws")
    publish_features(context.lake, D1, month_one())
    publish_features(context.lake, D2, month_two())
    yield context
    context.close()


def stage_map(ctx, as_of):
    t = pq.read_table(ctx.lake.snapshot_dir("lifecycle", as_of) / "lifecycle.parquet")
    return {r["customer_id"]: (r["stage"], r["previous_stage"], r["days_in_stage"]) for r in t.to_pylist()}


def test_two_monthly_runs_keep_stage_history_and_publish_one_row_per_customer(ctx):
    results = ctx.backfill([D2, D1], steps=("lifecycle", "segments"))
    assert [(r.step, r.as_of, r.rows) for r in results] == [
        ("lifecycle", D1, 5), ("segments", D1, 5), ("lifecycle", D2, 6), ("segments", D2, 6)]
    assert stage_map(ctx, D1) == {"c_lead": ("prospect", None, 0), "c_new": ("honeymoon", None, 0),
                                  "c_quiet": ("dormant", None, 0), "c_rich": ("mature", None, 0),
                                  "c_plain": ("growing", None, 0)}
    assert stage_map(ctx, D2) == {"c_lead": ("prospect", "prospect", 30), "c_new": ("growing", "honeymoon", 0),
                                  "c_quiet": ("won_back", "dormant", 0), "c_rich": ("mature", "mature", 30),
                                  "c_plain": ("growing", "growing", 30), "c_fresh": ("onboarding", None, 0)}
    manifest = ctx.lake.manifest("lifecycle", D2)
    assert manifest["previous_as_of"] == "2024-05-31" and manifest["rows"] == 6 and manifest["config_hash"]


def test_rerunning_a_date_gives_the_same_bytes(ctx):
    ctx.backfill([D1], steps=("lifecycle", "segments"))
    first = (ctx.lake.snapshot_dir("lifecycle", D1) / "lifecycle.parquet").read_bytes()
    run_id = ctx.lake.manifest("segments", D1)["run_id"]
    ctx.backfill([D1], steps=("lifecycle", "segments"))
    assert (ctx.lake.snapshot_dir("lifecycle", D1) / "lifecycle.parquet").read_bytes() == first
    assert ctx.lake.manifest("segments", D1)["run_id"] == run_id


def test_the_insight_summary_shows_stage_changes_and_tier_sizes_with_aum(ctx):
    ctx.backfill([D1, D2], steps=("lifecycle", "segments"))
    out = Console(record=True, width=140)
    summary = insight_command(ctx, out, D2, as_json=False)
    stages = {r["stage"]: (r["customers"], r["change"]) for r in summary["stages"]}
    assert stages["won_back"] == (1, 1) and stages["dormant"] == (0, -1) and stages["onboarding"] == (1, 1)
    assert stages["honeymoon"] == (0, -1) and stages["growing"] == (2, 1)
    tiers = {r["tier"]: (r["customers"], r["aum"]) for r in summary["tiers"]}
    # c_new 90,000 is potential; c_rich 7,000,000 private; the rest are mass (0 + 5,000 + 20,000 + 20,000 + 20,000)
    assert tiers == {"mass": (4, 65000.0), "potential": (1, 90000.0), "wealth": (0, 0.0), "private": (1, 7000000.0)}
    groups = {r["name"]: r["customers"] for r in summary["groups"]}
    assert groups["payroll"] == 1 and groups["silver"] == 1
    text = out.export_text()
    assert ("Won back" in text and "挽回/唤醒" in text and "Private banking" in text and "change since" in text
            and "2024-05-31" in text)


def test_the_insight_json_is_the_same_data(ctx, capsys):
    ctx.backfill([D1, D2], steps=("lifecycle", "segments"))
    summary = insight_command(ctx, Console(), D2, as_json=True)
    printed = json.loads(capsys.readouterr().out)
    assert printed["stages"] == summary["stages"] and printed["as_of"] == "2024-06-30"
    assert printed["totals"] == {"customers": 6, "aum": 7155000.0}
    rules = {r["rule"]: r["customers"] for r in printed["rules"]}
    assert rules["reactivated"] == 1 and rules["first_week"] == 1 and sum(rules.values()) == 6


def test_transitions_between_two_runs_print_flows_and_cohorts(ctx):
    ctx.backfill([D1, D2], steps=("lifecycle", "segments"))
    out = Console(record=True, width=140)
    result = transitions_command(ctx, out, D1, D2)
    flows = {(r["from_stage"], r["to_stage"]): r["customers"] for r in result["flows"]}
    assert (flows[("dormant", "won_back")] == 1 and flows[("honeymoon", "growing")] == 1
            and flows[(None, "onboarding")] == 1)
    assert "(new)" in out.export_text()


def test_a_missing_features_snapshot_names_the_step_to_run(ctx):
    from lifeloop.errors import DataError

    with pytest.raises(DataError) as info:
        ctx.run(dt.date(2024, 7, 31), ["lifecycle"])
    assert "no features snapshot as of 2024-07-31" in info.value.render() and "--steps features" in info.value.render()
