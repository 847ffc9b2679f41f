"""Strategy versions in the operations database, on SQLite and PostgreSQL: numbering, transitions audited, a
revert's approval marking what it rolled back, and the database refusing an author's own decision."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from lifeloop.store.ops import strategy_versions as store
from lifeloop.store.ops.models import AuditEntry
from tests.ops_fixtures import database_url, ops_db, session  # noqa: F401 - fixtures


def test_versions_are_numbered_per_strategy_and_every_transition_is_on_the_audit_log(session):
    v1 = store.create(session, strategy_id="a", branch_id=None, definition="id: a\n", author="ana", base_version=0)
    v2 = store.create(session, strategy_id="a", branch_id="B01", definition="id: a\n", author="bm", base_version=0)
    other = store.create(session, strategy_id="b", branch_id=None, definition="id: b\n", author="ana",
                         base_version=0)
    assert (v1.version, v2.version, other.version) == (1, 2, 1)
    store.save(session, v1, definition="id: a\nholdout: 0.2\n", note="why", actor="ana")
    store.submit(session, v1, actor="ana")
    store.decide(session, v1, approve=True, actor="chk", comment="ok")
    assert store.live_stamp(session)
    back = store.create(session, strategy_id="a", branch_id=None, definition="id: a\n", author="ana",
                        base_version=1, status="submitted", reverts_version=0)
    store.decide(session, back, approve=True, actor="chk", comment=None)
    assert [(v.version, v.status) for v in store.versions(session, "a")] == [(1, "reverted"), (2, "draft"),
                                                                             (3, "approved")]
    acts = [(e.actor, e.action, e.target_id) for e in session.scalars(sa.select(AuditEntry).order_by(AuditEntry.id))
            if e.action.startswith("strategy.")]
    assert acts == [("ana", "strategy.draft", "a@1"), ("bm", "strategy.draft", "a@2"), ("ana", "strategy.draft", "b@1"),
                    ("ana", "strategy.save", "a@1"), ("ana", "strategy.submit", "a@1"),
                    ("chk", "strategy.approve", "a@1"), ("ana", "strategy.revert", "a@3"),
                    ("chk", "strategy.approve", "a@3"), ("chk", "strategy.reverted", "a@1")]


def test_the_database_refuses_a_decision_by_the_author(session):
    v = store.create(session, strategy_id="a", branch_id=None, definition="id: a\n", author="ana", base_version=0)
    store.submit(session, v, actor="ana")
    with pytest.raises(sa.exc.IntegrityError):
        store.decide(session, v, approve=True, actor="ana", comment=None)
