"""Every default lifecycle rule, tested by hand on customers built to be in that stage."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lifeloop.config.lifecycle import LifecycleConfig
from lifeloop.config.loader import load_model
from lifeloop.engine.adapters.duckdb import DuckDBAdapter
from lifeloop.engine.compile import feature_columns
from lifeloop.insight import lifecycle
from lifeloop.workspace import template_root
from tests.unit.insight_factories import AS_OF, customer, write_features

TEMPLATE = template_root("bank") / "config" / "lifecycle.yaml"
DAY = dt.timedelta(days=1)


@pytest.fixture(scope="module")
def config():
    return load_model(LifecycleConfig, TEMPLATE)


@pytest.fixture()
def engine():
    adapter = DuckDBAdapter()
    yield adapter
    adapter.close()


def stages(engine, config, tmp_path, rows, previous=None, previous_as_of=None):
    """customer -> (stage, rule, previous_stage, days_in_stage) for feature rows (and a previous snapshot)."""
    features = write_features(tmp_path / "features.parquet", rows)
    prev_file = None
    if previous is not None:
        prev_file = tmp_path / "previous.parquet"
        pq.write_table(pa.Table.from_pylist(
            [{"customer_id": c, "stage": s, "rule": "x", "previous_stage": None, "days_in_stage": d,
              "as_of": previous_as_of} for c, (s, d) in previous.items()], schema=lifecycle.output_schema()), prev_file)
    table, _ = lifecycle.assign(engine, config[0], features, AS_OF, prev_file, previous_as_of, config[1])
    return {r["customer_id"]: (r["stage"], r["rule"], r["previous_stage"], r["days_in_stage"])
            for r in table.to_pylist()}


CASES = [
    # (customer built to be ..., features, expected stage, expected deciding rule)
    ("a registered lead with no product", dict(products_held=0, days_since_last_txn=None), "prospect",
     "no_product_yet"),
    ("a customer who closed every product", dict(products_held=0), "churned", "all_products_closed"),
    ("a customer with 50 RMB left and silent for 400 days", dict(aum=50, days_since_last_txn=400),
     "churned", "long_dormant_low_aum"),
    ("a customer silent for 200 days", dict(days_since_last_txn=200), "dormant", "no_activity"),
    ("a customer who never transacted since opening 200 days ago",
     dict(days_since_last_txn=None, tenure_days=200), "dormant", "no_activity"),
    ("a customer who opened 3 days ago", dict(tenure_days=3, days_since_last_txn=1),
     "onboarding", "first_week"),
    ("a customer who opened 45 days ago", dict(tenure_days=45), "honeymoon", "first_90_days"),
    ("a customer whose AUM fell from 20,000 to 8,000", dict(aum=8000, aum_90d_ago=20000), "declining", "aum_halved"),
    ("a customer whose AUM fell from 2,000 to 800 (too little to count)", dict(aum=800, aum_90d_ago=2000), "growing",
     "otherwise"),
    ("a customer with 2 transactions this month against 20 a quarter", dict(frequency_30d=2, frequency_90d=20),
     "declining", "activity_halved"),
    ("a customer whose AUM rose from 20,000 to 30,000", dict(aum=30000), "growing", "aum_rising"),
    ("a two-year customer whose AUM rose from 20,000 to 30,000", dict(aum=30000, tenure_days=730),
     "growing", "aum_rising"),
    ("an active two-year customer", dict(tenure_days=730), "mature", "loyal"),
    ("a two-year customer silent for 40 days", dict(tenure_days=730, days_since_last_txn=40),
     "growing", "otherwise"),
    ("an ordinary active customer", {}, "growing", "otherwise"),
]


@pytest.mark.parametrize("label,features,stage,rule", CASES, ids=[c[0] for c in CASES])
def test_a_customer_built_for_a_stage_lands_in_it_by_the_expected_rule(engine, config, tmp_path, label, features,
                                                                       stage, rule):
    got = stages(engine, config, tmp_path, [customer("c1", **features)])
    assert got["c1"][:2] == (stage, rule)


def test_a_dormant_customer_who_transacts_again_is_won_back(engine, config, tmp_path):
    prev = AS_OF - 30 * DAY
    got = stages(engine, config, tmp_path,
                 [customer("back", days_since_last_txn=5), customer("still", days_since_last_txn=210),
                  customer("new", days_since_last_txn=5)],
                 previous={"back": ("dormant", 300), "still": ("dormant", 300)}, previous_as_of=prev)
    assert got["back"] == ("won_back", "reactivated", "dormant", 0)
    assert got["still"] == ("dormant", "no_activity", "dormant", 330)
    # without history nobody can be "won back": a customer seen for the first time is judged on features
    assert got["new"][:3] == ("growing", "otherwise", None)


def test_a_won_back_customer_stays_won_back_for_sixty_days_then_the_usual_rules_apply(engine, config, tmp_path):
    prev = AS_OF - 30 * DAY
    got = stages(engine, config, tmp_path, [customer("recent"), customer("settled")],
                 previous={"recent": ("won_back", 20), "settled": ("won_back", 40)}, previous_as_of=prev)
    assert got["recent"] == ("won_back", "still_won_back", "won_back", 50)   # 20 + 30 days < 60
    assert got["settled"] == ("growing", "otherwise", "won_back", 0)         # 40 + 30 = 70 days: back to normal


def test_days_in_stage_carry_forward_when_unchanged_and_restart_at_zero_on_a_change(engine, config, tmp_path):
    prev = AS_OF - 31 * DAY
    got = stages(engine, config, tmp_path, [customer("same"), customer("moved", days_since_last_txn=200)],
                 previous={"same": ("growing", 10), "moved": ("growing", 10)}, previous_as_of=prev)
    assert got["same"] == ("growing", "otherwise", "growing", 41)
    assert got["moved"] == ("dormant", "no_activity", "growing", 0)


def test_every_customer_gets_exactly_one_stage(engine, config, tmp_path):
    rows = [customer(f"c{i}", **features) for i, (_, features, _, _) in enumerate(CASES)]
    got = stages(engine, config, tmp_path, rows)
    assert len(got) == len(rows) and all(v[0] for v in got.values())


def test_the_default_template_has_no_warnings(config):
    from tests.unit.insight_factories import FEATURE_SCHEMA

    compiled = lifecycle.compile_stages(config[0], feature_columns(FEATURE_SCHEMA), AS_OF, config[1])
    assert compiled.warnings == []


def test_month_ends_list_the_last_day_of_each_month():
    assert lifecycle.month_ends(dt.date(2024, 1, 15), dt.date(2024, 4, 30)) == [
        dt.date(2024, 1, 31), dt.date(2024, 2, 29), dt.date(2024, 3, 31), dt.date(2024, 4, 30)]
