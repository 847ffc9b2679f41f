"""The lifecycle KPIs give the same numbers on Spark as on DuckDB (same trees, rates in Python)."""

from __future__ import annotations

import pytest

from lifeloop.review import kpis
from tests.unit.insight_factories import HISTORY_DATES
from tests.unit.test_kpis import lake, result  # noqa: F401  (the hand-built lake and its DuckDB result)

pytestmark = pytest.mark.spark

D0, D3 = HISTORY_DATES[0], HISTORY_DATES[-1]


def test_every_kpi_agrees_between_duckdb_and_spark(lake, result, spark):  # noqa: F811
    from lifeloop.engine.adapters.spark import SparkAdapter

    got = kpis.compute(SparkAdapter(session=spark), lake, D0, D3)
    for key in result:
        assert got[key] == result[key], key
