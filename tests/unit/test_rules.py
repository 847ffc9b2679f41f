"""User rules are parsed into trees, checked against an allow-list and type-checked."""

import datetime as dt

import duckdb
import pytest

from lifeloop.engine.macros import expand
from lifeloop.engine.rules import parse_expression
from lifeloop.errors import RuleError

COLUMNS = {"aum": "DECIMAL(18,2)", "age": "INTEGER", "birth_date": "DATE", "gender": "VARCHAR",
           "amount": "DECIMAL(18,2)", "txn_date": "DATE", "n_products": "BIGINT", "is_payroll": "BOOLEAN"}


def refuse(text, kind="boolean"):
    with pytest.raises(RuleError) as info:
        parse_expression(text, columns=COLUMNS, kind=kind, where="config/segments.yaml:7 rule silver")
    return str(info.value)


def test_a_valid_rule_comes_back_as_a_boolean_tree():
    tree = parse_expression("aum >= 500000 AND age >= 55", columns=COLUMNS, kind="boolean", where="w")
    assert tree.meta["sql_type"] == "BOOLEAN"
    assert tree.sql("duckdb") == "aum >= 500000 AND age >= 55"


def test_an_unknown_column_is_refused_with_did_you_mean():
    msg = refuse("aumm >= 5")
    assert "config/segments.yaml:7 rule silver" in msg and "unknown column 'aumm'" in msg and "'aum'" in msg


def test_a_subquery_is_refused():
    assert "subquery" in refuse("aum > (SELECT max(aum) FROM customers)")


def test_a_forbidden_function_is_refused():
    assert "read_csv" in refuse("read_csv('/etc/passwd') IS NOT NULL")


def test_two_statements_are_refused():
    assert "2 statements" in refuse("aum > 1; DROP TABLE customers")


def test_a_table_qualified_column_is_refused():
    assert "qualified" in refuse("c.aum > 1")


def test_a_window_function_is_refused():
    assert "window" in refuse("rank() OVER (ORDER BY aum) < 10")


def test_an_aggregate_in_a_rule_is_refused_but_allowed_in_an_aggregate_tag():
    assert "aggregate" in refuse("sum(amount) > 5")
    tree = parse_expression("sum(amount)", columns=COLUMNS, kind="aggregate", where="w")
    assert tree.meta["sql_type"].startswith("DECIMAL")


def test_a_nested_aggregate_is_refused():
    assert "nests" in refuse("sum(max(amount))", kind="aggregate")


def test_a_rule_that_is_not_true_or_false_is_refused():
    assert "must be true or false" in refuse("aum + 1")


def test_comparing_text_with_a_number_fails_the_dry_run():
    assert "does not type-check" in refuse("gender > 5")


def test_an_unparsable_rule_says_so():
    assert "cannot parse" in refuse("aum >= AND")


def test_an_unknown_function_suggests_a_macro():
    assert "did you mean age()" in refuse("agee(birth_date) > 5")


def test_a_macro_with_the_wrong_number_of_arguments_is_refused():
    assert "takes 1 argument" in refuse("age(birth_date, 3) > 5")


def test_an_empty_rule_is_refused():
    assert "empty" in refuse("   ")


def _eval(expr_text, as_of, **values):
    tree = parse_expression(expr_text, columns=COLUMNS, kind="value", where="w")
    sql = expand(tree.copy(), as_of).sql("duckdb")
    cols = ", ".join(f"CAST({v!r} AS {COLUMNS[k]}) AS {k}" if v is not None else f"CAST(NULL AS {COLUMNS[k]}) AS {k}"
                     for k, v in values.items())
    return duckdb.connect().execute(f"SELECT {sql} FROM (SELECT {cols})").fetchone()[0]


@pytest.mark.parametrize("birth, as_of, expected", [
    ("1970-06-15", dt.date(2024, 6, 14), 53),
    ("1970-06-15", dt.date(2024, 6, 15), 54),
    ("2000-02-29", dt.date(2023, 2, 28), 22),  # leap-day birthday: not yet 23 on 28 February
    ("2000-02-29", dt.date(2023, 3, 1), 23),
    ("2000-02-29", dt.date(2024, 2, 29), 24),
])
def test_age_counts_completed_years(birth, as_of, expected):
    assert _eval("age(birth_date)", as_of, birth_date=birth) == expected


def test_days_since_and_until_count_calendar_days():
    assert _eval("days_since(txn_date)", dt.date(2024, 3, 1), txn_date="2024-02-28") == 2
    assert _eval("days_until(txn_date)", dt.date(2024, 3, 1), txn_date="2024-03-31") == 30


def test_months_since_counts_completed_months():
    assert _eval("months_since(txn_date)", dt.date(2024, 3, 30), txn_date="2024-01-31") == 1
    assert _eval("months_since(txn_date)", dt.date(2024, 3, 31), txn_date="2024-01-31") == 2


def test_division_by_zero_is_null_and_division_is_double():
    assert _eval("aum / n_products", dt.date(2024, 1, 1), aum="10", n_products=0) is None
    assert _eval("aum / n_products", dt.date(2024, 1, 1), aum="10", n_products=4) == 2.5
    assert _eval("safe_divide(aum, n_products)", dt.date(2024, 1, 1), aum="1", n_products=None) is None


@pytest.mark.parametrize("text, duckdb_sql, spark_sql", [
    ("days_since(txn_date)",
     "DATE_DIFF('DAY', CAST(txn_date AS DATE), CAST('2024-02-29' AS DATE))",
     "DATEDIFF(DAY, CAST(txn_date AS DATE), CAST('2024-02-29' AS DATE))"),
    ("age(birth_date)",
     "(2024 - YEAR(birth_date) - CASE WHEN MONTH(birth_date) * 100 + DAY(birth_date) > 229 THEN 1 ELSE 0 END)",
     "(2024 - YEAR(birth_date) - CASE WHEN MONTH(birth_date) * 100 + DAY(birth_date) > 229 THEN 1 ELSE 0 END)"),
])
def test_macros_expand_to_golden_sql_per_engine(text, duckdb_sql, spark_sql):
    tree = expand(parse_expression(text, columns=COLUMNS, kind="value", where="w"), dt.date(2024, 2, 29))
    assert tree.sql("duckdb") == duckdb_sql
    assert tree.sql("spark") == spark_sql


def test_a_macro_inside_a_division_is_expanded_too():
    assert _eval("days_since(txn_date) / 2", dt.date(2024, 3, 1), txn_date="2024-02-28") == 1.0
    assert _eval("safe_divide(months_since(txn_date), 2)", dt.date(2024, 3, 31), txn_date="2024-01-31") == 1.0
