"""DuckDB and Spark measure the same outcomes, byte for byte, on the hand-made bank of the unit tests.

The hand-made bank (tests/unit/test_outcomes.py) has every case the measuring queries must get right:
a purchase on the entry day and after the window, a closed account, loans and cards that are not
assets, products with and without terms and fee rates, salary and interest that are not the
customer's doing. The same entries measured by the two engines must give equal tables.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lifeloop.data.schema import arrow_schema
from lifeloop.engine.adapters.base import write_arrow
from lifeloop.engine.adapters.duckdb import DuckDBAdapter
from lifeloop.review import outcomes
from lifeloop.store.lake import Lake
from tests.unit.strategy_factories import config
from tests.unit.test_outcomes import (AS_OF, HOLDINGS, MEASURE_LISTS, PRODUCTS, STAGES, TRANSACTIONS, care_strategy, d,
                                      lists, wm_strategy)

pytestmark = pytest.mark.spark


def test_duckdb_and_spark_measure_the_same_outcomes(spark, tmp_path):
    from lifeloop.engine.adapters.spark import SparkAdapter

    lake = Lake(tmp_path / "lake")

    def bank(staging):
        for name, rows in (("products", PRODUCTS), ("holdings", HOLDINGS), ("transactions", TRANSACTIONS)):
            pq.write_table(pa.Table.from_pylist(rows, schema=arrow_schema(name)), staging / f"{name}.parquet")

    lake.publish("bank", d("2024-05-31"), bank)
    table = outcomes.entries(lists(MEASURE_LISTS), config(wm_strategy(), care_strategy()), AS_OF)
    table = table.append_column("segment", pa.array(["mass"] * table.num_rows, pa.string()))
    table = table.append_column("stage", pa.array([STAGES[c] for c in table["customer_id"].to_pylist()], pa.string()))
    path = tmp_path / "entries.parquet"
    write_arrow(table, path)
    found = {}
    for name, engine in (("duckdb", DuckDBAdapter()), ("spark", SparkAdapter(session=spark))):
        engine.register_bank(lake, d("2024-05-31"))
        found[name] = outcomes.measure(engine, table, path)
        if name == "duckdb":
            engine.close()
    assert found["duckdb"].num_rows == table.num_rows
    assert found["duckdb"].equals(found["spark"]), (found["duckdb"].to_pylist(), found["spark"].to_pylist())
