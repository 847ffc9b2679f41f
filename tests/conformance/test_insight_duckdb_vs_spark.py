"""DuckDB and Spark agree on lifecycle stages, segments and transitions, row for row and column for column.

The customers are the hand-checked ones of the unit tests (one per default stage rule, with history
from a previous snapshot) plus the tier boundaries and NULL features, so every default rule, every
tier edge, the COALESCEs and the date macros run on both engines.
"""

from __future__ import annotations

import datetime as dt

import pytest

from lifeloop.config.lifecycle import LifecycleConfig
from lifeloop.config.loader import load_model
from lifeloop.config.segments import SegmentsConfig
from lifeloop.engine.adapters.duckdb import DuckDBAdapter
from lifeloop.insight import lifecycle, segments, transitions
from lifeloop.workspace import template_root
from tests.unit.insight_factories import AS_OF, HISTORY_DATES, customer, history_snapshots, write_features
from tests.unit.test_lifecycle_stages import CASES

pytestmark = pytest.mark.spark

CONFIG = template_root("bank") / "config"
PREVIOUS = AS_OF - dt.timedelta(days=30)


def rows():
    out = [customer(f"s{i:02d}", **features) for i, (_, features, _, _) in enumerate(CASES)]
    out += [customer("back", days_since_last_txn=5), customer("wb", days_since_last_txn=2),
            customer("nulls", aum=None, aum_90d_ago=None, days_since_last_txn=None, frequency_30d=None,
                     frequency_90d=None, tenure_days=None, age=None, payroll_flag=None, products_held=None)]
    out += [customer(f"t{i}", aum=v, age=a, payroll_flag=p, fund_count=f, products_held=n)
            for i, (v, a, p, f, n) in enumerate([(49999.99, 25, True, 0, 1), (50000, 30, False, 1, 2),
                                                 (500000, 56, True, 0, 1), (5999999.99, 70, False, 3, 6),
                                                 (6000000, 45, True, 1, 1), (4800000, 33, False, 0, 2)])]
    return out


@pytest.fixture(scope="module")
def engines(spark):
    from lifeloop.engine.adapters.spark import SparkAdapter

    duck = DuckDBAdapter()
    yield duck, SparkAdapter(session=spark)
    duck.close()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    import pyarrow as pa
    import pyarrow.parquet as pq

    base = tmp_path_factory.mktemp("insight")
    features = write_features(base / "features.parquet", rows())
    previous = base / "previous.parquet"
    prior = {"back": ("dormant", 200), "wb": ("won_back", 10), "s11": ("growing", 100), "s00": ("prospect", 5)}
    pq.write_table(pa.Table.from_pylist(
        [{"customer_id": c, "stage": s, "rule": "x", "previous_stage": None, "days_in_stage": n, "as_of": PREVIOUS}
         for c, (s, n) in prior.items()], schema=lifecycle.output_schema()), previous)
    return features, previous, history_snapshots(base / "history")


def test_lifecycle_stages_agree_between_duckdb_and_spark(engines, files):
    config, doc = load_model(LifecycleConfig, CONFIG / "lifecycle.yaml")
    features, previous, _ = files
    duck, spark = (lifecycle.assign(e, config, features, AS_OF, previous, PREVIOUS, doc)[0] for e in engines)
    assert duck.schema == spark.schema
    assert duck.to_pylist() == spark.to_pylist()
    # and the engines really ran the rules: the hand-checked stages are there
    got = {r["customer_id"]: r["stage"] for r in duck.to_pylist()}
    assert [got[f"s{i:02d}"] for i in range(len(CASES))] == [c[2] for c in CASES]
    assert got["back"] == "won_back" and got["wb"] == "won_back"


def test_segments_agree_between_duckdb_and_spark(engines, files):
    config, doc = load_model(SegmentsConfig, CONFIG / "segments.yaml")
    duck, spark = (segments.assign(e, config, files[0], AS_OF, doc)[0] for e in engines)
    assert duck.schema == spark.schema
    assert duck.to_pylist() == spark.to_pylist()
    tiers = {r["customer_id"]: r["tier"] for r in duck.to_pylist()}
    assert [tiers[f"t{i}"] for i in range(6)] == ["mass", "potential", "wealth", "wealth", "private", "wealth"]


def test_transitions_agree_between_duckdb_and_spark(engines, files):
    history = files[2]
    d0, d1, _, d3 = HISTORY_DATES
    for engine_result in (lambda e: transitions.flows(e, history[d0], history[d3]),
                          lambda e: transitions.moving_on(e, history, d0),
                          lambda e: transitions.entry_cohorts(e, history, "honeymoon", "growing", by=d3)):
        duck, spark = (engine_result(e) for e in engines)
        assert duck == spark and duck


def test_the_published_lifecycle_and_segments_files_are_the_same_bytes_on_both_engines(spark, tmp_path):
    from lifeloop.context import Context
    from tests.unit.insight_factories import publish_features

    files = {}
    for engine in ("duckdb", "spark"):
        with Context.init(tmp_path / engine) as ctx:
            publish_features(ctx.lake, PREVIOUS, rows())
            publish_features(ctx.lake, AS_OF, rows())
            for d in (PREVIOUS, AS_OF):
                ctx.run(d, ["lifecycle", "segments"], engine)
            files[engine] = {area: (ctx.lake.snapshot_dir(area, AS_OF) / f"{area}.parquet").read_bytes()
                             for area in ("lifecycle", "segments")}
    assert files["duckdb"] == files["spark"]
