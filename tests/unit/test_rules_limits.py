"""Rule text has limits (length, nesting, IN-list size), checked before sqlglot parses it."""

import re
import time
from pathlib import Path

import pytest
import sqlglot

from lifeloop.engine import rules
from lifeloop.engine.rules import MAX_IN_VALUES, MAX_RULE_DEPTH, MAX_RULE_LENGTH, parse_expression
from lifeloop.errors import RuleError

COLUMNS = {"aum": "DECIMAL(18,2)", "age": "INTEGER", "gender": "VARCHAR"}
WHERE = "config/segments.yaml:7 rule silver"
ROOT = Path(__file__).resolve().parents[2]


def refuse(text):
    with pytest.raises(RuleError) as info:
        parse_expression(text, columns=COLUMNS, kind="boolean", where=WHERE)
    return str(info.value)


def accept(text):
    return parse_expression(text, columns=COLUMNS, kind="boolean", where=WHERE)


def nested(depth):
    return "(" * depth + "aum > 1" + ")" * depth


def test_fifty_nested_brackets_are_refused_with_the_rule_and_the_limit_not_a_recursion_error():
    message = refuse(nested(50))
    assert message.startswith(f"{WHERE}: the expression is nested deeper than the limit of 32 levels")
    assert "What to do: split it into tags" in message


def test_a_rule_exactly_at_the_depth_limit_is_accepted_and_one_level_more_is_refused():
    assert accept(nested(MAX_RULE_DEPTH)).meta["sql_type"] == "BOOLEAN"
    assert "limit of 32 levels" in refuse(nested(MAX_RULE_DEPTH + 1))


def test_stacked_nots_count_as_nesting_but_nots_joined_by_and_do_not():
    assert "limit of 32 levels" in refuse("NOT " * 2000 + "aum > 1")
    assert "limit of 32 levels" in refuse("(NOT " * 31 + "aum > 1" + ")" * 31)
    accept(" AND ".join(["NOT aum > 1"] * 40))
    accept("(NOT " * 16 + "aum > 1" + ")" * 16)


def test_nested_function_calls_and_case_count_as_nesting():
    assert "limit of 32 levels" in refuse("abs(" * 40 + "aum" + ")" * 40 + " > 1")
    accept("CASE WHEN " * MAX_RULE_DEPTH + "aum > 1" + " THEN true END" * MAX_RULE_DEPTH)


def test_a_289k_character_rule_is_refused_fast_without_being_parsed(monkeypatch):
    def no_parse(*args, **kwargs):
        raise AssertionError("the length limit must be checked before sqlglot parses")

    monkeypatch.setattr(sqlglot, "parse", no_parse)
    text = " OR ".join(["aum > 1"] * 26_300)
    assert len(text) > 289_000
    start = time.perf_counter()
    message = refuse(text)
    assert time.perf_counter() - start < 0.5
    assert message.startswith(f"{WHERE}: the expression is {len(text):,} characters long; the limit is 10,000")


def test_a_rule_of_exactly_the_maximum_length_is_checked_as_usual():
    text = "aum > 1" + " " * (MAX_RULE_LENGTH - len("aum > 1"))
    assert accept(text).meta["sql_type"] == "BOOLEAN"
    assert "characters long" in refuse(text + " ")


def test_an_in_list_of_a_thousand_values_is_accepted_and_one_more_is_refused():
    values = ", ".join(str(i) for i in range(MAX_IN_VALUES))
    accept(f"age IN ({values})")
    message = refuse(f"age IN ({values}, {MAX_IN_VALUES})")
    assert message.startswith(f"{WHERE}: an IN list holds more than the limit of 1,000 values")


def test_commas_inside_an_in_list_string_or_a_nested_call_are_not_values():
    accept("gender IN ('a,b', " + ", ".join(f"'v{i}'" for i in range(MAX_IN_VALUES - 1)) + ")")
    accept("age IN (" + ",".join(f"least({i},1)" if i < 300 else str(i) for i in range(MAX_IN_VALUES)) + ")")


def test_a_very_long_flat_chain_is_a_rule_error_with_the_nesting_hint():
    message = refuse("aum" + " + 1" * 2400 + " > 1")
    assert message.startswith(f"{WHERE}: the expression is too long a chain for the engine to check")
    assert "aum" + " + 1" * 1000 not in message   # not echoed back in full


def test_a_recursion_error_deep_in_sqlglot_becomes_a_rule_error(monkeypatch):
    def deep(*args, **kwargs):
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(rules, "_check_nodes", deep)
    assert "nested too deeply to check (limit 32 levels)" in refuse("aum > 1")


def test_the_limits_are_documented_in_the_features_doc():
    text = (ROOT / "docs" / "features.md").read_text(encoding="utf-8")
    for name, value in (("MAX_RULE_LENGTH", "10,000 characters"), ("MAX_RULE_DEPTH", "32 levels"),
                        ("MAX_IN_VALUES", "1,000")):
        assert re.search(rf"\| {re.escape(value)} \| `{name}` \|", text), name
    assert (MAX_RULE_LENGTH, MAX_RULE_DEPTH, MAX_IN_VALUES) == (10_000, 32, 1_000)
