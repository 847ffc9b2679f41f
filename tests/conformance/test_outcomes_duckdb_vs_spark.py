"""DuckDB and Spark measure the same outcomes, byte for byte, on the hand-made bank of the unit tests.

The hand-made bank (tests/unit/test_outcomes.py) has every case the measuring queries must get right:
a purchase on the entry day and after the window, a closed account, loans and cards that are not
assets, products with and without terms and fee rates, salary and interest that are not the
customer's doing. The same entries measured by the two engines must give equal tables.
"""

from __future__ import annotations

import pytest

from lifeloop.engine.adapters.duckdb import DuckDBAdapter
from lifeloop.review import outcomes
from tests.unit.test_outcomes import BANK_DAY, hand_made_bank

pytestmark = pytest.mark.spark


def test_duckdb_and_spark_measure_the_same_outcomes(spark, tmp_path):
    from lifeloop.engine.adapters.spark import SparkAdapter

    lake, table, path = hand_made_bank(tmp_path)
    found = {}
    for name, engine in (("duckdb", DuckDBAdapter()), ("spark", SparkAdapter(session=spark))):
        engine.register_bank(lake, BANK_DAY)
        found[name] = outcomes.measure(engine, table, path)
        if name == "duckdb":
            engine.close()
    assert found["duckdb"].num_rows == table.num_rows
    assert found["duckdb"].equals(found["spark"]), (found["duckdb"].to_pylist(), found["spark"].to_pylist())
