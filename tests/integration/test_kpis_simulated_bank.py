"""Lifecycle KPIs on a small simulated bank backfilled over month-ends, checked against the raw tables."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter, defaultdict
from decimal import Decimal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from lifeloop.context import Context
from lifeloop.data.schema import TABLES
from lifeloop.insight.lifecycle import month_ends
from lifeloop.review import kpis
from lifeloop.review.kpis_render import kpis_json


def split_into_month_batches(ctx, last: dt.date, cuts: list[dt.date]) -> None:
    """Turn the one ingested batch into monthly batches with disjoint facts, as monthly extracts would arrive."""
    folder = ctx.lake.snapshot_dir("bank", last)
    tables = {f.stem: ctx.lake.read_table(f) for f in folder.glob("*.parquet")}
    bounds = [None, *cuts, last]
    for low, high in zip(bounds, bounds[1:], strict=False):
        def write(staging, low=low, high=high):
            for name, t in tables.items():
                column = TABLES[name].date_column
                if column:
                    keep = pc.less_equal(t[column], pa.scalar(high, type=t[column].type))
                    if low is not None:
                        keep = pc.and_(keep, pc.greater(t[column], pa.scalar(low, type=t[column].type)))
                    t = t.filter(keep)
                pq.write_table(t, staging / f"{name}.parquet")
        ctx.lake.publish("bank", high, write)


@pytest.fixture(scope="module")
def bank(tmp_path_factory):
    base = tmp_path_factory.mktemp("kpibank")
    ctx = Context.init(base / "ws")
    ctx.simulate(base / "extracts", customers=300, days=240, seed=11)
    last = ctx.ingest(base / "extracts").as_of
    dates = [d for d in month_ends(last - dt.timedelta(days=200), last) if d < last]
    holdings = ctx.lake.read_table(ctx.lake.snapshot_dir("bank", last) / "holdings.parquet")
    split_into_month_batches(ctx, last, dates)
    ctx.backfill(dates)
    start, end = dates[1], dates[-1]
    result = kpis.compute(ctx.engine(), ctx.lake, start, end)
    yield ctx, result, start, end, holdings
    ctx.close()


def test_stage_distribution_matches_each_published_lifecycle_snapshot(bank):
    ctx, result, start, end, _ = bank
    assert result["snapshots"][0] == start and result["snapshots"][-1] == end and len(result["snapshots"]) >= 4
    for d in result["snapshots"]:
        counted = {r["stage"]: r["customers"] for r in result["stage_distribution"] if r["as_of"] == d}
        assert counted == dict(Counter(ctx.snapshot("lifecycle", d)["stage"].to_pylist()))


def test_churn_over_the_window_matches_a_count_made_from_the_snapshots(bank):
    ctx, result, start, end, _ = bank
    first = {r["customer_id"]: r["stage"] for r in ctx.snapshot("lifecycle", start).to_pylist()}
    base = {c for c, s in first.items() if s not in ("prospect", "churned")}
    churned = set()
    for d in result["snapshots"][1:]:
        churned |= {r["customer_id"] for r in ctx.snapshot("lifecycle", d).to_pylist() if r["stage"] == "churned"}
    assert result["churn"]["window"]["customers"] == len(base) > 0
    assert result["churn"]["window"]["moved"] == len(base & churned)


def test_daily_sales_add_up_to_the_holdings_opened_in_the_window_at_their_first_balance(bank):
    _, result, start, end, holdings = bank
    first: dict[str, tuple[dt.date, Decimal]] = {}
    for r in holdings.to_pylist():
        if r["open_date"] is not None and start <= r["open_date"] <= end and r["snapshot_date"] <= end:
            if r["account_id"] not in first or r["snapshot_date"] < first[r["account_id"]][0]:
                first[r["account_id"]] = (r["snapshot_date"], r["balance"])
    assert first, "the simulated bank opened no holdings in the window"
    assert sum(r["accounts"] for r in result["daily_sales"]) == len(first)
    assert sum(r["amount"] for r in result["daily_sales"]) == sum(b for _, b in first.values())
    by_day = defaultdict(int)
    for r in result["daily_sales"]:
        assert start <= r["day"] <= end and r["branch_id"]
        by_day[r["day"]] += r["accounts"]
    assert len(by_day) > 1


def test_every_rate_is_a_share_and_the_json_is_plain(bank):
    ctx, result, _, end, _ = bank
    a = result["activation"]
    assert a["measured"] + a["pending"] == a["entered"] and 0 <= a["activated"] <= a["measured"]
    assert all(0 <= r["rate"] <= 1 for r in result["transitions"])
    tiers = sum(r["customers"] for r in result["aum_by_tier"] if r["as_of"] == end)
    assert tiers == ctx.snapshot("segments", end).num_rows
    assert result["products_per_customer"]["customers"] > 0 and result["retention"]
    json.dumps(kpis_json(result))


def test_the_kpis_command_prints_json_with_every_section_or_the_tables(bank, capsys):
    from rich.console import Console

    from lifeloop.review.kpis_render import kpis_command

    ctx, _, start, end, _ = bank
    kpis_command(ctx, None, start, end, as_json=True)
    data = json.loads(capsys.readouterr().out)
    assert list(data) == ["schema", "from", "to", "snapshots", "stage_distribution", "transitions", "churn",
                          "reactivation", "activation", "retention", "products_per_customer", "aum_by_tier",
                          "daily_sales", "sales_by_branch_rm"]
    console = Console(record=True, width=200)
    kpis_command(ctx, console, start, end, sales_rows=5)
    text = console.export_text()
    assert "Stage distribution" in text and f"last 5 of {len(data['daily_sales'])} rows" in text
