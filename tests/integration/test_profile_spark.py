"""The customer profile reads the same picture through Spark as through DuckDB."""

from __future__ import annotations

import pytest

from lifeloop.context import Context
from lifeloop.insight.profile import customer_profile
from tests.factories import canonical_bank, new_context, write_canonical

pytestmark = pytest.mark.spark


def test_the_profile_is_the_same_on_spark_and_on_duckdb(tmp_path, spark):
    ctx = new_context(tmp_path)
    ctx.ingest(write_canonical(tmp_path / "extracts", canonical_bank()))
    expected = customer_profile(ctx, "C1", role_name="compliance", reason="conformance")
    ctx.close()
    with Context(ctx.workspace, engine="spark") as on_spark:
        got = customer_profile(on_spark, "C1", role_name="compliance", reason="conformance")
    for p in (expected, got):
        p["access"].pop("at")
    assert got == expected
    assert [h["account_id"] for h in got["holdings"]] == ["A1", "A2"]
