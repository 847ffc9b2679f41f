"""The shared config types give every file the same words for the same mistake."""

from __future__ import annotations

import pytest

from lifeloop.config.lifecycle import LifecycleConfig
from lifeloop.config.loader import load_yaml, validate_model
from lifeloop.config.segments import SegmentsConfig
from lifeloop.errors import ConfigError


def problems(model, text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        validate_model(model, load_yaml("config/x.yaml", text=text))
    return [f"{p.line} {p.field}: {p.message}" for p in info.value.problems]


def test_a_name_that_is_not_lower_snake_case_names_what_it_is_and_its_line():
    text = "stages:\n  - {name: Dormant}\nrules:\n  - {rule: all, stage: Dormant, when: 'true'}\n"
    assert problems(LifecycleConfig, text) == [
        "2 stages[0].name: Value error, stage name 'Dormant' must be lower_snake_case (letters, digits, _), "
        "starting with a letter (got 'Dormant')"]


def test_an_unquoted_true_rule_is_kept_as_the_text_true():
    doc = load_yaml("config/x.yaml", text="tiers: [{name: mass, min: 0}]\ngroups:\n  - {name: all, when: true}\n")
    assert validate_model(SegmentsConfig, doc).groups[0].when == "true"


def test_a_bad_threshold_name_is_an_error_in_every_file_that_has_thresholds():
    text = "thresholds: {Big: 5}\ntiers: [{name: mass, min: 0}]\n"
    assert problems(SegmentsConfig, text) == [
        "1 thresholds: Value error, threshold name 'Big' must be lower_snake_case (letters, digits, _), "
        "starting with a letter"]


def test_a_lifecycle_threshold_may_not_take_a_stage_history_name():
    text = "thresholds: {days_in_stage: 5}\nstages: [{name: a}]\nrules:\n  - {rule: all, stage: a, when: 'true'}\n"
    assert problems(LifecycleConfig, text) == [
        "1 thresholds: Value error, threshold name 'days_in_stage' is reserved for the stage history"]
