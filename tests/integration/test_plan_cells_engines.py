"""Cells on both engines: the tiny lake's welcome strategy split into two cells plans to identical files."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from tests.integration.test_plan import STRATEGIES, D, ctx  # noqa: F401  (the tiny lake fixture)
from tests.integration.test_plan_engines import plan_files

CELLS = """\
    cells:
      - {id: a, share: 0.5, waves: [w1]}
      - {id: b, share: 0.5, scripts: {sms: {zh: "【示例银行】B{{ customer_name }}，回复TD退订", en: "【Demo Bank】B. Reply STOP to opt out"}}}
"""  # noqa: E501


@pytest.mark.spark
def test_spark_and_duckdb_write_the_same_lists_with_cells(ctx, spark):  # noqa: F811
    from lifeloop.engine.adapters.spark import SparkAdapter

    at = STRATEGIES.index("  - id: salary_day")
    (ctx.config_dir / "strategies.yaml").write_text(STRATEGIES[:at] + CELLS + STRATEGIES[at:], encoding="utf-8")

    on_duckdb = plan_files(ctx, ctx.engine("duckdb"))
    lists = pq.read_table(ctx.lake.snapshot_dir("lists", D) / "lists.parquet").to_pylist()
    welcome = [r for r in lists if r["strategy"] == "welcome"]
    assert {r["cell"] for r in welcome if r["group"] == "treated"} <= {"a", "b"}
    assert any(r["cell"] for r in welcome) and all(r["cell"] is None for r in welcome if r["group"] == "control")
    on_spark = plan_files(ctx, SparkAdapter(session=spark))
    assert len(on_duckdb) == 4 and on_spark == on_duckdb
