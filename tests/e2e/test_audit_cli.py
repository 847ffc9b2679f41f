"""``lifeloop audit``: verify exits 1 naming a tampered entry even with the triggers dropped; export and prune."""

from __future__ import annotations

import datetime as dt
import sqlite3

from lifeloop.context import Context
from lifeloop.data.access import Principal
from lifeloop.store.ops import audit
from lifeloop.store.ops.database import unit_of_work
from lifeloop.workspace import init_workspace
from tests.cli_runner import lifeloop

OLD = dt.datetime(2024, 1, 10, 8, 0, tzinfo=dt.UTC)


def run(ws, *args, process=False):
    """The command in this process (tests/cli_runner.py); ``process=True``: in its own, as a user runs it."""
    return lifeloop("--workspace", str(ws), *args, process=process)


def workspace_with_entries(tmp_path):
    """Three old entries (ids 1..3), then the owner becomes the first administrator (entry 4, today)."""
    ws = tmp_path / "ws"
    init_workspace(ws)
    with Context(ws, principal=Principal.system("tests")) as ctx:
        with unit_of_work(ctx.ops()) as s:
            for i in range(3):
                audit.record(s, actor="cmp1", action="consent.withdraw", target_id=f"C{i}", reason="asked",
                             at=OLD + dt.timedelta(days=i))
        ctx.bootstrap_owner()
    return ws


def test_verify_exits_1_naming_the_entry_whose_reason_was_rewritten_with_the_triggers_dropped(tmp_path):
    ws = workspace_with_entries(tmp_path)
    ok = run(ws, "audit", "verify")
    # 3 entries, the owner made administrator, and this command's sign-in (audited too)
    assert ok.returncode == 0 and ok.stdout.startswith("audit log verified: 5 entries; head entry 5 hash ")
    with sqlite3.connect(ws / "ops.db") as db:
        db.execute("DROP TRIGGER audit_log_no_update")
        db.execute("UPDATE audit_log SET reason = 'nothing happened' WHERE id = 2")
    result = run(ws, "audit", "verify", process=True)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "the audit log does not verify: entry 2: its content does not match its hash" in result.stderr


def test_export_then_prune_past_the_retention_leaves_a_verifiable_chain(tmp_path):
    ws = workspace_with_entries(tmp_path)
    out = tmp_path / "audit-2024-01.jsonl"
    exported = run(ws, "audit", "export", "--from", "2024-01-01", "--to", "2024-01-31", "--out", str(out))
    assert exported.returncode == 0 and "3 entries (ids 1..3)" in exported.stdout
    refused = run(ws, "audit", "prune", "--before", "2024-02-01", "--archive", str(tmp_path / "missing.csv"))
    assert refused.returncode == 1 and "Traceback" not in refused.stderr and "no such archive file" in refused.stderr
    pruned = run(ws, "audit", "prune", "--before", "2024-02-01", "--archive", str(out))
    assert pruned.returncode == 0 and pruned.stdout.startswith("pruned 3 entries up to 3; anchor hash ")
    verified = run(ws, "audit", "verify")
    assert verified.returncode == 0 and "from the prune anchor after entry 3" in verified.stdout
