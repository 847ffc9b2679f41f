"""Claims know their owner; dead owners' claims come back at once; sends of unknown outcome are held and resolved."""

from __future__ import annotations

import dataclasses
import datetime as dt
import subprocess
import sys

import pytest
import sqlalchemy as sa

from lifeloop.errors import DataError, LifeloopError, NotFoundError
from lifeloop.store.ops import audit, contacts, delivery
from lifeloop.store.ops.contacts import NewContact
from lifeloop.store.ops.models import Dispatch
from lifeloop.store.ops.owners import Owner, host_name, is_alive, process_start
from tests.ops_fixtures import database_url, ops_db, session  # noqa: F401 - fixtures

D = dt.date(2026, 3, 2)
T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
ME = Owner.current()
DEAD = Owner(ME.host, 999_999_999, T0)            # a pid that cannot exist on this host
ELSEWHERE = Owner("another-host", 4242, T0)       # a process we cannot see


def fill(session, n: int, channel: str = "sms") -> list[int]:
    items = [NewContact(as_of=D, customer_id=f"C{i:04d}", strategy_id="s", wave="d1", channel=channel)
             for i in range(n)]
    return contacts.enqueue(session, contacts=items, now=T0).new_ids


def statuses(session) -> dict[str, str]:
    return dict(session.execute(sa.select(Dispatch.customer_id, Dispatch.status)).all())


def test_a_process_that_exited_is_dead_and_a_reused_pid_with_another_start_time_is_another_process():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    owner = Owner(host_name(), child.pid, process_start(child.pid))
    assert owner.started is not None and is_alive(owner)
    child.kill()
    child.wait(5)
    assert not is_alive(owner)
    assert is_alive(ME)
    assert not is_alive(dataclasses.replace(ME, started=ME.started - dt.timedelta(minutes=5)))


def test_a_claim_records_its_owners_host_pid_and_process_start(session):
    fill(session, 2)
    batch = contacts.claim_batch(session, worker="w", now=T0)
    assert {(d.claim_host, d.claim_pid, d.claim_started) for d in batch} == {(ME.host, ME.pid, ME.started)}


def test_a_dead_owners_claims_come_back_at_once_and_what_it_was_sending_is_unknown_or_resent_by_channel(session):
    fill(session, 3, "sms")
    fill(session, 1, "push")   # C0000 again, on push: its provider de-duplicates
    batch = contacts.claim_batch(session, worker="dead", owner=DEAD, now=T0)
    by = {(d.customer_id, d.channel): d for d in batch}
    token = batch[0].claim_token
    contacts.mark_sending(session, claim_token=token, dispatch_ids=[by["C0001", "sms"].id, by["C0000", "push"].id],
                          now=T0)
    got = delivery.recover(session, here=ME, dedup_channels={"push"}, now=T0 + dt.timedelta(seconds=1))
    assert (got.released, got.unknown, got.resent) == ({DEAD.label: 2}, 1, 1)
    rows = {(d.customer_id, d.channel): d for d in session.scalars(sa.select(Dispatch))}
    # claimed but never handed to the provider: pending again, and the attempt it never made is not counted
    assert (rows["C0000", "sms"].status, rows["C0000", "sms"].attempts, rows["C0000", "sms"].claim_token) == \
        ("pending", 0, None)
    assert rows["C0001", "sms"].status == "unknown"
    assert "died while sending" in rows["C0001", "sms"].unknown_reason
    assert (rows["C0000", "push"].status, rows["C0000", "push"].attempts) == ("pending", 1)
    # and the next claim (long before the 5-minute lease) takes them
    again = contacts.claim_batch(session, worker="me", now=T0 + dt.timedelta(seconds=2))
    assert sorted((d.customer_id, d.channel) for d in again) == [("C0000", "push"), ("C0000", "sms"), ("C0002", "sms")]


def test_another_hosts_claims_and_a_live_owners_claims_wait_out_their_lease(session):
    fill(session, 2)
    contacts.claim_batch(session, worker="a", owner=ELSEWHERE, limit=1, now=T0)
    contacts.claim_batch(session, worker="b", owner=ME, limit=1, now=T0)
    assert delivery.recover(session, here=ME, dedup_channels=(), now=T0).total == 0
    assert contacts.claim_batch(session, worker="c", now=T0 + dt.timedelta(minutes=4)) == []
    assert len(contacts.claim_batch(session, worker="c", now=T0 + dt.timedelta(minutes=6))) == 2


def test_a_sending_item_whose_lease_ran_out_on_another_host_becomes_unknown_not_resent(session):
    fill(session, 1)
    [item] = contacts.claim_batch(session, worker="far:1", owner=ELSEWHERE, now=T0)
    contacts.mark_sending(session, claim_token=item.claim_token, dispatch_ids=[item.id], now=T0)
    assert delivery.recover(session, here=ME, dedup_channels=(), now=T0 + dt.timedelta(minutes=4)).total == 0
    got = delivery.recover(session, here=ME, dedup_channels=(), now=T0 + dt.timedelta(minutes=6))
    assert got.unknown == 1 and statuses(session) == {"C0000": "unknown"}
    assert contacts.claim_batch(session, worker="c", now=T0 + dt.timedelta(days=1)) == []
    # the worker was alive after all, and its answer arrives: it still counts
    assert contacts.mark_sent(session, dispatch_id=item.id, claim_token=item.claim_token, now=T0)


def test_an_interrupted_dispatcher_releases_its_own_claims_and_no_one_elses(session):
    fill(session, 3)
    mine = contacts.claim_batch(session, worker="me", limit=2, now=T0)
    contacts.claim_batch(session, worker="other", owner=ELSEWHERE, limit=1, now=T0)
    contacts.mark_sending(session, claim_token=mine[0].claim_token, dispatch_ids=[mine[0].id], now=T0)
    got = delivery.release(session, claim_tokens=[mine[0].claim_token], owner=ME.label, dedup_channels=(), now=T0)
    assert (got.released, got.unknown) == ({ME.label: 1}, 1)
    assert statuses(session) == {"C0000": "unknown", "C0001": "pending", "C0002": "claimed"}
    assert "interrupted while sending" in session.scalar(sa.select(Dispatch.unknown_reason)
                                                         .where(Dispatch.status == "unknown"))


def unknown_one(session, customer: str = "C0000") -> Dispatch:
    item = session.scalar(sa.select(Dispatch).where(Dispatch.customer_id == customer))
    if item.status == "pending":
        contacts.claim_batch(session, worker="w", now=T0)
        session.refresh(item)
    contacts.mark_sending(session, claim_token=item.claim_token, dispatch_ids=[item.id], now=T0)
    assert contacts.mark_unknown(session, dispatch_id=item.id, claim_token=item.claim_token,
                                 reason="timeout: ReadTimeout after the request was written", now=T0)
    return item


def test_unknown_contacts_are_listed_with_reason_and_age(session):
    fill(session, 2)
    unknown_one(session)
    [u] = delivery.unknown_items(session, now=T0 + dt.timedelta(hours=3))
    assert (u.customer_id, u.age, u.reason) == ("C0000", dt.timedelta(hours=3),
                                                "timeout: ReadTimeout after the request was written")


def test_an_operator_resolves_unknown_contacts_as_sent_or_not_sent_and_each_decision_is_audited(session):
    fill(session, 3)
    a, b, c = (unknown_one(session, f"C000{i}") for i in range(3))
    later = T0 + dt.timedelta(hours=2)
    delivery.resolve(session, key=a.idempotency_key[:10], outcome="sent", reason="provider report", actor="ops1",
                     now=later)
    delivery.resolve(session, key=b.idempotency_key, outcome="not-sent", reason="provider has no record",
                     actor="ops1", now=later)
    delivery.resolve(session, key=c.idempotency_key, outcome="not-sent", reason="provider has no record",
                     actor="ops1", now=later, resend=True)
    rows = {d.customer_id: d for d in session.scalars(sa.select(Dispatch))}
    assert (rows["C0000"].status, rows["C0000"].sent_at) == ("sent", T0)   # sent when it was attempted
    assert rows["C0001"].status == "failed" and "resolved by ops1" in rows["C0001"].last_error
    assert (rows["C0002"].status, rows["C0002"].next_attempt_at) == ("pending", later)
    entries = audit.entries(session, target_type="dispatch")
    assert [(e.actor, e.action, e.details["resolution"], e.details["status"]) for e in entries] == [
        ("ops1", "outbox.resolve", "sent", "sent"), ("ops1", "outbox.resolve", "not-sent", "failed"),
        ("ops1", "outbox.resolve", "not-sent", "pending")]
    assert entries[0].details["unknown_reason"].startswith("timeout")


def test_resolving_a_contact_that_is_not_unknown_or_without_a_reason_is_refused_and_changes_nothing(session):
    fill(session, 2)
    item = unknown_one(session)
    other = session.scalar(sa.select(Dispatch).where(Dispatch.customer_id == "C0001"))
    with pytest.raises(DataError, match="is claimed, not unknown"):
        delivery.resolve(session, key=other.idempotency_key, outcome="sent", reason="x", actor="ops1")
    with pytest.raises(LifeloopError, match="needs a reason"):
        delivery.resolve(session, key=item.idempotency_key, outcome="sent", reason="  ", actor="ops1")
    with pytest.raises(NotFoundError, match="no contact with key"):
        delivery.resolve(session, key="feedfacefeedface", outcome="sent", reason="x", actor="ops1")
    assert statuses(session) == {"C0000": "unknown", "C0001": "claimed"}
    assert audit.entries(session) == []


def test_a_status_look_up_settles_unknown_contacts_as_sent_or_due_again(session):
    fill(session, 2)
    a, b = unknown_one(session, "C0000"), unknown_one(session, "C0001")
    assert delivery.settle_unknown(session, dispatch_id=a.id, delivered=True, evidence="status: delivered",
                                   now=T0 + dt.timedelta(minutes=1)) == "sent"
    assert delivery.settle_unknown(session, dispatch_id=b.id, delivered=False, evidence="status: not found",
                                   now=T0 + dt.timedelta(minutes=1)) == "pending"
    assert delivery.settle_unknown(session, dispatch_id=b.id, delivered=True, evidence="again",
                                   now=T0 + dt.timedelta(minutes=1)) is None   # no longer unknown
    assert statuses(session) == {"C0000": "sent", "C0001": "pending"}
    assert [e.action for e in audit.entries(session)] == ["outbox.reconciled", "outbox.reconciled"]


def test_what_other_dispatchers_hold_and_unknown_contacts_per_channel_are_counted(session):
    fill(session, 3)
    mine = contacts.claim_batch(session, worker="me:1", limit=1, now=T0)
    contacts.claim_batch(session, worker="far:7", owner=ELSEWHERE, limit=2, now=T0)
    assert delivery.held_by_others(session, own_tokens=[mine[0].claim_token]) == [
        ("far:7", 2, T0 + contacts.DEFAULT_LEASE)]
    contacts.mark_sending(session, claim_token=mine[0].claim_token, dispatch_ids=[mine[0].id], now=T0)
    contacts.mark_unknown(session, dispatch_id=mine[0].id, claim_token=mine[0].claim_token, reason="timeout", now=T0)
    assert delivery.unknown_by_channel(session) == {"sms": 1}
