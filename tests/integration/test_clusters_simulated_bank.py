"""Clusters on the simulated bank: a re-fit on next month's data keeps identities, names stick, summary shows them."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from rich.console import Console

from lifeloop.cli.insight import clusters_command, insight_command
from lifeloop.context import Context
from lifeloop.insight import cluster_registry, clusters
from tests.factories import allow_days_after_batch

pytestmark = pytest.mark.slow


def run_clusters(ctx, as_of):
    return ctx.run(as_of, ["clusters"])[0]


def split_batch(ctx, last, d1):
    """Turn the one ingested batch into two, as a bank's monthly extracts would arrive: facts up to d1, then after."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from lifeloop.data.schema import TABLES

    folder = ctx.lake.snapshot_dir("bank", last)
    tables = {f.stem: ctx.lake.read_table(f) for f in folder.glob("*.parquet")}

    def write(after: bool):
        def go(staging):
            for name, t in tables.items():
                col = TABLES[name].date_column
                if col:
                    cut = pc.less_equal(t[col], pa.scalar(d1, type=t[col].type))
                    t = t.filter(pc.invert(cut) if after else cut)
                pq.write_table(t, staging / f"{name}.parquet")
        return go

    ctx.lake.publish("bank", d1, write(after=False))
    ctx.lake.publish("bank", last, write(after=True))


@pytest.fixture(scope="module")
def bank(tmp_path_factory):
    base = tmp_path_factory.mktemp("clusterbank")
    ctx = allow_days_after_batch(Context.init(base / "ws"), 60)  # month-ends computed on one extract
    ctx.simulate(base / "extracts", customers=800, days=400, seed=7)
    last = ctx.ingest(base / "extracts").as_of
    d2 = dt.date(last.year, last.month, 1) - dt.timedelta(days=1)       # the last full month-end
    d1 = dt.date(d2.year, d2.month, 1) - dt.timedelta(days=1)           # the month-end before
    split_batch(ctx, last, d1)
    for d in (d1, d2):
        ctx.run(d, ["features", "lifecycle", "segments"])
    yield ctx, d1, d2
    ctx.close()


def test_refitting_next_month_keeps_cluster_ids_and_most_customers_keep_their_cluster(bank):
    ctx, d1, d2 = bank
    first = run_clusters(ctx, d1)
    assert first.summary["notes"] and "fitted now" in first.summary["notes"][0]
    before = dict(zip(*[ctx.snapshot("clusters", d1)[c].to_pylist() for c in ("customer_id", "cluster_id")],
                      strict=False))
    registry = cluster_registry.load_registry(ctx.lake)
    k = registry["k"]
    assert 3 <= k <= 8
    change = clusters.fit_command(ctx, d2)
    # same k on a month's drift, every old cluster found again under its own id
    assert change["k"] == k and change["kept"] == sorted(c["id"] for c in cluster_registry.active(registry))
    assert change["new"] == [] and change["retired"] == []
    run_clusters(ctx, d2)
    after = dict(zip(*[ctx.snapshot("clusters", d2)[c].to_pylist() for c in ("customer_id", "cluster_id")],
                     strict=False))
    common = [c for c in before if c in after]
    kept = sum(before[c] == after[c] for c in common) / len(common)
    assert kept >= 0.8, f"only {kept:.0%} kept their cluster"


def test_a_name_given_by_an_analyst_shows_in_the_snapshot_and_the_summary(bank, capsys):
    ctx, d1, d2 = bank
    if not ctx.lake.exists("clusters", d2):
        run_clusters(ctx, d1)
        run_clusters(ctx, d2)
    first_id = cluster_registry.active(cluster_registry.load_registry(ctx.lake))[0]["id"]
    clusters_command(ctx, Console(record=True), names=[f"{first_id}=Steady savers"])
    run_clusters(ctx, d2)
    assert "Steady savers" in ctx.snapshot("clusters", d2)["cluster_name"].to_pylist()
    capsys.readouterr()
    insight_command(ctx, Console(), d2, as_json=True)
    summary = json.loads(capsys.readouterr().out)
    profiles = summary["clusters"]["clusters"]
    assert sum(p["customers"] for p in profiles) == summary["customers"]
    assert any(p["label"] == "Steady savers" for p in profiles)
    assert all(p["description"] for p in profiles)
    assert "silhouette" in summary["clusters"]["criterion"]
    h = summary["holdings"]
    assert h["product_counts"][-1]["customers"] == summary["customers"]
    assert {t["tier"] for t in h["penetration"]["tiers"]} <= {"mass", "potential", "wealth", "private"}
    text = Console(record=True, width=160)
    insight_command(ctx, text, d2, as_json=False)
    rendered = text.export_text()
    assert "Behavioural clusters" in rendered and "Product penetration" in rendered
