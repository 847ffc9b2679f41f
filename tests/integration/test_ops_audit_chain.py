"""The audit log proves itself: a hash chain that finds edited, deleted, inserted and reordered entries,
even after the database owner disabled or dropped the append-only triggers; export, retention and prune."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import threading

import pytest
import sqlalchemy as sa

from lifeloop.errors import DataError
from lifeloop.store.ops import audit
from lifeloop.store.ops.database import session_factory, unit_of_work
from lifeloop.store.ops.migrations import upgrade
from lifeloop.store.ops.models import AuditArchive, AuditEntry
from tests.ops_fixtures import database_url, ops_db, session  # noqa: F401 - fixtures

UTC = dt.UTC
T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_an_entry_hash_is_sha256_of_its_canonical_json_and_the_previous_hash(session):
    first = audit.record(session, actor="rm07", action="consent.withdraw", target_type="customer", target_id="C1",
                         reason="asked on the phone", details={"channel": "call"}, at=T0, host="h1", client="pid 9")
    written = ('{"action":"consent.withdraw","actor":"rm07","at":"2026-03-02T09:00:00.000000+00:00","client":"pid 9",'
               '"details":{"channel":"call"},"host":"h1","prev_hash":"' + "0" * 64 + '","reason":"asked on the phone",'
               '"result":"ok","target_id":"C1","target_type":"customer"}')
    assert first.prev_hash == "0" * 64 and first.entry_hash == hashlib.sha256(written.encode()).hexdigest()
    second = audit.record(session, actor="ops1", action="dnd.add", at=T0)   # an existing caller, unchanged
    assert second.prev_hash == first.entry_hash and second.result == "ok"
    assert second.host and second.client.startswith("pid ")
    assert audit.verify(session).ok and audit.verify(session).head_id == second.id


def committed(ops_db, n: int = 5) -> list[int]:
    with unit_of_work(ops_db) as s:
        ids = [audit.record(s, actor=f"user{i}", action="consent.withdraw", target_type="customer",
                            target_id=f"C{i}", reason=f"reason {i}", at=T0 + dt.timedelta(minutes=i)).id
               for i in range(1, n + 1)]
    return ids


def without_triggers(ops_db, *statements: str) -> None:
    """What a database owner can do: drop (SQLite) or disable (PostgreSQL) the triggers, then change rows."""
    engine = ops_db.kw["bind"]
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql("DROP TRIGGER audit_log_no_update")
            conn.exec_driver_sql("DROP TRIGGER audit_log_no_delete")
        else:
            conn.exec_driver_sql("ALTER TABLE audit_log DISABLE TRIGGER USER")
        for statement in statements:
            conn.execute(sa.text(statement))


def first_break(ops_db) -> audit.Break:
    with ops_db() as s:
        found = audit.verify(s)
        with pytest.raises(audit.AuditChainError):
            audit.require_intact(s)
    assert not found.ok
    return found.breaks[0]


def test_an_edited_reason_is_found_after_the_triggers_were_disabled(ops_db):
    ids = committed(ops_db)
    without_triggers(ops_db, f"UPDATE audit_log SET reason = 'nothing to see' WHERE id = {ids[2]}")
    bad = first_break(ops_db)
    assert bad.entry_id == ids[2] and "edited" in bad.problem


def test_an_edit_that_recomputes_its_own_hash_is_found_at_the_next_entry(ops_db):
    ids = committed(ops_db)
    with ops_db() as s:
        e = s.get(AuditEntry, ids[1])
        fields = {**audit.fields_of(e), "reason": "rewritten"}
        forged = audit.entry_hash(fields, e.prev_hash)
    without_triggers(ops_db, f"UPDATE audit_log SET reason = 'rewritten', entry_hash = '{forged}' WHERE id = {ids[1]}")
    bad = first_break(ops_db)
    assert bad.entry_id == ids[2] and f"does not follow entry {ids[1]}" in bad.problem


def test_a_deleted_entry_is_found(ops_db):
    ids = committed(ops_db)
    without_triggers(ops_db, f"DELETE FROM audit_log WHERE id = {ids[1]}")
    bad = first_break(ops_db)
    assert bad.entry_id == ids[2] and f"does not follow entry {ids[0]}" in bad.problem and "deleted" in bad.problem


def test_a_deleted_last_entry_is_found_from_the_chains_head(ops_db):
    ids = committed(ops_db)
    without_triggers(ops_db, f"DELETE FROM audit_log WHERE id = {ids[-1]}")
    bad = first_break(ops_db)
    assert bad.entry_id == ids[-1] and "entries at the end were deleted" in bad.problem


def test_a_forged_entry_inserted_in_the_middle_with_a_valid_hash_is_named(ops_db):
    ids = committed(ops_db, 4)
    with ops_db() as s:
        before = s.get(AuditEntry, ids[1])
        fields = {**audit.fields_of(before), "actor": "intruder", "reason": "cover story",
                  "at": before.at + dt.timedelta(seconds=1)}
        forged = audit.entry_hash(fields, before.entry_hash)
    at = fields["at"].replace(tzinfo=None).isoformat(sep=" ")
    # make room after entry 2 (from the top, so no key clashes), then put the forged entry there
    shift = [f"UPDATE audit_log SET id = id + 1 WHERE id = {i}" for i in reversed(ids[2:])]
    without_triggers(ops_db, *shift, "INSERT INTO audit_log (id, at, actor, action, target_type, target_id, reason, "
                     f"details, host, client, result, prev_hash, entry_hash) VALUES ({ids[2]}, '{at}', 'intruder', "
                     f"'consent.withdraw', 'customer', 'C2', 'cover story', NULL, '{before.host}', '{before.client}', "
                     f"'ok', '{before.entry_hash}', '{forged}')")
    bad = first_break(ops_db)
    assert bad.entry_id == ids[2] and "was inserted or moved" in bad.problem


def test_two_entries_swapped_are_found(ops_db):
    ids = committed(ops_db)
    without_triggers(ops_db, f"UPDATE audit_log SET id = 1000 WHERE id = {ids[1]}",
                     f"UPDATE audit_log SET id = {ids[1]} WHERE id = {ids[2]}",
                     f"UPDATE audit_log SET id = {ids[2]} WHERE id = 1000")
    bad = first_break(ops_db)
    assert bad.entry_id == ids[1] and f"does not follow entry {ids[0]}" in bad.problem


def test_two_writers_appending_at_once_never_fork_the_chain(ops_db):
    errors: list[BaseException] = []

    def writer(name: str) -> None:
        try:
            for i in range(25):
                with unit_of_work(ops_db) as s:
                    audit.record(s, actor=name, action="task.complete", target_id=str(i))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with ops_db() as s:
        found = audit.verify(s)
        prevs = s.scalars(sa.select(AuditEntry.prev_hash)).all()
    assert found.ok and found.checked == 50 and len(set(prevs)) == 50   # no two entries share a parent


def test_entries_written_before_the_chain_existed_are_chained_by_the_migration(database_url):
    upgrade(database_url, "0001")
    engine = sa.create_engine(database_url) if database_url.startswith("sqlite") else None
    factory = session_factory(database_url)
    with factory.kw["bind"].begin() as conn:
        for i in range(3):
            conn.execute(sa.text("INSERT INTO audit_log (at, actor, action, details) VALUES (:at, :actor, 'x', :d)"),
                         {"at": T0.replace(tzinfo=None) + dt.timedelta(hours=i), "actor": f"old{i}",
                          "d": json.dumps({"n": i})})
    upgrade(database_url)
    with unit_of_work(factory) as s:
        audit.record(s, actor="new", action="y")
    with factory() as s:
        found = audit.verify(s)
        assert found.ok and found.checked == 4
        assert [e.actor for e in audit.entries(s)][:3] == ["old0", "old1", "old2"]
    factory.kw["bind"].dispose()
    if engine is not None:
        engine.dispose()


# ---------------------------------------------------------------------------------------------- export, prune
OLD = dt.datetime(2024, 1, 10, 8, 0, tzinfo=UTC)
NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def aged(ops_db) -> list[int]:
    """Three entries from January 2024 and two from 2026."""
    with unit_of_work(ops_db) as s:
        at = [OLD, OLD + dt.timedelta(days=1), OLD + dt.timedelta(days=2), NOW - dt.timedelta(days=2),
              NOW - dt.timedelta(days=1)]
        return [audit.record(s, actor="ops", action="dnd.add", target_id=str(i), at=a).id for i, a in enumerate(at)]


@pytest.mark.parametrize("suffix", ["csv", "jsonl"])
def test_entries_are_exported_with_their_hashes_and_the_export_is_audited(ops_db, tmp_path, suffix):
    ids = aged(ops_db)
    with unit_of_work(ops_db) as s:
        done = audit.export(s, start=OLD, end=OLD + dt.timedelta(days=2), out=tmp_path / f"a.{suffix}", actor="cmp1")
    assert (done.entries, done.first_id, done.last_id) == (2, ids[0], ids[1])
    held = audit.read_export(done.path)
    with ops_db() as s:
        assert held == {i: s.get(AuditEntry, i).entry_hash for i in ids[:2]}
        last = audit.entries(s)[-1]
        assert (last.action, last.actor, last.details["sha256"]) == \
            ("audit.export", "cmp1", hashlib.sha256(done.path.read_bytes()).hexdigest())


def test_pruning_after_export_keeps_the_chain_verifiable_from_its_anchor(ops_db, tmp_path):
    ids = aged(ops_db)
    with unit_of_work(ops_db) as s:
        archive = audit.export(s, start=OLD, end=OLD + dt.timedelta(days=30), out=tmp_path / "2024-01.csv",
                               actor="cmp1").path
    with unit_of_work(ops_db) as s:
        pruned = audit.prune(s, before=dt.datetime(2024, 2, 1, tzinfo=UTC), archive=archive, actor="cmp1",
                             retention_months=12, now=NOW)
    assert (pruned.entries, pruned.last_id) == (3, ids[2])
    with ops_db() as s:
        found = audit.verify(s)
        assert found.ok and found.anchor_id == ids[2] and found.checked == 4   # 2 kept + export + prune entries
        assert [e.id for e in audit.entries(s)][:2] == ids[3:]
        assert (s.scalars(sa.select(AuditArchive)).one().archive_sha256
                == hashlib.sha256(archive.read_bytes()).hexdigest())
    with ops_db() as s:   # the triggers still refuse deleting an entry no anchor covers
        with pytest.raises(sa.exc.DatabaseError, match="append-only"):
            s.execute(sa.delete(AuditEntry.__table__).where(AuditEntry.__table__.c.id == ids[3]))


def test_pruning_without_an_export_or_within_the_retention_is_refused(ops_db, tmp_path):
    ids = aged(ops_db)
    with unit_of_work(ops_db) as s:
        partial = audit.export(s, start=OLD, end=OLD + dt.timedelta(days=1), out=tmp_path / "part.jsonl",
                               actor="cmp1").path
    with ops_db() as s:
        with pytest.raises(DataError, match=f"does not hold 2 of the 3 entries to prune \\(first: entry {ids[1]}\\)"):
            audit.prune(s, before=dt.datetime(2024, 2, 1, tzinfo=UTC), archive=partial, actor="cmp1",
                        retention_months=12, now=NOW)
        with pytest.raises(DataError, match="kept 12 months: nothing written after 2025-03-02"):
            audit.prune(s, before=dt.datetime(2025, 6, 1, tzinfo=UTC), archive=partial, actor="cmp1",
                        retention_months=12, now=NOW)
    with ops_db() as s:
        assert audit.verify(s).checked == 6


def test_a_forged_anchor_is_found(ops_db, tmp_path):
    ids = aged(ops_db)
    with ops_db() as s:
        second = s.get(AuditEntry, ids[1])
    engine = ops_db.kw["bind"]
    with engine.begin() as conn:  # an owner deletes the first entries and invents an anchor for them
        conn.execute(sa.insert(AuditArchive.__table__).values(at=NOW, last_id=ids[1], last_hash=second.entry_hash,
                                                              before=NOW, entries=2, archive_name="x",
                                                              archive_sha256="0" * 64, pruned_by="intruder"))
        conn.execute(sa.delete(AuditEntry.__table__).where(AuditEntry.__table__.c.id <= ids[1]))
    bad = first_break(ops_db)
    assert bad.entry_id == ids[1] and "not confirmed by an audit.prune entry" in bad.problem


def test_months_before_counts_calendar_months():
    assert audit.months_before(dt.datetime(2026, 3, 31, tzinfo=UTC), 1) == dt.datetime(2026, 2, 28, tzinfo=UTC)
    assert audit.months_before(dt.datetime(2026, 3, 2, tzinfo=UTC), 12) == dt.datetime(2025, 3, 2, tzinfo=UTC)
    assert audit.months_before(dt.datetime(2024, 2, 29, tzinfo=UTC), 12) == dt.datetime(2023, 2, 28, tzinfo=UTC)
