"""``lifeloop keys``: rotation re-wraps the data keys and rewrites the lake under the new master version, every
value stays readable, the run ids stay, and it is audited; re-encryption encrypts what was still plaintext."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import sqlalchemy as sa

from lifeloop.context import Context
from lifeloop.store.keys import version_of
from lifeloop.store.lake_crypto import encrypted_columns
from lifeloop.store.ops.database import unit_of_work
from lifeloop.store.ops.models import AuditEntry, Lead
from tests.cli_runner import lifeloop
from tests.factories import BANK_AS_OF, write_canonical


def run(ws, *args, process=False):
    """The command in this process (tests/cli_runner.py); ``process=True``: in its own, as a user runs it."""
    return lifeloop("--workspace", str(ws), *args, process=process, timeout=300)


def test_rotation_rewraps_rewrites_the_lake_keeps_run_ids_and_is_audited(tmp_path):
    ws = tmp_path / "ws"
    with Context.init(ws) as ctx:
        ctx.ingest(write_canonical(tmp_path / "src"))
        with unit_of_work(ctx.ops()) as s:
            s.add(Lead(name="欧阳晓明", phone="13912345678"))
        before = ctx.lake.manifest("bank", BANK_AS_OF)
        customers = ctx.lake.read_table(ctx.lake.snapshot_dir("bank", BANK_AS_OF) / "customers.parquet")
        hashed = ctx.keys.keyed_hash("suppression.mobile", "13912345678")
    done = run(ws, "keys", "rotate", "--reason", "yearly rotation", process=True)
    assert done.returncode == 0, done.stderr
    assert "master key version 2 is current" in done.stdout and "rewrote 6 lake file(s)" in done.stdout
    key_file = json.loads((ws / "keys" / "lifeloop.keys").read_text())
    assert key_file["current"] == 2 and [m["version"] for m in key_file["masters"]] == [1, 2]
    ring = json.loads((ws / "keys" / "keyring.json").read_text())["keys"]
    assert {version_of(w) for versions in ring.values() for w in versions.values()} == {"2"}
    with Context(ws) as ctx:
        after = ctx.lake.manifest("bank", BANK_AS_OF)
        assert after["run_id"] == before["run_id"] and after["content"] == before["content"]
        assert after["files"]["customers.parquet"] != before["files"]["customers.parquet"]   # new data keys
        path = ctx.lake.snapshot_dir("bank", BANK_AS_OF) / "customers.parquet"
        assert encrypted_columns(path) and ctx.lake.read_table(path).equals(customers)
        with ctx.ops()() as s:
            assert s.scalars(sa.select(Lead.name)).one() == "欧阳晓明"
            entry = s.scalars(sa.select(AuditEntry).where(AuditEntry.action == "keys.rotate")).one()
        assert ctx.keys.keyed_hash("suppression.mobile", "13912345678") == hashed
    assert (entry.target_id, entry.reason, entry.details["from_version"]) == ("2", "yearly rotation", "1")
    assert entry.details["lake_files"] == 6 and entry.details["rewrapped"] == ["hash#1", "ops.c2#1"]


def test_reencryption_encrypts_a_plaintext_lake_once_encryption_is_switched_on(tmp_path):
    ws = tmp_path / "ws"
    Context.init(ws)
    text = (ws / "lifeloop.yaml").read_text(encoding="utf-8")
    (ws / "lifeloop.yaml").write_text(text.replace("encryption: on", "encryption: off"), encoding="utf-8")
    with Context(ws) as ctx:
        ctx.ingest(write_canonical(tmp_path / "src"))
        path = ctx.lake.snapshot_dir("bank", BANK_AS_OF) / "customers.parquet"
        assert encrypted_columns(path) == [] and "李娜" in pq.read_table(path)["name"].to_pylist()
    (ws / "lifeloop.yaml").write_text(text, encoding="utf-8")
    done = run(ws, "keys", "reencrypt", "--new-data-key")
    assert done.returncode == 0, done.stderr
    assert "6 lake file(s)" in done.stdout
    with Context(ws) as ctx:
        assert encrypted_columns(path) == ["name", "birth_date", "id_number", "mobile", "email"]
        assert "李娜".encode() not in path.read_bytes()
        assert ctx.lake.read_table(path)["name"].to_pylist()[0] == "李娜"
        assert sorted(ctx.keys.ring.keys["ops.c2"]) == ["1"]      # --new-data-key made the first (and newest) one


def test_keys_init_refuses_to_overwrite_the_key_file(tmp_path):
    ws = tmp_path / "ws"
    Context.init(ws)
    done = run(ws, "keys", "init")
    assert done.returncode != 0 and "already exists" in (done.stderr + done.stdout)
    (ws / "keys" / "lifeloop.keys").unlink()
    done = run(ws, "keys", "init")
    assert done.returncode == 0 and "mode 0600" in done.stdout
