"""Big sends need a second person (双人复核): held in the outbox until someone else approves, on both databases."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest
import sqlalchemy as sa

from lifeloop.execution.channels.base import Capabilities, Result
from lifeloop.execution.channels.files import FileChannel
from lifeloop.execution.dispatch import drain, enqueue_lists
from lifeloop.store.ops import approvals
from lifeloop.store.ops.approvals import ApprovalError, Need, Rules
from lifeloop.store.ops.database import unit_of_work
from lifeloop.store.ops.models import Approval, AuditEntry, Dispatch
from tests.ops_fixtures import database_url, ops_db  # noqa: F401 - fixtures

D = dt.date(2026, 3, 2)
T0 = dt.datetime(2026, 3, 2, 2, 0, tzinfo=dt.UTC)
RULES = Rules(max_per_strategy=3, max_per_day=5)


class Recorder:
    """A channel that records what it was asked to send, and delivers it."""

    capabilities = Capabilities()

    def __init__(self, name: str = "sms"):
        self.name = name
        self.sent: list[str] = []

    def send(self, batch):
        self.sent += [m.customer_id for m in batch]
        return [Result.sent(m) for m in batch]

    def close(self):
        pass


def lists(per_strategy: dict[str, int], channel: str = "sms") -> pa.Table:
    rows = [dict(as_of=D, customer_id=f"{s[:1].upper()}{i:04d}", strategy=s, wave="w1", group="treated",
                 status="contact", channel=channel, send_at=None, purpose="service", script_id=None,
                 script_key=None, offer=None, priority=10, rm_id="RM1")
            for s, n in per_strategy.items() for i in range(n)]
    return pa.Table.from_pylist(rows)


def statuses(factory) -> dict[str, int]:
    with unit_of_work(factory) as s:
        return dict(s.execute(sa.select(Dispatch.status, sa.func.count()).group_by(Dispatch.status)).all())


def run_drain(factory, channel):
    return drain(factory, {"sms": channel}, clock=lambda: T0)


def test_the_parts_of_a_day_that_need_approval_follow_the_sizes_and_the_unmasked_channels():
    rules = Rules(max_per_strategy=3, max_per_day=5, unmasked_channels=frozenset({"branch"}))
    assert approvals.needs({"a": 4, "b": 2}, {"sms": 6}, rules) == [
        Need("strategy_volume", "a", 4, 3), Need("day_volume", "*", 6, 5)]
    assert approvals.needs({"a": 3, "b": 2}, {"sms": 3, "branch": 2}, rules) == [Need("unmasked_export", "branch", 2)]
    assert approvals.needs({"a": 3}, {"sms": 3}, rules) == []


def test_a_strategy_above_its_size_is_held_and_a_drain_sends_only_the_rest(ops_db):
    summary = enqueue_lists(ops_db, lists({"big": 4, "small": 1}), approval=RULES, operator="alice", now=T0)
    assert (summary.enqueued, summary.held) == (5, 4)
    channel = Recorder()
    run_drain(ops_db, channel)
    assert channel.sent == ["S0000"]
    assert statuses(ops_db) == {"held": 4, "sent": 1}
    with unit_of_work(ops_db) as s:
        [request] = approvals.requests(s)
        assert (request.kind, request.scope, request.contacts, request.threshold, request.requested_by) == \
            ("strategy_volume", "big", 4, 3, "alice")
        logged = s.scalars(sa.select(AuditEntry).where(AuditEntry.action == "approval.request")).all()
        assert [(a.actor, a.reason) for a in logged] == [("alice", "4 contacts > 3")]


def test_the_requester_cannot_approve_their_own_send_and_the_database_refuses_it_too(ops_db):
    enqueue_lists(ops_db, lists({"big": 4}), approval=RULES, operator="alice", now=T0)
    with unit_of_work(ops_db) as s, pytest.raises(ApprovalError, match="four eyes"):
        approvals.decide(s, as_of=D, approve=True, by="alice", reason="looks fine", now=T0)
    with pytest.raises(sa.exc.IntegrityError), unit_of_work(ops_db) as s:
        s.execute(sa.update(Approval).values(status="approved", decided_by="alice"))
    assert statuses(ops_db) == {"held": 4}


def test_an_approval_by_someone_else_releases_the_day_and_it_is_sent_and_audited(ops_db):
    enqueue_lists(ops_db, lists({"big": 4}), approval=RULES, operator="alice", now=T0)
    with unit_of_work(ops_db) as s:
        done = approvals.decide(s, as_of=D, approve=True, by="bob", reason="campaign signed off", now=T0)
        assert (done.released, done.cancelled) == (4, 0)
    channel = Recorder()
    run_drain(ops_db, channel)
    assert sorted(channel.sent) == ["B0000", "B0001", "B0002", "B0003"]
    with unit_of_work(ops_db) as s:
        entry = s.scalars(sa.select(AuditEntry).where(AuditEntry.action == "approval.approve")).one()
        assert (entry.actor, entry.reason, entry.details["requested_by"]) == ("bob", "campaign signed off", "alice")


def test_after_a_rejection_nothing_of_the_held_day_ever_leaves(ops_db):
    enqueue_lists(ops_db, lists({"big": 4, "small": 1}), approval=RULES, operator="alice", now=T0)
    with unit_of_work(ops_db) as s:
        done = approvals.decide(s, as_of=D, approve=False, by="bob", reason="too many at once", now=T0)
        assert (done.released, done.cancelled) == (0, 4)
    enqueue_lists(ops_db, lists({"big": 4, "small": 1}), approval=RULES, operator="alice", now=T0)  # a re-run
    channel = Recorder()
    run_drain(ops_db, channel)
    run_drain(ops_db, channel)
    assert channel.sent == ["S0000"]
    assert statuses(ops_db) == {"cancelled": 4, "sent": 1}
    with unit_of_work(ops_db) as s:
        reasons = set(s.scalars(sa.select(Dispatch.blocked_reason).where(Dispatch.status == "cancelled")))
        assert reasons == {f"the send of strategy big on {D} rejected by bob: too many at once"}
        assert len(approvals.requests(s, status=None)) == 1   # the re-run asked for nothing new


def test_a_whole_day_above_its_size_needs_its_own_approval_besides_the_strategys(ops_db):
    enqueue_lists(ops_db, lists({"big": 4, "small": 2}), approval=RULES, operator="alice", now=T0)
    assert statuses(ops_db) == {"held": 6}
    with unit_of_work(ops_db) as s:
        assert approvals.decide(s, as_of=D, approve=True, by="bob", reason="ok", strategy="big", now=T0).released == 0
    with unit_of_work(ops_db) as s:
        assert approvals.decide(s, as_of=D, approve=True, by="carol", reason="ok", now=T0).released == 6


def test_a_day_that_grows_after_its_approval_holds_the_new_contacts_for_a_new_approval(ops_db):
    enqueue_lists(ops_db, lists({"big": 4}), approval=RULES, operator="alice", now=T0)
    with unit_of_work(ops_db) as s:
        approvals.decide(s, as_of=D, approve=True, by="bob", reason="ok", now=T0)
    summary = enqueue_lists(ops_db, lists({"big": 5}), approval=Rules(max_per_strategy=3, max_per_day=50),
                            operator="alice", now=T0)    # a re-plan adds one customer
    assert (summary.enqueued, summary.held) == (1, 1)
    with unit_of_work(ops_db) as s:
        assert [(a.contacts, a.status) for a in approvals.requests(s, status=None)] == [(4, "approved"), (5, "pending")]


def test_only_listed_approvers_may_approve(ops_db):
    enqueue_lists(ops_db, lists({"big": 4}), approval=RULES, operator="alice", now=T0)
    with unit_of_work(ops_db) as s, pytest.raises(ApprovalError, match="may not approve"):
        approvals.decide(s, as_of=D, approve=True, by="mallory", reason="ok", approvers=["bob"], now=T0)


def test_any_export_of_unmasked_personal_data_waits_for_approval_whatever_its_size(ops_db, tmp_path):
    branch = FileChannel("branch", tmp_path / "exports", recipient_role="rm")
    summary = enqueue_lists(ops_db, lists({"small": 1}, channel="branch"), adapters={"branch": branch},
                            operator="alice", now=T0)
    assert summary.held == 1
    drain(ops_db, {"branch": branch}, clock=lambda: T0)
    assert branch.written == []
    with unit_of_work(ops_db) as s:
        [request] = approvals.requests(s)
        assert (request.kind, request.scope) == ("unmasked_export", "branch")
        approvals.decide(s, as_of=D, approve=True, by="bob", reason="branch visit list", channel="branch", now=T0)
    drain(ops_db, {"branch": branch}, clock=lambda: T0)
    assert len(branch.written) == 1
