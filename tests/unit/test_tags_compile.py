"""The catalogue compiles into one query: one scan per source, conditional aggregates, declared types."""

from __future__ import annotations

import datetime as dt

import sqlglot
from sqlglot import exp

from lifeloop.insight.catalogue import load_catalogue
from lifeloop.insight.features import compile_features
from lifeloop.workspace import template_root

D = dt.date(2024, 6, 30)
FILE = "config/tags.yaml"


def default_query() -> exp.Select:
    return compile_features(load_catalogue(template_root("bank") / "config" / "tags.yaml", FILE), D)


def ctes(query: exp.Select) -> dict[str, exp.Select]:
    return {c.alias: c.this for c in query.ctes}


def tables_read(query: exp.Expression) -> list[str]:
    return sorted(t.name for t in query.find_all(exp.Table))


def test_each_source_is_scanned_once_and_holdings_once_more_for_ninety_days_ago():
    query = default_query()
    names = list(ctes(query))
    assert names[:4] == ["src_transactions", "src_holdings", "src_holdings_minus_90d", "src_events"]
    read = [t for t in tables_read(query) if not t.startswith(("src_", "layer_", "base"))]
    assert read.count("transactions") == 1 and read.count("events") == 1 and read.count("customers") == 1
    assert read.count("holdings") == 2 and read.count("products") == 2


def test_a_windowed_aggregate_is_a_case_when_inside_the_aggregate():
    src = ctes(default_query())["src_transactions"]
    freq30 = next(p for p in src.expressions if p.alias == "frequency_30d")
    case = freq30.this.this
    assert isinstance(freq30.this, exp.Count) and isinstance(case, exp.Case)
    assert "CAST('2024-05-31' AS DATE)" in case.sql() and "customer_initiated" in case.sql()


def test_every_tag_is_cast_to_its_declared_type_where_it_is_made():
    query = default_query()
    base = ctes(query)["base"]
    aum = next(p for p in base.expressions if p.alias == "aum")
    assert isinstance(aum.this, exp.Cast) and aum.this.to.sql() == "DECIMAL(18, 2)"
    layer = ctes(query)["layer_1"]
    flag = next(p for p in layer.expressions if p.alias == "payroll_flag")
    assert isinstance(flag.this, exp.Cast) and flag.this.to.sql() == "BOOLEAN"


def test_the_average_becomes_a_safe_division_of_a_sum_by_a_count():
    src = ctes(default_query())["src_transactions"]
    avg = next(p for p in src.expressions if p.alias == "avg_txn_amount_90d")
    assert not list(avg.find_all(exp.Avg))
    assert list(avg.find_all(exp.Sum)) and list(avg.find_all(exp.Count)) and "IS NULL" in avg.sql()


def test_the_query_is_valid_spark_sql_with_no_user_text_pasted_in():
    query = default_query()
    spark_sql = query.sql(dialect="spark")
    reparsed = sqlglot.parse_one(spark_sql, read="spark")
    assert len(list(reparsed.find_all(exp.CTE))) == len(ctes(query))


def test_a_source_whose_tags_all_have_windows_reads_only_the_longest_window():
    cat = load_catalogue(FILE, FILE, text="""tags:
  - name: n_{window}d
    label: {zh: "笔数", en: "Count"}
    description: Transactions.
    type: INTEGER
    source: transactions
    aggregate: count(*)
    windows: [30, 365]
""")
    src = ctes(compile_features(cat, D))["src_transactions"]
    assert "\"txn_date\" > CAST('2023-07-01' AS DATE)" in src.args["where"].sql()


def test_a_fraction_declared_an_integer_is_rounded_before_the_cast():
    cat = load_catalogue(FILE, FILE, text="""tags:
  - name: half
    label: {zh: "半", en: "Half"}
    description: A fraction.
    type: INTEGER
    expression: 5 / 2
""")
    layer = ctes(compile_features(cat, D))["layer_1"]
    half = next(p for p in layer.expressions if p.alias == "half")
    assert isinstance(half.this, exp.Cast) and isinstance(half.this.this, exp.Round)


def test_a_count_for_a_customer_without_rows_is_zero_not_empty():
    base = ctes(default_query())["base"]
    freq = next(p for p in base.expressions if p.alias == "frequency_30d")
    assert "IS NULL THEN 0" in freq.sql()
    aum = next(p for p in base.expressions if p.alias == "aum")
    assert "COALESCE" in aum.sql()  # default: 0 in the catalogue


GOLDEN_CATALOGUE = """tags:
  - name: spend_{window}d
    label: {zh: "消费", en: "Spend"}
    description: Own spend.
    type: DECIMAL(18,2)
    source: transactions
    aggregate: sum(amount)
    where: customer_initiated AND direction = 'debit'
    windows: [30]
    default: 0
  - name: half_spend
    label: {zh: "半额", en: "Half"}
    description: Half the spend.
    type: DOUBLE
    expression: spend_30d / 2
"""
GOLDEN = {
    "duckdb": (
        """SUM(CASE WHEN ("customer_initiated" AND "direction" = 'debit') """
        """AND "txn_date" > CAST('2024-05-31' AS DATE) THEN "amount" END) AS "spend_30d\"""",
        """CAST((CASE WHEN CAST(2 AS DOUBLE) IS NULL OR CAST(2 AS DOUBLE) = 0 THEN CAST(NULL AS DOUBLE) """
        """ELSE CAST("spend_30d" AS DOUBLE) / CAST(2 AS DOUBLE) END) AS DOUBLE) AS "half_spend\""""),
    "spark": (
        """SUM(CASE WHEN (`customer_initiated` AND `direction` = 'debit') """
        """AND `txn_date` > CAST('2024-05-31' AS DATE) THEN `amount` END) AS `spend_30d`""",
        """CAST((CASE WHEN CAST(2 AS DOUBLE) IS NULL OR CAST(2 AS DOUBLE) = 0 THEN CAST(NULL AS DOUBLE) """
        """ELSE CAST(`spend_30d` AS DOUBLE) / CAST(2 AS DOUBLE) END) AS DOUBLE) AS `half_spend`"""),
}


def test_golden_sql_per_engine_for_a_windowed_sum_and_a_safe_division():
    query = compile_features(load_catalogue(FILE, FILE, text=GOLDEN_CATALOGUE), D)
    src, layer = ctes(query)["src_transactions"], ctes(query)["layer_1"]
    for dialect, (aggregate, expression) in GOLDEN.items():
        assert src.selects[1].sql(dialect) == aggregate
        assert layer.selects[1].sql(dialect) == expression
