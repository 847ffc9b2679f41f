"""The engine adapters: thin, declared capabilities, bank views as of a date, clear failures."""

from __future__ import annotations

import pyarrow as pa
import pytest
import sqlglot

from lifeloop.engine.adapters import connect
from lifeloop.errors import ConfigError, EngineError
from lifeloop.store.lake import Lake
from tests.fixtures_bank import LATER, D, publish_tiny_bank


def test_an_unknown_engine_gets_a_did_you_mean():
    with pytest.raises(ConfigError, match="unknown engine 'duckbd'; did you mean 'duckdb'"):
        connect("duckbd")


def test_adapters_declare_what_they_can_do_instead_of_being_asked_their_name():
    from lifeloop.engine.adapters.duckdb import DuckDBAdapter
    from lifeloop.engine.adapters.spark import SparkAdapter

    for cls in (DuckDBAdapter, SparkAdapter):
        assert cls.supports_decimal_38 and cls.strict_casts
    assert DuckDBAdapter.dialect == "duckdb" and SparkAdapter.dialect == "spark"
    assert DuckDBAdapter.in_process and not SparkAdapter.in_process


def test_bank_views_show_the_bank_as_of_a_date(tmp_path):
    lake = Lake(tmp_path / "lake")
    publish_tiny_bank(lake)
    engine = connect("duckdb")
    engine.register_bank(lake, D)
    count = sqlglot.parse_one("SELECT count(*) AS n, max(txn_date) AS last FROM transactions")
    row = engine.to_arrow(count).to_pylist()[0]
    assert row["n"] == 13 and row["last"] == D  # T14 (2024-07-02) is cut, the next batch is not read
    customers = engine.to_arrow(sqlglot.parse_one("SELECT customer_id FROM customers ORDER BY 1"))
    assert customers["customer_id"].to_pylist() == ["C001", "C002", "C004", "C005"]
    engine.register_bank(lake, LATER)
    row = engine.to_arrow(count).to_pylist()[0]
    assert row["n"] == 16  # both batches of transactions, all dated on or before 2024-07-31
    engine.close()


def test_a_table_the_bank_never_sent_is_empty_with_its_canonical_columns(tmp_path):
    engine = connect("duckdb")
    engine.register_bank(Lake(tmp_path / "lake"), D)
    events = engine.to_arrow(sqlglot.parse_one("SELECT * FROM events"))
    assert events.num_rows == 0 and events.schema.field("event_date").type == pa.date32()
    engine.close()


def test_a_value_too_big_for_its_type_fails_with_a_hint_to_widen_the_tag():
    engine = connect("duckdb")
    with pytest.raises(EngineError) as info:
        engine.to_arrow(sqlglot.parse_one("SELECT CAST(1e12 AS INTEGER) AS x", read="duckdb"))
    assert "out of range" in info.value.message and "widen it in config/tags.yaml" in info.value.hint
    engine.close()


@pytest.mark.spark
def test_spark_fails_on_overflow_as_duckdb_does_and_leaves_a_shared_session_running(spark):
    engine = connect("spark")
    assert engine.spark is spark and spark.conf.get("spark.sql.ansi.enabled") == "true"
    assert spark.conf.get("spark.sql.session.timeZone") == "UTC"
    with pytest.raises(EngineError):
        engine.to_arrow(sqlglot.parse_one("SELECT CAST(1e12 AS INTEGER) AS x", read="duckdb"))
    engine.close()
    assert spark.sql("SELECT 1 AS one").collect()[0].one == 1
