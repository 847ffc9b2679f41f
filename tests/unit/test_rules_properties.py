"""Whatever an analyst types, a rule is either refused with a RuleError or is a safe tree."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlglot import exp

from lifeloop.engine.rules import _AGGREGATES, _ALLOWED, parse_expression
from lifeloop.errors import RuleError

COLUMNS = {"aum": "DECIMAL(18,2)", "age": "INTEGER", "gender": "VARCHAR", "open_date": "DATE", "is_payroll": "BOOLEAN"}
TOKENS = ["aum", "age", "gender", "open_date", "is_payroll", "x", "customers", ">=", "<", "=", "<>", "AND", "OR",
          "NOT", "+", "-", "*", "/", "(", ")", ",", "'F'", "55", "0.5", "NULL", "IS", "IN", "BETWEEN", "CASE", "WHEN",
          "THEN", "ELSE", "END", ";", "SELECT", "FROM", "read_csv('/etc/passwd')", "COPY", "ATTACH", "PRAGMA",
          "--", "/*", "*/", "age(open_date)", "days_since(open_date)", "sum(aum)", "rank() OVER ()", "c.aum",
          "getenv('HOME')", "DATE '2024-01-01'", "LIKE", "'%'", "coalesce(aum, 0)", "TRUE", "FALSE", "::INT"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(TOKENS), min_size=1, max_size=9))
def test_any_token_soup_is_refused_cleanly_or_yields_only_allowed_nodes(tokens):
    text = " ".join(tokens)
    try:
        tree = parse_expression(text, columns=COLUMNS, kind="boolean", where="rule")
    except RuleError:
        return
    for node in tree.walk():
        assert isinstance(node, _ALLOWED) and not isinstance(node, _AGGREGATES), (text, type(node))
        if isinstance(node, exp.Column):
            assert node.name in COLUMNS and not node.table
    assert tree.meta["sql_type"] == "BOOLEAN"
