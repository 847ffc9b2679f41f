"""The one rule compiler: thresholds become numbers, and the static checks read the compiled tree."""

from __future__ import annotations

import datetime as dt

import pytest

from lifeloop.engine.compile import compile_rule, contradictions, rule_problem
from lifeloop.errors import RuleError

COLUMNS = {"aum": "DECIMAL(18,2)", "days_since_last_txn": "INTEGER", "stage": "VARCHAR"}
AS_OF = dt.date(2024, 6, 30)


def compiled(text: str, thresholds: dict[str, float] | None = None):
    return compile_rule(text, columns=COLUMNS, thresholds=thresholds or {}, as_of=AS_OF, where="config/x.yaml:3")


def test_a_compiled_rule_has_its_thresholds_as_numbers_and_remembers_the_names_it_read():
    tree = compiled("days_since_last_txn >= dormant_days AND stage = 'mature'", {"dormant_days": 180})
    assert tree.sql(dialect="duckdb") == "days_since_last_txn >= 180 AND stage = 'mature'"
    assert tree.meta["names"] == {"days_since_last_txn", "dormant_days", "stage"}


@pytest.mark.parametrize(("text", "found"), [
    ("days_since_last_txn > low AND days_since_last_txn < 30", ["days_since_last_txn"]),
    ("aum >= 10 AND aum <= 10", []),
    ("aum > 10 AND aum <= 10", ["aum"]),
    ("(aum < -5) AND aum = 0", ["aum"]),
    ("aum > 100 OR aum < 10", []),
])
def test_bounds_that_no_value_satisfies_are_found_in_the_compiled_tree(text, found):
    assert contradictions(compiled(text, {"low": 90})) == found


def test_a_rule_error_becomes_one_located_problem_with_its_fix():
    with pytest.raises(RuleError) as info:
        compiled("stag = 'mature'")
    problem = rule_problem(info.value, "config/x.yaml:3", file="config/x.yaml", line=3, field="when")
    assert problem.message == "unknown column 'stag' in \"stag = 'mature'\""
    assert ((problem.file, problem.line, problem.field, problem.hint)
            == ("config/x.yaml", 3, "when", "did you mean 'stage'?"))
