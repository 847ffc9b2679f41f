"""The append-only audit log, idempotency keys, and relationship-manager tasks."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from lifeloop.errors import DataError, NotFoundError
from lifeloop.store.ops import audit, idempotency, tasks
from lifeloop.store.ops.database import unit_of_work
from lifeloop.store.ops.models import AuditEntry
from tests.ops_fixtures import database_url, ops_db, session  # noqa: F401 - fixtures

UTC = dt.UTC
T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
D = dt.date(2026, 3, 2)


def test_the_audit_log_records_who_did_what_to_which_thing_when_and_why(session):
    audit.record(session, actor="rm07", action="consent.withdraw", target_type="customer", target_id="C1",
                 reason="customer asked on the phone", details={"channel": "call"}, at=T0)
    audit.record(session, actor="ops1", action="dnd.add", target_type="customer", target_id="C2", at=T0)
    [entry] = audit.entries(session, target_type="customer", target_id="C1")
    assert (entry.actor, entry.action, entry.at, entry.reason, entry.details) == \
        ("rm07", "consent.withdraw", T0, "customer asked on the phone", {"channel": "call"})
    assert [e.actor for e in audit.entries(session, since=T0)] == ["rm07", "ops1"]


def test_the_audit_log_refuses_changes_and_deletes_through_the_orm(session):
    entry = audit.record(session, actor="rm07", action="task.complete", at=T0)
    entry.reason = "rewritten history"
    with pytest.raises(DataError, match="append-only"):
        session.flush()
    session.rollback()
    entry = audit.record(session, actor="rm07", action="task.complete", at=T0)
    session.delete(entry)
    with pytest.raises(DataError, match="append-only"):
        session.flush()


@pytest.mark.parametrize("statement", [
    sa.update(AuditEntry).values(actor="someone else"),
    sa.delete(AuditEntry),
], ids=["update", "delete"])
def test_the_database_itself_refuses_to_update_or_delete_audit_entries(ops_db, statement):
    with unit_of_work(ops_db) as s:
        audit.record(s, actor="rm07", action="task.complete", at=T0)
    with ops_db() as s:
        with pytest.raises(sa.exc.DatabaseError, match="append-only"):
            s.execute(statement)
    with ops_db() as s:
        assert [(e.actor, e.action) for e in audit.entries(s)] == [("rm07", "task.complete")]


def test_a_request_key_is_handled_once_and_replays_get_the_first_result(session):
    digest = idempotency.content_hash(b"feedback file bytes")
    assert idempotency.begin(session, scope="feedback_import", key="f1", request_hash=digest, now=T0).new
    idempotency.finish(session, scope="feedback_import", key="f1", result={"rows": 12})
    replay = idempotency.begin(session, scope="feedback_import", key="f1", request_hash=digest, now=T0)
    assert (replay.new, replay.result) == (False, {"rows": 12})
    assert idempotency.begin(session, scope="api", key="f1", now=T0).new  # scopes are separate
    with pytest.raises(DataError, match="different request"):
        idempotency.begin(session, scope="feedback_import", key="f1", request_hash="other", now=T0)


def test_a_reserved_key_disappears_when_its_transaction_fails_so_the_request_can_be_retried(ops_db):
    with pytest.raises(RuntimeError):
        with unit_of_work(ops_db) as s:
            idempotency.begin(s, scope="feedback_import", key="f1", now=T0)
            raise RuntimeError("import failed half way")
    with unit_of_work(ops_db) as s:
        assert idempotency.begin(s, scope="feedback_import", key="f1", now=T0).new


def test_an_rms_worklist_holds_only_their_own_open_tasks_most_important_first(session):
    def make(rm, customer, priority, due=D):
        return tasks.create_task(session, rm_id=rm, customer_id=customer, title=f"call {customer}", due_on=due,
                                 priority=priority, script="您好, ...", strategy_id="retention", wave="d7")

    low, high, other = make("RM07", "C1", 1), make("RM07", "C2", 9), make("RM08", "C3", 5)
    later = make("RM07", "C4", 9, due=D + dt.timedelta(days=3))
    done = make("RM07", "C5", 9)
    tasks.complete_task(session, rm_id="RM07", task_id=done.id, note="bought", at=T0)
    assert [t.customer_id for t in tasks.worklist(session, rm_id="RM07", on=D)] == ["C2", "C1"]
    assert [t.customer_id for t in tasks.worklist(session, rm_id="RM07")] == ["C2", "C4", "C1"]
    assert [t.id for t in tasks.worklist(session, rm_id="RM08")] == [other.id]
    assert {low.id, high.id, later.id}.isdisjoint({t.id for t in tasks.worklist(session, rm_id="RM08")})


def test_an_rm_cannot_touch_another_rms_task(session):
    task = tasks.create_task(session, rm_id="RM08", customer_id="C3", title="call", due_on=D)
    with pytest.raises(NotFoundError, match="not in RM07's worklist"):
        tasks.complete_task(session, rm_id="RM07", task_id=task.id, at=T0)
    assert task.status == "open"


def test_a_task_moves_forward_only_and_overdue_tasks_expire(session):
    task = tasks.create_task(session, rm_id="RM07", customer_id="C1", title="call", due_on=D)
    tasks.start_task(session, rm_id="RM07", task_id=task.id, at=T0)
    tasks.complete_task(session, rm_id="RM07", task_id=task.id, at=T0 + dt.timedelta(hours=1))
    assert (task.status, task.started_at, task.completed_at) == ("done", T0, T0 + dt.timedelta(hours=1))
    with pytest.raises(DataError, match="is done; it cannot become in_progress"):
        tasks.start_task(session, rm_id="RM07", task_id=task.id, at=T0)
    stale = tasks.create_task(session, rm_id="RM07", customer_id="C2", title="call", due_on=D - dt.timedelta(days=8))
    fresh = tasks.create_task(session, rm_id="RM07", customer_id="C3", title="call", due_on=D)
    assert tasks.expire_overdue(session, today=D, grace_days=7) == 1
    session.refresh(stale)
    session.refresh(fresh)
    assert (stale.status, fresh.status) == ("expired", "open")


def test_a_task_from_an_rm_contact_references_it_and_one_contact_makes_one_task(session):
    from lifeloop.store.ops import contacts

    contact_id = contacts.enqueue(session, contacts=[contacts.NewContact(D, "C1", "retention", "d7", "rm",
                                                                        rm_id="RM07")], now=T0).new_ids[0]
    task = tasks.create_task(session, rm_id="RM07", customer_id="C1", title="call", due_on=D, dispatch_id=contact_id)
    assert task.dispatch.channel == "rm"
    with pytest.raises(sa.exc.IntegrityError):
        tasks.create_task(session, rm_id="RM07", customer_id="C1", title="again", due_on=D, dispatch_id=contact_id)


def test_on_postgresql_even_truncating_the_audit_log_is_refused(ops_db, database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite has no TRUNCATE (its DELETE trigger is tested above)")
    with unit_of_work(ops_db) as s:
        audit.record(s, actor="rm07", action="task.complete", at=T0)
    with ops_db() as s:
        with pytest.raises(sa.exc.DatabaseError, match="TRUNCATE is not allowed"):
            s.execute(sa.text("TRUNCATE audit_log"))
