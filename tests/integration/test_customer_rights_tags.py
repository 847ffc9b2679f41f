"""Tag deletion (算法推荐管理规定 Art. 17) through the pipeline and the retention run (SQLite and PostgreSQL), the
lake rewrite itself, and the suppression key."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from lifeloop.context import Context
from lifeloop.errors import NotFoundError
from lifeloop.store import erasure
from lifeloop.store.lake import Lake
from lifeloop.store.ops.models import AuditEntry, RightsRequest
from lifeloop.store.suppression import digest
from tests.factories import allow_days_after_batch, new_context
from tests.fixtures_bank import LATER, D, publish_tiny_bank
from tests.ops_fixtures import database_url, ops_db  # noqa: F401 - fixtures

INSIGHT = ["features", "lifecycle", "segments"]


@pytest.fixture()
def ctx(tmp_path, ops_db):  # noqa: F811
    context = allow_days_after_batch(new_context(tmp_path), 40)
    context._ops = ops_db
    publish_tiny_bank(context.lake)
    yield context
    context.close()


def ids(ctx, area, day) -> list[str]:
    return pq.read_table(ctx.lake.snapshot_file(area, day), columns=["customer_id"])["customer_id"].to_pylist()


@pytest.mark.slow   # two days of three insight steps on each database: ~30 s on a busy 2-core machine
def test_after_a_tag_deletion_request_no_derived_snapshot_holds_the_customer_and_retention_rewrites_the_old_ones(ctx):
    ctx.run(D, INSIGHT)
    assert all("C001" in ids(ctx, area, D) for area in INSIGHT)
    before = {area: ctx.lake.manifest(area, D)["run_id"] for area in INSIGHT}
    with pytest.raises(NotFoundError):
        ctx.delete_tags("C999", reason="typo")
    ctx.delete_tags("C001", reason="letter of 2024-07-02")
    ctx.run(LATER, INSIGHT)                                  # the next run: derived snapshots leave C001 out
    for area in INSIGHT:
        assert "C001" not in ids(ctx, area, LATER) and "C002" in ids(ctx, area, LATER), area
        assert "C001" in ids(ctx, area, D)                   # retained until the retention run
    # features left C001 out; the steps after it never saw C001 (their input lacks it)
    assert [ctx.lake.manifest(a, LATER)["tags_deleted_rows"] for a in INSIGHT] == [1, 0, 0]
    done = ctx.apply_retention()
    assert done.customers == 1 and sorted(done.rewritten.snapshots) == [f"{a}/{D}" for a in sorted(INSIGHT)]
    for area in INSIGHT:
        assert "C001" not in ids(ctx, area, D) and "C002" in ids(ctx, area, D)
        manifest = ctx.lake.manifest(area, D)
        assert manifest["run_id"] != before[area] and manifest["erasures"][0]["kind"] == "delete_tags"
        assert "C001" not in str(manifest)                   # the manifest says what, never whom
    again = ctx.apply_retention()                            # nothing pending: nothing rewritten
    assert again.requests == [] and again.rewritten.rows == 0
    with ctx.ops()() as s:
        request = s.scalars(sa.select(RightsRequest)).one()
        assert (request.status, request.details["rows"]) == ("applied", 3)
        assert [(e.action, e.target_id) for e in s.scalars(sa.select(AuditEntry).where(
            AuditEntry.action.startswith("rights.")).order_by(AuditEntry.id))] == [
            ("rights.delete_tags.request", "C001"), ("rights.retention.apply", None)]
    assert ctx.customer_rights("C001")["tags_deleted"]


def test_a_rewrite_removes_rows_blanks_the_reason_of_lists_and_leaves_other_snapshots_byte_identical(tmp_path):
    lake = Lake(tmp_path / "lake")
    day, other = dt.date(2024, 6, 30), dt.date(2024, 7, 1)
    lists = pa.table({"customer_id": ["C1", "C2"], "reason": ["aum=600000.00", "stage=new"], "status": ["contact"] * 2})
    for d, t in ((day, lists), (other, lists.filter(pa.array([False, True])))):
        lake.publish("lists", d, lambda st, t=t: pq.write_table(t, st / "lists.parquet"), manifest={"step": "plan"})
    lake.publish("features", day, lambda st: pq.write_table(lists.select(["customer_id"]), st / "features.parquet"))
    untouched = (lake.snapshot_dir("lists", other) / "lists.parquet").read_bytes()
    done = erasure.rewrite_areas(lake, ["lists"], ["C1"], note={"kind": "delete_tags"},
                                 blank={"lists": {"lists.parquet": ("reason",)}})
    assert done.as_dict() == {"snapshots": {"lists/2024-06-30": 1}, "rows": 1, "looked_at": 2}
    assert pq.read_table(lake.snapshot_file("lists", day)).to_pylist() == [
        {"customer_id": "C1", "reason": None, "status": "contact"},       # the contact stays, the tag values go
        {"customer_id": "C2", "reason": "stage=new", "status": "contact"}]
    assert lake.manifest("lists", day)["step"] == "plan"                 # the old manifest's fields are kept
    assert (lake.snapshot_dir("lists", other) / "lists.parquet").read_bytes() == untouched
    erasure.rewrite_areas(lake, erasure.areas(lake), ["C1"], note={"kind": "purge"})
    assert pq.read_table(lake.snapshot_file("features", day))["customer_id"].to_pylist() == ["C2"]
    assert pq.read_table(lake.snapshot_file("lists", day))["customer_id"].to_pylist() == ["C2"]
    assert not list((tmp_path / "lake").glob(".staging/*"))


def test_suppression_digests_are_keyed_by_the_key_manager_normalised_and_stable_across_a_rotation(tmp_path):
    import hashlib

    ctx = Context.init(tmp_path / "ws")
    a = digest(ctx.keys, "mobile", "+86 138-1234-1234")
    assert a == digest(ctx.keys, "mobile", "13812341234")                  # normalised before hashing
    assert a != digest(ctx.keys, "id_number", "13812341234")               # the kind is part of what is hashed
    assert a != hashlib.sha256(b"mobile:13812341234").hexdigest()           # keyed: no dictionary reverses it
    assert digest(ctx.keys, "mobile", "  ") is None
    ctx.rotate_keys(reason="test: a rotation keeps suppression records matchable")
    with Context(ctx.workspace) as again:
        assert digest(again.keys, "mobile", "13812341234") == a
    other = Context.init(tmp_path / "other")
    assert digest(other.keys, "mobile", "13812341234") != a                 # another workspace, another key
    ctx.close()
    other.close()
