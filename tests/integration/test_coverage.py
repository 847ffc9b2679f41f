"""Coverage finds a gap and an overlap planted in a tiny day of snapshots (segments, lifecycle, audiences, lists).

As of D = 2024-06-30, thresholds: a gap is a cell of 5+ customers or 3,000,000+ AUM with no strategy.

  customers    tier    group     stage      AUM each    audiences                 lists (contacted)
  D01-D10      mass    -         dormant    1,000       -                         -          -> gap (10 customers)
  W1, W2       wealth  -         growing    2,000,000   -                         -          -> gap (4,000,000 AUM)
  S1           wealth  -         dormant    100         -                         -          (small: not a gap)
  H1, H2       mass    payroll   honeymoon  5,000       welcome, salary_day       salary_day -> overlap, salary_day wins
  H3           mass    -         honeymoon  5,000       welcome                   welcome
"""

from __future__ import annotations

import datetime as dt
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lifeloop.config.strategies import CoverageSettings
from lifeloop.strategy.coverage import coverage
from tests.factories import new_context

D = dt.date(2024, 6, 30)
PEOPLE = ([(f"D{i:02d}", "mass", False, "dormant", 1000.0) for i in range(1, 11)]
          + [("W1", "wealth", False, "growing", 2e6), ("W2", "wealth", False, "growing", 2e6),
             ("S1", "wealth", False, "dormant", 100.0)]
          + [("H1", "mass", True, "honeymoon", 5000.0), ("H2", "mass", True, "honeymoon", 5000.0),
             ("H3", "mass", False, "honeymoon", 5000.0)])
AUDIENCES = [("H1", "welcome"), ("H1", "salary_day"), ("H2", "welcome"), ("H2", "salary_day"), ("H3", "welcome")]
LISTS = [("H1", "salary_day", "contact"), ("H1", "welcome", "dropped"), ("H2", "salary_day", "contact"),
         ("H2", "welcome", "dropped"), ("H3", "welcome", "contact")]
SETTINGS = CoverageSettings(gap_min_customers=5, gap_min_aum=3_000_000, overlap_min_customers=1)


def snapshots():
    segments = pa.table({"customer_id": [p[0] for p in PEOPLE], "tier": [p[1] for p in PEOPLE],
                         "aum": pa.array([p[4] for p in PEOPLE], pa.float64()), "seg_payroll": [p[2] for p in PEOPLE],
                         "micro_segment": pa.nulls(len(PEOPLE), pa.string())})
    lifecycle = pa.table({"customer_id": [p[0] for p in PEOPLE], "stage": [p[3] for p in PEOPLE]})
    audiences = pa.table({"customer_id": [a[0] for a in AUDIENCES], "strategy": [a[1] for a in AUDIENCES],
                          "wave": ["w1"] * len(AUDIENCES)})
    lists = pa.table({"customer_id": [x[0] for x in LISTS], "strategy": [x[1] for x in LISTS],
                      "status": [x[2] for x in LISTS]})
    return segments, lifecycle, audiences, lists


def test_coverage_finds_the_planted_gaps_by_customers_and_by_aum_but_not_the_small_empty_cell():
    report = coverage(*snapshots(), SETTINGS, D)
    assert [(g["kind"], g["segment"], g["stage"], g["customers"], g["aum"]) for g in report["gaps"]] == [
        ("tier", "wealth", "growing", 2, 4_000_000.0),
        ("tier", "mass", "dormant", 10, 10_000.0),
    ]
    cell = {(c["kind"], c["segment"], c["stage"]): c for c in report["cells"]}
    assert (cell[("tier", "wealth", "dormant")]["customers"] == 1
            and cell[("tier", "wealth", "dormant")]["strategies"] == {})


def test_coverage_finds_the_planted_overlap_and_names_the_strategy_that_won_the_plan():
    report = coverage(*snapshots(), SETTINGS, D)
    assert [(o["kind"], o["segment"], o["stage"], o["contested"], o["strategies"], o["wins"], o["winner"])
            for o in report["overlaps"]] == [
        ("tier", "mass", "honeymoon", 2, {"salary_day": 2, "welcome": 3}, {"salary_day": 2}, "salary_day"),
        ("group", "payroll", "honeymoon", 2, {"salary_day": 2, "welcome": 2}, {"salary_day": 2}, "salary_day"),
    ]
    cell = {(c["kind"], c["segment"], c["stage"]): c for c in report["cells"]}
    assert (cell[("tier", "mass", "honeymoon")]["customers"] == 3
            and cell[("tier", "mass", "honeymoon")]["aum"] == 15000.0)


def test_without_a_plan_the_overlap_is_still_found_but_no_winner_is_named():
    segments, lifecycle, audiences, _ = snapshots()
    report = coverage(segments, lifecycle, audiences, None, SETTINGS, D)
    assert [(o["segment"], o["winner"]) for o in report["overlaps"]] == [("mass", None), ("payroll", None)]


STRATEGIES = """\
version: 1
coverage: {gap_min_customers: 5, gap_min_aum: 3000000}
strategies:
  - id: welcome
    name: {zh: 欢迎, en: Welcome}
    owner: hq
    objective: {kind: customers, metric: activation_rate, window_days: 90}
    scenario: {kind: lifecycle, stages: [honeymoon]}
    audience: "true"
    offer: {code: HELLO}
    channels: [sms]
    scripts: {sms: {zh: "【示例银行】您好，回复TD退订", en: "【Demo Bank】Hello. Reply STOP to opt out"}}
    waves: [{id: w1, day: 0}]
    holdout: 0
    start: 2024-01-01
"""


@pytest.fixture()
def ctx(tmp_path):
    ctx = new_context(tmp_path)
    (ctx.config_dir / "strategies.yaml").write_text(STRATEGIES, encoding="utf-8")
    for area, table in zip(("segments", "lifecycle", "audiences", "lists"), snapshots(), strict=False):
        ctx.lake.publish(area, D, lambda st, t=table, a=area: pq.write_table(t, st / f"{a}.parquet"), manifest={})
    yield ctx
    ctx.close()


def test_lifeloop_strategies_coverage_prints_the_gaps_and_overlaps_and_their_json(ctx):
    from rich.console import Console

    from lifeloop.cli.strategies import strategies_command

    out = Console(record=True, width=200)
    strategies_command(ctx, out, coverage=True)   # latest audiences date: D
    text = out.export_text()
    assert "Coverage (策略覆盖) as of 2024-06-30" in text and "GAP" in text
    assert "tier wealth" in text and "salary_day 2" in text
    js = Console(record=True, width=200)
    strategies_command(ctx, js, as_json=True, coverage=True, as_of=D)
    report = json.loads(js.export_text())
    assert [(g["segment"], g["stage"]) for g in report["gaps"]] == [("wealth", "growing"), ("mass", "dormant")]
    assert report["overlaps"][0]["winner"] == "salary_day"
