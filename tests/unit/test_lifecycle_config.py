"""Bad lifecycle configurations give clear errors or warnings naming the file, the line and the rule."""

from __future__ import annotations

import pytest

from lifeloop.config.lifecycle import LifecycleConfig
from lifeloop.config.loader import load_yaml, validate_model
from lifeloop.engine.compile import feature_columns
from lifeloop.errors import ConfigError, RuleError
from lifeloop.insight import lifecycle
from tests.unit.insight_factories import AS_OF, FEATURE_SCHEMA

COLUMNS = feature_columns(FEATURE_SCHEMA)
FILE = "config/lifecycle.yaml"

HEAD = """\
version: 1
thresholds:
  dormant_days: 180
stages:
  - {name: dormant, zh: 沉睡客户}
  - {name: active, zh: 活跃}
rules:
"""


def compile_text(rules: str):
    text = HEAD + rules
    doc = load_yaml(FILE, text=text)
    return lifecycle.compile_stages(validate_model(LifecycleConfig, doc), COLUMNS, AS_OF, doc)


def test_a_config_without_a_final_catch_all_is_an_error_naming_the_file_and_rule():
    with pytest.raises(ConfigError) as info:
        compile_text("  - {rule: silent, stage: dormant, when: 'days_since_last_txn >= dormant_days'}\n")
    assert "config/lifecycle.yaml" in str(info.value) and "catch-all" in str(info.value)
    assert info.value.problems[0].rule == "silent" and info.value.problems[0].line == 8


def test_a_rule_naming_an_unknown_stage_is_an_error_with_did_you_mean():
    with pytest.raises(ConfigError) as info:
        compile_text("  - {rule: silent, stage: dormnt, when: 'days_since_last_txn >= 180'}\n"
                     "  - {rule: otherwise, stage: active, when: 'true'}\n")
    assert "unknown stage 'dormnt'" in str(info.value) and "did you mean 'dormant'" in str(info.value)
    assert "config/lifecycle.yaml:8" in str(info.value)


def test_a_rule_using_an_unknown_feature_names_file_line_and_rule():
    with pytest.raises(RuleError) as info:
        compile_text("  - {rule: silent, stage: dormant, when: 'days_since_last_tx >= 180'}\n"
                     "  - {rule: otherwise, stage: active, when: 'true'}\n")
    msg = str(info.value)
    assert msg.startswith("config/lifecycle.yaml:8 rule silent") and "'days_since_last_txn'" in msg


def test_a_rule_after_an_early_catch_all_can_never_fire_and_is_a_warning():
    compiled = compile_text("  - {rule: everyone, stage: active, when: 'true'}\n"
                            "  - {rule: silent, stage: dormant, when: 'days_since_last_txn >= 180'}\n"
                            "  - {rule: otherwise, stage: active, when: true}\n")
    texts = [str(w) for w in compiled.warnings]
    assert any("rule silent" in t and "can never fire" in t and "everyone" in t for t in texts)
    assert any("config/lifecycle.yaml:9" in t for t in texts)


def test_a_rule_with_contradictory_bounds_is_a_warning():
    compiled = compile_text("  - {rule: odd, stage: dormant, when: 'days_since_last_txn > dormant_days AND "
                            "days_since_last_txn < 30'}\n"
                            "  - {rule: otherwise, stage: active, when: 'true'}\n")
    assert [w.rule for w in compiled.warnings] == ["odd"]
    assert "days_since_last_txn" in compiled.warnings[0].message


def test_a_stage_no_rule_leads_to_is_a_warning():
    compiled = compile_text("  - {rule: otherwise, stage: active, when: 'true'}\n")
    assert any("stage 'dormant' has no rule" in str(w) for w in compiled.warnings)


def test_a_threshold_named_like_a_feature_is_refused():
    doc = load_yaml(FILE, text=HEAD.replace("dormant_days: 180", "aum: 5") +
                    "  - {rule: x, stage: dormant, when: 'aum > 1'}\n  - {rule: otherwise, stage: "
                    "active, when: 'true'}\n")
    with pytest.raises(ConfigError) as info:
        lifecycle.compile_stages(validate_model(LifecycleConfig, doc), COLUMNS, AS_OF, doc)
    assert "config/lifecycle.yaml:8 rule x" in str(info.value) and "threshold 'aum'" in str(info.value)


def test_an_unknown_key_in_a_rule_names_the_line_and_field():
    doc = load_yaml(FILE, text=HEAD + "  - {rule: otherwise, stage: active, whenn: 'true'}\n")
    with pytest.raises(ConfigError) as info:
        validate_model(LifecycleConfig, doc)
    assert "config/lifecycle.yaml:8" in str(info.value) and "whenn" in str(info.value)


def test_a_boolean_rule_that_is_a_number_is_refused():
    with pytest.raises(RuleError) as info:
        compile_text("  - {rule: silent, stage: dormant, when: 'days_since_last_txn + 1'}\n"
                     "  - {rule: otherwise, stage: active, when: 'true'}\n")
    assert "true or false" in str(info.value)


def test_a_misspelt_stage_in_a_previous_stage_comparison_is_an_error_with_did_you_mean():
    with pytest.raises(ConfigError) as info:
        compile_text("  - {rule: back, stage: active, when: \"previous_stage IN ('dormnt') AND "
                     "days_since_last_txn < 30\"}\n"
                     "  - {rule: otherwise, stage: dormant, when: 'true'}\n")
    assert (str(info.value).startswith("config/lifecycle.yaml:8 rule back")
            and "did you mean 'dormant'" in str(info.value))
