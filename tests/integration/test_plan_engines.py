"""The audiences and plan steps write identical files whether DuckDB or Spark finds the audiences."""

from __future__ import annotations

import pytest

from tests.factories import lake_fingerprint
from tests.integration.test_plan import D, ctx  # noqa: F401  (the tiny lake fixture)


def plan_files(ctx, engine) -> dict:
    """Run audiences and plan on ``engine``; the hashes of the Parquet files they published."""
    ctx.run(D, ["audiences", "plan"], engine=engine)
    return {k: v for k, v in lake_fingerprint(ctx).items() if k.startswith(("audiences/", "lists/"))
            and k.endswith(".parquet")}


@pytest.mark.spark
def test_spark_and_duckdb_write_the_same_audiences_and_lists(ctx, spark):  # noqa: F811
    from lifeloop.engine.adapters.spark import SparkAdapter

    on_duckdb = plan_files(ctx, ctx.engine("duckdb"))
    on_spark = plan_files(ctx, SparkAdapter(session=spark))
    assert len(on_duckdb) == 4 and on_spark == on_duckdb  # audiences, lists, reassessments, values
