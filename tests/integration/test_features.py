"""The feature step on DuckDB over a tiny hand-made bank: every tag equals its hand-computed value."""

from __future__ import annotations

import datetime as dt
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lifeloop.context import Context
from tests.fixtures_bank import EXPECTED, LATER, D, publish_tiny_bank


@pytest.fixture()
def ctx(tmp_path):
    context = Context.init(tmp_path / "bank")
    publish_tiny_bank(context.lake)
    yield context
    context.close()


def rows_by_customer(table: pa.Table) -> dict[str, dict]:
    return {r["customer_id"]: r for r in table.to_pylist()}


def test_every_default_tag_matches_its_hand_computed_value(ctx):
    ctx.run(D, steps=["features"])
    got = rows_by_customer(ctx.features(D))
    for customer, expected in EXPECTED.items():
        for tag, value in expected.items():
            assert got[customer][tag] == value, f"{customer} {tag}"


def test_a_customer_who_opens_after_the_as_of_date_is_left_out(ctx):
    ctx.run(D, steps=["features"])
    assert ctx.features(D)["customer_id"].to_pylist() == ["C001", "C002", "C004", "C005"]


def test_nothing_after_the_as_of_date_is_read_but_the_next_batch_is_seen_on_its_date(ctx):
    ctx.run(D, steps=["features"])
    ctx.run(LATER, steps=["features"])
    now, later = rows_by_customer(ctx.features(D)), rows_by_customer(ctx.features(LATER))
    # the late row T14 (2024-07-02) sits in the D batch; T90 (2024-07-05) and the new birth dates in the next
    assert now["C005"]["monetary_30d"] == EXPECTED["C005"]["monetary_30d"]
    assert now["C001"]["age"] == 44 and later["C001"]["age"] == 25
    assert later["C001"]["frequency_30d"] == 1 and later["C001"]["monetary_30d"] == 777
    assert later["C005"]["monetary_30d"] == 500  # T14 on 07-02; T12 on 06-30 is before the window
    assert "C003" in later  # opened 2024-07-15


def test_rerunning_a_date_writes_identical_bytes(ctx):
    ctx.run(D, steps=["features"])
    folder = ctx.lake.snapshot_dir("features", D)
    first = {p.name: p.read_bytes() for p in folder.iterdir()}
    ctx.run(D, steps=["features"])
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == first


def test_the_snapshot_is_stamped_with_config_hash_engine_inputs_and_rows(ctx):
    [result] = ctx.run(D, steps=["features"])
    manifest = json.loads((ctx.lake.snapshot_dir("features", D) / "_manifest.json").read_text())
    assert manifest["config_hash"] == ctx.config_hash("tags")
    assert manifest["engine"] == "duckdb" and manifest["rows"] == 4 == result.rows
    assert manifest["inputs"] == {"bank": {D.isoformat(): ctx.lake.manifest("bank", D)["run_id"]}}
    assert manifest["configs"] == {"tags": ctx.config_hash("tags")} and manifest["step"] == "features"
    assert result.run_id == manifest["run_id"]


def test_each_tag_has_its_declared_type_and_labels(ctx):
    ctx.run(D, steps=["features"])
    schema = pq.read_schema(ctx.lake.snapshot_dir("features", D) / "features.parquet")
    assert schema.field("frequency_30d").type == pa.int32()
    assert schema.field("aum").type == pa.decimal128(18, 2)
    assert schema.field("digital_share_90d").type == pa.float64()
    assert schema.field("payroll_flag").type == pa.bool_()
    assert schema.field("aum").metadata[b"label_zh"].decode() == "管理资产(AUM)"


def test_changing_the_catalogue_changes_the_config_hash_and_the_columns(ctx):
    ctx.run(D, steps=["features"])
    before = ctx.lake.manifest("features", D)["config_hash"]
    path = ctx.config_dir / "tags.yaml"
    path.write_text(path.read_text(encoding="utf-8") + """
  - name: big_spender
    label: {zh: "大额消费客户", en: "Big spender"}
    description: Spent more than 100 in the last 30 days.
    type: BOOLEAN
    expression: monetary_30d > 100
""", encoding="utf-8")
    fresh = Context(ctx.workspace)
    fresh.run(D, steps=["features"])
    got = rows_by_customer(fresh.features(D))
    assert fresh.lake.manifest("features", D)["config_hash"] != before
    assert got["C001"]["big_spender"] is True and got["C005"]["big_spender"] is False
    fresh.close()


def test_a_lake_without_customers_is_a_clear_error(tmp_path):
    from lifeloop.errors import DataError

    context = Context.init(tmp_path / "empty")
    with pytest.raises(DataError, match="no bank batch has been ingested: there is nothing to run on"):
        context.run(dt.date(2024, 6, 30), steps=["features"])
    context.close()


def test_tables_a_bank_never_delivered_count_as_empty(tmp_path):
    from tests.fixtures_bank import BRANCHES, CUSTOMERS, PRODUCTS, RMS, TRANSACTIONS, publish_batch

    context = Context.init(tmp_path / "small")
    publish_batch(context.lake, D, {"branches": BRANCHES, "relationship_managers": RMS, "customers": CUSTOMERS,
                                    "products": PRODUCTS, "transactions": TRANSACTIONS})
    context.run(D, steps=["features"])
    got = rows_by_customer(context.features(D))
    assert got["C001"]["frequency_30d"] == 2 and got["C001"]["aum"] == 0 and got["C001"]["products_held"] == 0
    assert got["C001"]["app_logins_30d"] == 0 and got["C001"]["days_since_last_login"] is None
    context.close()
