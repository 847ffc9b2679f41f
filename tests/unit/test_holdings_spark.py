"""The holdings analysis gives the same numbers on Spark as on DuckDB (same trees, shares in Python)."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lifeloop.engine.adapters.duckdb import DuckDBAdapter
from lifeloop.insight.holdings import analyse
from lifeloop.store.lake import Lake
from tests.fixtures_bank import publish_batch
from tests.unit.test_holdings import HOLDINGS, PRODUCTS, SEGMENT_COLUMNS, SEGMENTS, D

pytestmark = pytest.mark.spark


def test_penetration_counts_and_next_products_agree_between_duckdb_and_spark(tmp_path, spark):
    from lifeloop.engine.adapters.spark import SparkAdapter

    lake = Lake(tmp_path / "lake")
    publish_batch(lake, D, {"products": PRODUCTS, "holdings": HOLDINGS})
    seg = tmp_path / "segments.parquet"
    pq.write_table(pa.Table.from_pylist([dict(zip(SEGMENT_COLUMNS, r, strict=False)) for r in SEGMENTS]), seg)
    tiers = ["mass", "potential", "wealth", "private"]
    duck = DuckDBAdapter()
    try:
        expected = analyse(duck, lake, D, seg, tiers)
    finally:
        duck.close()
    got = analyse(SparkAdapter(session=spark), lake, D, seg, tiers)
    assert got == expected
    assert expected["product_counts"][-1]["single_product"] == 3
