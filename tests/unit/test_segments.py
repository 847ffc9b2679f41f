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


# -- tiers and rules that read a model's score (CLV tiers, 客户终身价值分层) -------------------------------------

SHELF = {"clv": "clv", "churn": "classifier"}


def _scores_file(path, rows):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"model": [r[0] for r in rows], "customer_id": [r[1] for r in rows],
                             "score": [r[2] for r in rows]}), path)
    return path


def _with(config, **changes):
    data = config[0].model_dump(mode="json", exclude_defaults=False)
    data.update(changes)
    return SegmentsConfig.model_validate(data)


def test_tiers_by_clv_put_each_customer_by_their_lifetime_value_not_their_aum(engine, config, tmp_path):
    by_clv = _with(config, tier_measure="score('clv')")
    rows = [customer("rich_idle", aum=900000), customer("poor_busy", aum=1000), customer("unscored", aum=7000000)]
    scores = _scores_file(tmp_path / "s.parquet", [("clv", "rich_idle", 1200.0), ("clv", "poor_busy", 650000.0),
                                                   ("churn", "rich_idle", 0.9), ("churn", "unscored", 0.1)])
    table, _ = segments.assign(engine, by_clv, write_features(tmp_path / "f.parquet", rows), AS_OF, None,
                               models=SHELF, scores_file=scores)
    got = {r["customer_id"]: (r["tier"], str(r["aum"])) for r in table.to_pylist()}
    # the measure column holds the CLV (rounded to cents); a customer without a CLV counts as 0, like a NULL AUM
    assert got == {"rich_idle": ("mass", "1200.00"), "poor_busy": ("wealth", "650000.00"), "unscored": ("mass", "0.00")}


def test_a_group_rule_may_read_a_score(engine, config, tmp_path):
    data = config[0].model_dump(mode="json")
    data["groups"] = [*data["groups"], {"name": "at_risk", "when": "score('churn') >= 0.6 AND aum >= 1000"}]
    cfg = SegmentsConfig.model_validate(data)
    rows = [customer("a", aum=5000), customer("b", aum=5000), customer("c", aum=10)]
    scores = _scores_file(tmp_path / "s.parquet", [("churn", "a", 0.7), ("churn", "b", 0.2), ("churn", "c", 0.9)])
    table, _ = segments.assign(engine, cfg, write_features(tmp_path / "f.parquet", rows), AS_OF, None,
                               models=SHELF, scores_file=scores)
    assert {r["customer_id"]: r["seg_at_risk"] for r in table.to_pylist()} == {"a": True, "b": False, "c": False}


def test_a_score_of_an_undeclared_model_is_a_located_problem_naming_the_known_ones(config):
    cfg = _with(config, tier_measure="score('cvl')")
    errors, _ = segments.check_segments(cfg, feature_columns(FEATURE_SCHEMA), AS_OF, None, models=SHELF)
    assert [(e.field, "unknown model 'cvl'" in e.message, "did you mean 'clv'" in e.message) for e in errors] == [
        ("tier_measure", True, True)]
    text = _with(config, tier_measure="'wealth'")
    errors, _ = segments.check_segments(text, feature_columns(FEATURE_SCHEMA), AS_OF, None, models=SHELF)
    assert [e.field for e in errors] == ["tier_measure"] and "needs a number" in errors[0].message


def test_a_day_without_the_models_scores_is_refused_not_everyone_in_the_lowest_tier(engine, config, tmp_path):
    from lifeloop.errors import DataError

    by_clv = _with(config, tier_measure="score('clv')")
    features = write_features(tmp_path / "f.parquet", [customer("a", aum=5000)])
    only_churn = _scores_file(tmp_path / "s.parquet", [("churn", "a", 0.5)])
    with pytest.raises(DataError, match=r"score\('clv'\).*have none") as err:
        segments.assign(engine, by_clv, features, AS_OF, None, models=SHELF, scores_file=only_churn)
    assert "models promote" in err.value.hint
    with pytest.raises(DataError, match="has no scores"):
        segments.assign(engine, by_clv, features, AS_OF, None, models=SHELF, scores_file=None)
