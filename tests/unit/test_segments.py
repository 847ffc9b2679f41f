"""Value tiers partition AUM; featured groups and micro-segments follow their rules, tested by hand."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lifeloop.config.loader import load_model, load_yaml, validate_model
from lifeloop.config.segments import SegmentsConfig
from lifeloop.engine.adapters.duckdb import DuckDBAdapter
from lifeloop.engine.compile import feature_columns
from lifeloop.errors import ConfigError, RuleError
from lifeloop.insight import segments
from lifeloop.workspace import template_root
from tests.unit.insight_factories import AS_OF, FEATURE_SCHEMA, customer, write_features

TEMPLATE = template_root("bank") / "config" / "segments.yaml"
FILE = "config/segments.yaml"


@pytest.fixture(scope="module")
def config():
    return load_model(SegmentsConfig, TEMPLATE)


@pytest.fixture(scope="module")
def engine():
    adapter = DuckDBAdapter()
    yield adapter
    adapter.close()


def assign(engine, config, tmp_path, rows):
    table, warnings = segments.assign(engine, config[0], write_features(tmp_path / "f.parquet", rows), AS_OF, config[1])
    assert warnings == []
    return {r["customer_id"]: r for r in table.to_pylist()}


def test_tier_boundaries_follow_the_domain_defaults(engine, config, tmp_path):
    rows = [customer("zero", aum=0), customer("none", aum=None), customer("mass", aum=49999.99),
            customer("pot_lo", aum=50000), customer("pot_hi", aum=499999.99), customer("wealth", aum=500000),
            customer("wealth_hi", aum=5999999.99), customer("private", aum=6000000)]
    got = assign(engine, config, tmp_path, rows)
    assert {k: v["tier"] for k, v in got.items()} == {
        "zero": "mass", "none": "mass", "mass": "mass", "pot_lo": "potential", "pot_hi": "potential",
        "wealth": "wealth", "wealth_hi": "wealth", "private": "private"}
    assert str(got["none"]["aum"]) == "0.00"


def test_featured_groups_overlap_and_each_is_its_own_boolean_column(engine, config, tmp_path):
    got = assign(engine, config, tmp_path, [
        customer("silver_payroll", age=60, payroll_flag=True),
        customer("middle", age=40, aum=350000),
        customer("parent", age=35, insurance_count=1),
        customer("new_citizen", age=26, payroll_flag=True, tenure_days=365),
        customer("shopkeeper", inflow_90d=200000),
        customer("plain", age=40)])
    groups = {k: sorted(c[4:] for c, v in r.items() if c.startswith("seg_") and v) for k, r in got.items()}
    assert groups == {"silver_payroll": ["payroll", "silver"], "middle": ["middle_class"], "parent": ["parent_child"],
                      "new_citizen": ["new_citizen", "payroll"], "shopkeeper": ["small_business"], "plain": []}


def test_micro_segments_flag_every_match_and_name_the_first_in_priority_order(engine, config, tmp_path):
    got = assign(engine, config, tmp_path, [
        customer("hnw_single", aum=800000, aum_90d_ago=800000, products_held=1, age=60),
        customer("outflow", aum=60000, aum_90d_ago=100000),
        customer("deposits", aum=100000, aum_90d_ago=100000),
        customer("funds", aum=100000, aum_90d_ago=100000, fund_count=2),
        customer("small", aum=1000, aum_90d_ago=1000)])
    micro = {k: sorted(c[6:] for c, v in r.items() if c.startswith("micro_") and c != "micro_segment" and v)
             for k, r in got.items()}
    assert micro["hnw_single"] == ["deposit_only", "silver_wealth", "single_product_hnw"]
    assert got["hnw_single"]["micro_segment"] == "single_product_hnw"
    assert micro["outflow"] == ["deposit_only", "outflow_risk"] and got["outflow"]["micro_segment"] == "outflow_risk"
    assert got["deposits"]["micro_segment"] == "deposit_only"
    assert micro["funds"] == ["fund_investor"]
    assert micro["small"] == [] and got["small"]["micro_segment"] is None


def test_the_default_template_has_twelve_micro_segments_and_six_groups(config):
    assert len(config[0].micro_segments) == 12 and len(config[0].groups) == 6


def tiers_yaml(tiers: str) -> str:
    return "version: 1\ntiers:\n" + tiers + "groups: []\n"


def check(tiers: str):
    doc = load_yaml(FILE, text=tiers_yaml(tiers))
    segments.check_tiers(validate_model(SegmentsConfig, doc), doc)


def test_overlapping_tiers_are_an_error_naming_the_file_and_both_tiers():
    with pytest.raises(ConfigError) as info:
        check("  - {name: mass, min: 0, max: 60000}\n  - {name: potential, min: 50000}\n")
    assert "config/segments.yaml:4" in str(info.value) and "'mass' and 'potential' overlap" in str(info.value)


def test_a_gap_between_tiers_is_an_error():
    with pytest.raises(ConfigError) as info:
        check("  - {name: mass, min: 0, max: 40000}\n  - {name: potential, min: 50000}\n")
    assert "gap between tiers 'mass' and 'potential'" in str(info.value) and "40000 to 50000" in str(info.value)


def test_tiers_must_start_at_zero_and_leave_the_top_open():
    with pytest.raises(ConfigError) as info:
        check("  - {name: mass, min: 100, max: 50000}\n  - {name: potential, min: 50000, max: 900000}\n")
    text = str(info.value)
    assert "'mass' starts at 100" in text and "'potential' ends at 900000" in info.value.render()


def test_a_group_with_an_unknown_feature_names_the_file_line_and_group(engine, tmp_path):
    doc = load_yaml(FILE, text=tiers_yaml("  - {name: all, min: 0}\n").replace(
        "groups: []\n", "groups:\n  - {name: silver, when: 'agee >= 55'}\n"))
    with pytest.raises(RuleError) as info:
        segments.segments_query(validate_model(SegmentsConfig, doc), feature_columns(FEATURE_SCHEMA), "f", AS_OF, doc)
    assert str(info.value).startswith("config/segments.yaml:5 group silver") and "'age'" in str(info.value)


@settings(max_examples=60, deadline=None)
@given(bounds=st.lists(st.integers(min_value=1, max_value=10**7), min_size=1, max_size=5, unique=True),
       value=st.integers(min_value=0, max_value=2 * 10**7))
def test_any_valid_partition_puts_every_value_in_exactly_the_tier_whose_range_holds_it(bounds, value):
    cuts = [0] + sorted(bounds)
    tiers = [{"name": f"t{i}", "min": lo, **({"max": cuts[i + 1]} if i + 1 < len(cuts) else {})}
             for i, lo in enumerate(cuts)]
    config = SegmentsConfig.model_validate({"tiers": tiers})
    segments.check_tiers(config)
    import duckdb
    from sqlglot import exp

    sql = exp.select(segments.tier_case(config, exp.Literal.number(value))).sql("duckdb")
    got = duckdb.connect().execute(sql).fetchone()[0]
    expected = next(t["name"] for t in tiers if t["min"] <= value < t.get("max", float("inf")))
    assert got == expected


def test_micro_segments_follow_a_moved_tier_boundary_through_the_tier_thresholds(engine, tmp_path):
    text = TEMPLATE.read_text(encoding="utf-8").replace("min: 500000,  max: 6000000", "min: 1000000, max: 6000000") \
        .replace("min: 50000,   max: 500000", "min: 50000,   max: 1000000")
    doc = load_yaml(FILE, text=text)
    config = (validate_model(SegmentsConfig, doc), doc)
    got = assign(engine, config, tmp_path, [customer("c", aum=850000, aum_90d_ago=850000)])["c"]
    # 850,000 is now potential and within 20% of the wealth floor (1,000,000)
    assert got["tier"] == "potential" and got["micro_near_wealth"] is True


def test_a_threshold_that_repeats_a_tier_bound_is_refused():
    doc = load_yaml(FILE,
                    text=tiers_yaml("  - {name: all, min: 0}\n").replace("version: 1\n",
                                                                         "version: 1\nthresholds: {all_min: 5}\n"))
    with pytest.raises(ConfigError) as info:
        segments.segments_query(validate_model(SegmentsConfig, doc), feature_columns(FEATURE_SCHEMA), "f", AS_OF, doc)
    assert "'all_min' is already defined by the tiers" in str(info.value)
