"""The dispatch outbox: enqueue once per idempotency key, claim without overlap, retry, give up, recover."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
import sqlalchemy as sa

from lifeloop.store.ops import contacts
from lifeloop.store.ops.contacts import NewContact
from lifeloop.store.ops.database import unit_of_work
from lifeloop.store.ops.models import Dispatch
from tests.ops_fixtures import database_url, ops_db, session  # noqa: F401 - fixtures

D = dt.date(2026, 3, 2)
T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


def contact(customer: str, channel: str = "sms", wave: str = "d1", **kw) -> NewContact:
    return NewContact(as_of=D, customer_id=customer, strategy_id="honeymoon", wave=wave, channel=channel, **kw)


def fill(factory, n: int) -> list[int]:
    with unit_of_work(factory) as s:
        return contacts.enqueue(s, contacts=[contact(f"C{i:04d}") for i in range(n)], now=T0).new_ids


def test_enqueuing_the_same_list_twice_adds_each_contact_once(session):
    first = contacts.enqueue(session, contacts=[contact("C1"), contact("C2")], now=T0)
    again = contacts.enqueue(session, contacts=[contact("C2"), contact("C3")], now=T0)
    assert len(first.new_ids) == 2 and len(again.new_ids) == 1
    assert again.existing_keys == [contacts.dispatch_key(D, "honeymoon", "d1", "C2", "sms")]
    assert session.scalar(sa.select(sa.func.count()).select_from(Dispatch)) == 3


def test_an_idempotency_key_cannot_be_inserted_twice_even_around_the_service(session):
    key = contacts.dispatch_key(D, "honeymoon", "d1", "C1", "sms")
    common = dict(as_of=D, customer_id="C1", strategy_id="honeymoon", wave="d1", channel="sms")
    session.add(Dispatch(idempotency_key=key, **common))
    session.flush()
    session.add(Dispatch(idempotency_key=key, **common))
    with pytest.raises(sa.exc.IntegrityError):
        session.flush()


def test_the_same_list_line_always_gets_the_same_key_and_another_line_another_key():
    assert contact("C1").key == contact("C1").key
    assert len({contact("C1").key, contact("C2").key, contact("C1", channel="push").key,
                contact("C1", wave="d7").key}) == 4


def test_a_claim_takes_at_most_the_limit_oldest_due_first_and_counts_an_attempt(session):
    contacts.enqueue(session, contacts=[contact(f"C{i}") for i in range(5)], now=T0)
    contacts.enqueue(session, contacts=[contact("LATER", not_before=T0 + dt.timedelta(minutes=3))], now=T0)
    batch = contacts.claim_batch(session, worker="w1", limit=3, now=T0)
    assert [d.customer_id for d in batch] == ["C0", "C1", "C2"]
    assert {(d.status, d.attempts, d.claimed_by) for d in batch} == {("claimed", 1, "w1")}
    assert batch[0].claim_expires_at == T0 + contacts.DEFAULT_LEASE
    rest = contacts.claim_batch(session, worker="w2", limit=10, now=T0)
    assert [d.customer_id for d in rest] == ["C3", "C4"]  # LATER is not due until 09:03
    assert [d.customer_id for d in contacts.claim_batch(session, worker="w3", now=T0 + dt.timedelta(minutes=3))] \
        == ["LATER"]


def test_concurrent_claimers_never_get_the_same_item_and_together_get_them_all(ops_db):
    ids = fill(ops_db, 300)
    claimed: dict[str, list[int]] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def worker(name: str) -> None:
        got: list[int] = []
        try:
            start.wait()
            while True:
                with unit_of_work(ops_db) as s:
                    batch = [d.id for d in contacts.claim_batch(s, worker=name, limit=7, now=T0)]
                if not batch:
                    break
                got.extend(batch)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)
        claimed[name] = got

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    every = [i for got in claimed.values() for i in got]
    assert len(every) == len(set(every)) == 300
    assert sorted(every) == sorted(ids)
    with ops_db() as s:
        assert contacts.outbox_counts(s)["claimed"] == 300


def test_on_postgresql_a_second_claimer_skips_locked_rows_instead_of_waiting(ops_db, database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("SKIP LOCKED is PostgreSQL's; SQLite serialises writers (covered by the concurrency test)")
    fill(ops_db, 10)
    with ops_db() as first, ops_db() as second:
        a = [d.id for d in contacts.claim_batch(first, worker="a", limit=4, now=T0)]  # not committed: locked
        second.execute(sa.text("SET LOCAL lock_timeout = '2s'"))  # would fail, not hang, if it waited
        b = [d.id for d in contacts.claim_batch(second, worker="b", limit=4, now=T0)]
        assert len(a) == len(b) == 4 and not set(a) & set(b)
        first.commit()
        second.commit()


def test_a_failed_send_comes_back_after_a_backoff_and_gives_up_after_its_last_attempt(session):
    contacts.enqueue(session, contacts=[contact("C1", max_attempts=3)], now=T0)
    now = T0
    waits = []
    for attempt in (1, 2, 3):
        [item] = contacts.claim_batch(session, worker="w", now=now)
        assert item.attempts == attempt
        status = contacts.mark_failed(session, dispatch_id=item.id, claim_token=item.claim_token,
                                      error="HTTP 503", now=now)
        if attempt < 3:
            assert status == "pending"
            session.refresh(item)
            waits.append(item.next_attempt_at - now)
            assert contacts.claim_batch(session, worker="w", now=item.next_attempt_at - dt.timedelta(seconds=1)) == []
            now = item.next_attempt_at
        else:
            assert status == "failed"
    assert waits == [dt.timedelta(seconds=30), dt.timedelta(seconds=60)]
    assert contacts.claim_batch(session, worker="w", now=now + dt.timedelta(days=1)) == []
    assert contacts.outbox_counts(session)["failed"] == 1


def test_a_rejected_request_is_not_retried_and_a_429_waits_at_least_its_retry_after(session):
    contacts.enqueue(session, contacts=[contact("C1"), contact("C2")], now=T0)
    first, second = contacts.claim_batch(session, worker="w", now=T0)
    assert contacts.mark_failed(session, dispatch_id=first.id, claim_token=first.claim_token, error="HTTP 400",
                                now=T0, retryable=False) == "failed"
    assert contacts.mark_failed(session, dispatch_id=second.id, claim_token=second.claim_token, error="HTTP 429",
                                now=T0, retry_after=dt.timedelta(minutes=10)) == "pending"
    session.refresh(second)
    assert second.next_attempt_at == T0 + dt.timedelta(minutes=10)


def test_backoff_doubles_per_attempt_up_to_a_cap():
    waits = [contacts.retry_at(n, T0) - T0 for n in (1, 2, 3, 4, 20)]
    assert waits == [dt.timedelta(seconds=s) for s in (30, 60, 120, 240)] + [contacts.RETRY_CAP]


def test_a_crashed_workers_items_are_claimable_again_when_its_lease_expires(session):
    contacts.enqueue(session, contacts=[contact("C1"), contact("C2")], now=T0)
    crashed = contacts.claim_batch(session, worker="crashed", now=T0)
    crashed_ids, old_token = [d.id for d in crashed], crashed[0].claim_token
    assert contacts.claim_batch(session, worker="w2", now=T0 + dt.timedelta(minutes=4)) == []
    later = T0 + contacts.DEFAULT_LEASE
    retaken = contacts.claim_batch(session, worker="w2", now=later)
    assert [d.id for d in retaken] == crashed_ids
    assert {(d.claimed_by, d.attempts) for d in retaken} == {("w2", 2)}
    # the crashed worker comes back to life: its claim is gone, so it cannot overwrite w2's work
    assert not contacts.mark_sent(session, dispatch_id=retaken[0].id, claim_token=old_token, now=later)
    assert contacts.mark_failed(session, dispatch_id=retaken[0].id, claim_token=old_token, now=later,
                                error="late") is None
    assert contacts.mark_sent(session, dispatch_id=retaken[0].id, claim_token=retaken[0].claim_token, now=later,
                              provider_ref="gw-1")
    session.refresh(retaken[0])
    assert (retaken[0].status, retaken[0].sent_at, retaken[0].provider_ref) == ("sent", later, "gw-1")


def test_an_item_whose_worker_died_on_every_attempt_ends_failed_not_stuck(session):
    contacts.enqueue(session, contacts=[contact("C1", max_attempts=2)], now=T0)
    now = T0
    for _ in range(2):
        assert len(contacts.claim_batch(session, worker="w", now=now)) == 1
        now += contacts.DEFAULT_LEASE
    assert contacts.claim_batch(session, worker="w", now=now) == []
    assert contacts.outbox_counts(session)["failed"] == 1


def test_a_dispatch_time_refusal_blocks_the_item_for_good_with_its_reason(session):
    contacts.enqueue(session, contacts=[contact("C1")], now=T0)
    [item] = contacts.claim_batch(session, worker="w", now=T0)
    assert contacts.block(session, dispatch_id=item.id, claim_token=item.claim_token,
                          reason="do-not-disturb: complaint", now=T0)
    session.refresh(item)
    assert (item.status, item.blocked_reason) == ("blocked", "do-not-disturb: complaint")
    assert contacts.claim_batch(session, worker="w", now=T0 + dt.timedelta(days=1)) == []


def test_only_waiting_items_can_be_cancelled(session):
    made = contacts.enqueue(session, contacts=[contact("C1"), contact("C2")], now=T0)
    contacts.claim_batch(session, worker="w", limit=1, now=T0)
    assert contacts.cancel(session, dispatch_ids=made.new_ids, reason="strategy paused", now=T0) == 1
    assert contacts.outbox_counts(session) == {"pending": 0, "claimed": 1, "sending": 0, "sent": 0, "failed": 0,
                                               "blocked": 0, "cancelled": 1, "held": 0, "unknown": 0}


def test_recent_contacts_for_frequency_caps_leave_out_failed_blocked_and_older_ones(session):
    contacts.enqueue(session, contacts=[contact("OLD")], now=T0 - dt.timedelta(days=40))
    contacts.enqueue(session, contacts=[contact("C1"), contact("C2", channel="push"), contact("C3")], now=T0)
    batch = {d.customer_id: d for d in contacts.claim_batch(session, worker="w", now=T0)}
    contacts.mark_sent(session, dispatch_id=batch["C1"].id, claim_token=batch["C1"].claim_token, now=T0)
    contacts.mark_failed(session, dispatch_id=batch["C3"].id, claim_token=batch["C3"].claim_token, now=T0,
                         error="HTTP 400", retryable=False)
    table = contacts.recent_contacts(session, since=T0 - dt.timedelta(days=30))
    rows = sorted((r["customer_id"], r["channel"], r["status"]) for r in table.to_pylist())
    assert rows == [("C1", "sms", "sent"), ("C2", "push", "claimed")]
    assert table.schema.field("created_at").type.tz == "UTC"


def test_a_customers_history_is_newest_first(session):
    contacts.enqueue(session, contacts=[contact("C1", wave="d1")], now=T0)
    contacts.enqueue(session, contacts=[contact("C1", wave="d7", channel="call")], now=T0 + dt.timedelta(days=6))
    contacts.enqueue(session, contacts=[contact("C2")], now=T0)
    assert [(d.wave, d.channel) for d in contacts.history(session, customer_id="C1")] == [("d7", "call"), ("d1", "sms")]


def test_a_whole_batch_can_be_marked_sent_at_once_but_only_while_the_claim_is_held(session):
    contacts.enqueue(session, contacts=[contact(f"C{i}") for i in range(5)], now=T0)
    batch = contacts.claim_batch(session, worker="export", limit=3, now=T0)
    ids = [d.id for d in batch]
    token = batch[0].claim_token
    others = [d.id for d in contacts.claim_batch(session, worker="other", now=T0)]
    assert contacts.mark_sent_many(session, claim_token=token, dispatch_ids=ids + others, now=T0) == sorted(ids)
    assert contacts.outbox_counts(session)["sent"] == 3 and contacts.outbox_counts(session)["claimed"] == 2
    assert {d.status for d in batch} == {"sent"}


def test_a_late_report_from_a_worker_given_up_on_still_counts_if_nobody_claimed_the_item_since(session):
    contacts.enqueue(session, contacts=[contact("C1", max_attempts=1)], now=T0)
    [item] = contacts.claim_batch(session, worker="slow", now=T0)
    token = item.claim_token
    later = T0 + 2 * contacts.DEFAULT_LEASE
    assert contacts.claim_batch(session, worker="w2", now=later) == []  # gives the item up as failed
    assert contacts.outbox_counts(session)["failed"] == 1
    assert contacts.mark_sent(session, dispatch_id=item.id, claim_token=token, now=later, provider_ref="gw-9")
    assert contacts.outbox_counts(session)["sent"] == 1
