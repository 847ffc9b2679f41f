"""The lake publishes snapshots atomically and reproducibly."""

import datetime as dt
import json

import pytest

from lifeloop.store.lake import Lake

D = dt.date(2024, 6, 30)


def tree_bytes(root):
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
            and p.name != "_runs.jsonl" and p.name != ".lock"}


def test_a_published_snapshot_has_files_and_a_manifest(tmp_path):
    lake = Lake(tmp_path / "lake")
    body = lake.publish("features", D, lambda d: (d / "features.parquet").write_bytes(b"x") and None,
                        manifest={"config_hash": "abc"})
    assert lake.dates("features") == [D]
    manifest = lake.manifest("features", D)
    assert manifest == body and manifest["config_hash"] == "abc" and "features.parquet" in manifest["files"]


def test_a_failed_write_leaves_the_lake_unchanged(tmp_path):
    lake = Lake(tmp_path / "lake")
    lake.publish("bank", D, lambda d: (d / "customers.parquet").write_bytes(b"old") and None)
    before = tree_bytes(lake.root)

    def broken(d):
        (d / "customers.parquet").write_bytes(b"new")
        raise ValueError("disk full")

    with pytest.raises(ValueError):
        lake.publish("bank", D, broken)
    assert tree_bytes(lake.root) == before
    assert not (lake.root / ".staging").exists()


def test_republishing_the_same_content_gives_identical_bytes(tmp_path):
    lake = Lake(tmp_path / "lake")
    write = lambda d: (d / "f.parquet").write_bytes(b"same") and None  # noqa: E731
    first = lake.publish("features", D, write, manifest={"config_hash": "h"})
    bytes1 = tree_bytes(lake.root)
    second = lake.publish("features", D, write, manifest={"config_hash": "h"})
    assert first["run_id"] == second["run_id"] and tree_bytes(lake.root) == bytes1
    runs = [json.loads(line) for line in (lake.root / "_runs.jsonl").read_text().splitlines()]
    assert len(runs) == 2


def test_a_crash_between_the_two_renames_is_recovered_on_open(tmp_path):
    lake = Lake(tmp_path / "lake")
    lake.publish("bank", D, lambda d: (d / "customers.parquet").write_bytes(b"v1") and None)
    final = lake.snapshot_dir("bank", D)
    final.rename(final.with_name(f".replaced-deadbeef-{final.name}"))  # as if killed mid-swap
    reopened = Lake(tmp_path / "lake")
    assert (reopened.snapshot_dir("bank", D) / "customers.parquet").read_bytes() == b"v1"


def test_bank_files_take_the_newest_state_and_every_fact_batch_up_to_the_date(tmp_path):
    lake = Lake(tmp_path / "lake")
    for day in (dt.date(2024, 1, 31), dt.date(2024, 2, 29), dt.date(2024, 3, 31)):
        lake.publish("bank", day, lambda d: [(d / f"{t}.parquet").write_bytes(b"x")
                                             for t in ("customers", "transactions")] and None)
    files = lake.bank_files(dt.date(2024, 3, 15))
    assert [p.parent.name for p in files["customers"]] == ["as_of=2024-02-29"]
    assert [p.parent.name for p in files["transactions"]] == ["as_of=2024-01-31", "as_of=2024-02-29"]
    assert "holdings" not in files
