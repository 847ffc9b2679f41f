"""The customer profile reads the same picture through Spark as through DuckDB."""

from __future__ import annotations

import pytest

from lifeloop.context import Context
from lifeloop.data.masking import KINDS, viewer_role
from lifeloop.insight.profile import customer_profile
from tests.factories import canonical_bank, new_context, write_canonical

pytestmark = pytest.mark.spark


def test_the_profile_is_the_same_on_spark_and_on_duckdb(tmp_path, spark):
    ctx = new_context(tmp_path)
    ctx.ingest(write_canonical(tmp_path / "extracts", canonical_bank()))
    # compliance holding an unmask grant for every kind: the raw picture, so both engines' values are compared
    viewer = viewer_role("compliance", set(KINDS) - {"other"})
    expected = customer_profile(ctx, "C1", viewer=viewer)
    ctx.close()
    with Context(ctx.workspace, engine="spark") as on_spark:
        got = customer_profile(on_spark, "C1", viewer=viewer)
    for p in (expected, got):
        p["access"].pop("at", None)
    assert got == expected
    assert len(got["holdings"]) == 2 and got["attributes"]["name"] == "李娜"   # unmasked, so values are compared
