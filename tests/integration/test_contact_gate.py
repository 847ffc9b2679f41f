"""The contact gate at send time, checked against what a recording gateway actually received (SQLite and PostgreSQL).

The cases of issue 12's first list that the gate holds: a drain at 02:00 local, a consent withdrawal
while a slow gateway drains, a refusal recorded before a queued SMS, a re-plan of a dispatched day with
another channel order, and plans made five days ahead of dispatching. Plus the ledger under concurrent
reservations, and what a failed send does to its place.
"""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
import sqlalchemy as sa

from lifeloop.config.contact_policy import ContactPolicy
from lifeloop.config.contact_rules import EVERY_CHANNEL, Limit
from lifeloop.execution.dispatch import _snapshot, drain
from lifeloop.execution.gate import Gate
from lifeloop.store.ops import consent, contacts, feedback, ledger
from lifeloop.store.ops.contacts import NewContact
from lifeloop.store.ops.contacts import enqueue as put
from lifeloop.store.ops.database import unit_of_work
from lifeloop.store.ops.models import ContactReservation, Dispatch
from lifeloop.store.ops.types import utcnow
from tests.gate_world import POLICY, TZ, Clock, D, RecordingGateway, consenting, enqueue, in_local, local, row
from tests.ops_fixtures import database_url, ops_db  # noqa: F401 - fixtures

DAY = dt.timedelta(days=1)


def outbox(sessions) -> dict[tuple[str, str, str], Dispatch]:
    with sessions() as s:
        return {(d.customer_id, d.strategy_id, d.channel): d for d in s.scalars(sa.select(Dispatch))}


def run(sessions, gateway, clock, customers, **kw):
    return drain(sessions, gateway.adapters(), baseline=consenting(customers), policy=POLICY, timezone=TZ,
                 clock=clock, **kw)


# ---------------------------------------------------------------------------------------------- quiet hours
def test_a_drain_at_two_in_the_morning_sends_nothing_and_each_contact_goes_out_when_its_window_opens(ops_db):
    clock = Clock(local(D, 9))
    people = ["C1", "C2", "C3", "C4"]
    enqueue(ops_db, [row("C1", "s1", "w1", "sms"), row("C2", "s1", "w1", "call"), row("C3", "s1", "w1", "rm"),
                     row("C4", "s1", "w1", "push", send_at="12:00")], now=clock())
    gateway = RecordingGateway(clock)
    clock.now = local(D + DAY, 2)     # nobody drained on D; the nightly run at 02:00 local finds them all due
    summary = run(ops_db, gateway, clock, people)
    assert gateway.delivered == [] and summary.deferred == 4 and summary.sent == 0
    # each moved to the end of its channel's quiet hours (sms and push 08:00, call and RM 09:00 local), no attempt spent
    items = outbox(ops_db)
    assert {k[2]: (in_local(d.next_attempt_at).strftime("%d %H:%M"), d.status, d.attempts)
            for k, d in items.items()} == {
        "sms": ("03 08:00", "pending", 0), "push": ("03 08:00", "pending", 0),
        "call": ("03 09:00", "pending", 0), "rm": ("03 09:00", "pending", 0)}
    clock.now = local(D + DAY, 7, 59)
    run(ops_db, gateway, clock, people)
    assert gateway.delivered == []
    clock.now = local(D + DAY, 8)
    run(ops_db, gateway, clock, people)
    assert sorted((d.channel, in_local(d.at).strftime("%H:%M")) for d in gateway.delivered) == [
        ("push", "08:00"), ("sms", "08:00")]
    clock.now = local(D + DAY, 9, 5)
    run(ops_db, gateway, clock, people)
    assert sorted((d.channel, in_local(d.at).strftime("%H:%M")) for d in gateway.delivered) == [
        ("call", "09:05"), ("push", "08:00"), ("rm", "09:05"), ("sms", "08:00")]


def test_a_contact_whose_next_window_opens_after_its_validity_expires_unsent(ops_db):
    clock = Clock(local(D, 9))
    enqueue(ops_db, [row("C1", "s1", "w1", "sms"), row("C2", "s1", "w1", "call")], now=clock())
    gateway = RecordingGateway(clock)
    clock.now = local(D + DAY, 22)       # valid through D+1 (1 day): the SMS window opens again only on D+2
    summary = run(ops_db, gateway, clock, ["C1", "C2"])
    assert gateway.delivered == [] and summary.expired == 2
    items = outbox(ops_db)
    assert {d.status for d in items.values()} == {"blocked"}
    assert all(d.blocked_reason.startswith("expired: quiet_hours") for d in items.values())
    clock.now = local(D + 2 * DAY, 10)
    run(ops_db, gateway, clock, ["C1", "C2"])
    assert gateway.delivered == []


def test_a_list_dispatched_after_its_validity_sends_nothing(ops_db):
    clock = Clock(local(D, 9))
    enqueue(ops_db, [row("C1", "s1", "w1", "sms")], now=clock())
    gateway = RecordingGateway(clock)
    clock.now = local(D + 2 * DAY, 10)
    summary = run(ops_db, gateway, clock, ["C1"])
    assert gateway.delivered == [] and summary.expired == 1
    assert outbox(ops_db)[("C1", "s1", "sms")].blocked_reason.startswith("expired: validity ended 2026-03-03 16:00")


# ---------------------------------------------------------------------------------------------- refusals
def test_an_sms_queued_for_two_pm_is_held_back_after_a_refusal_recorded_at_half_past_eleven(ops_db):
    clock = Clock(local(D - DAY, 9))
    people = ["C1", "C2"]
    gateway = RecordingGateway(clock)
    enqueue(ops_db, [row(c, "s1", "w1", "sms", as_of=D - DAY) for c in people], now=clock())
    clock.now = local(D - DAY, 10)
    run(ops_db, gateway, clock, people)                        # yesterday's SMS to both
    enqueue(ops_db, [row(c, "s2", "w1", "sms", send_at="14:00") for c in people], now=local(D, 9))
    with unit_of_work(ops_db) as s:                            # C1 calls in at 11:30: "stop texting me"
        sent = s.scalars(sa.select(Dispatch).where(Dispatch.customer_id == "C1", Dispatch.strategy_id == "s1")).one()
        feedback.record(s, dispatch_id=sent.id, outcome="refused", occurred_at=local(D, 11, 30), recorded_by="cc-001")
    clock.now = local(D, 14)
    summary = run(ops_db, gateway, clock, people)
    got = sorted((d.customer_id, d.strategy, in_local(d.at).strftime("%m-%d %H:%M")) for d in gateway.delivered)
    assert got == [("C1", "s1", "03-01 10:00"), ("C2", "s1", "03-01 10:00"), ("C2", "s2", "03-02 14:00")]
    assert summary.blocked == 1
    held = outbox(ops_db)[("C1", "s2", "sms")]
    assert held.status == "blocked"
    assert held.blocked_reason == "at dispatch: refused sms on 2026-03-02 03:30 UTC (remembered 3 months)"


def test_a_refusal_stops_marketing_on_that_channel_only_and_not_a_service_message(ops_db):
    policy = ContactPolicy(refusal_memory_months={"sms": 3})      # no caps: only the refusal is at stake
    clock = Clock(local(D, 9))
    enqueue(ops_db, [row("C1", "s0", "w1", "sms")], now=clock(), policy=policy)
    gateway = RecordingGateway(clock)
    clock.now = local(D, 10)
    drain(ops_db, gateway.adapters(), baseline=consenting(["C1"]), policy=policy, timezone=TZ, clock=clock)
    with unit_of_work(ops_db) as s:
        first = s.scalars(sa.select(Dispatch)).one()
        feedback.record(s, dispatch_id=first.id, outcome="refused", occurred_at=local(D, 10, 30), recorded_by="cc")
    enqueue(ops_db, [row("C1", "s1", "w1", "sms"), row("C1", "s2", "w1", "push"),
                     row("C1", "s3", "w1", "sms", purpose="service")], now=local(D, 10, 40), policy=policy)
    clock.now = local(D, 11)
    drain(ops_db, gateway.adapters(), baseline=consenting(["C1"]), policy=policy, timezone=TZ, clock=clock)
    assert sorted((d.strategy, d.channel) for d in gateway.delivered) == [
        ("s0", "sms"), ("s2", "push"), ("s3", "sms")]


# ---------------------------------------------------------------------------------------------- caps
def test_replanning_a_dispatched_day_with_another_channel_order_contacts_nobody_twice(ops_db):
    people = ["C1", "C2", "C3"]
    clock = Clock(local(D, 9))
    gateway = RecordingGateway(clock)
    enqueue(ops_db, [row(c, "s1", "w1", "rm", send_at="09:30") for c in people], now=clock())
    clock.now = local(D, 9, 30)
    run(ops_db, gateway, clock, people)                         # the RM tasks go out
    # re-planned with the channel order changed (SMS first): new keys, the same customers, strategy and wave
    enqueue(ops_db, [row(c, "s1", "w1", "sms") for c in people], now=local(D, 9, 45))
    clock.now = local(D, 10)
    summary = run(ops_db, gateway, clock, people)
    assert sorted((d.customer_id, d.channel) for d in gateway.delivered) == [("C1", "rm"), ("C2", "rm"), ("C3", "rm")]
    assert summary.blocked == 3
    assert {d.blocked_reason for k, d in outbox(ops_db).items() if k[2] == "sms"} == {
        "at dispatch: cap_overall_day: the contact ledger is full for 2026-03-02"}


def test_planning_five_days_ahead_of_dispatching_never_exceeds_a_cap(ops_db):
    # the plans of D..D+4 are all made on D, before anything is sent (none sees the others' contacts)
    clock = Clock(local(D, 7))
    days = [D + k * DAY for k in range(5)]
    enqueue(ops_db, [row("C1", f"s{k}", "w1", "sms", as_of=day) for k, day in enumerate(days)]
            + [row("C2", f"s{k}", "w1", "push", as_of=day, send_at="12:00") for k, day in enumerate(days)], now=clock())
    gateway = RecordingGateway(clock)
    for day in days:
        clock.now = local(day, 12)
        run(ops_db, gateway, clock, ["C1", "C2"])
    got = sorted((d.customer_id, in_local(d.at).date().day) for d in gateway.delivered)
    # C1 by SMS: at most 2 a week; C2 by push: at most 3 contacts a week overall (push alone would allow 3)
    assert got == [("C1", 2), ("C1", 3), ("C2", 2), ("C2", 3), ("C2", 4)]
    reasons = {k[:2]: d.blocked_reason for k, d in outbox(ops_db).items() if d.status == "blocked"}
    assert reasons[("C1", "s2")].startswith("at dispatch: cap_sms_week")
    assert reasons[("C2", "s3")].startswith("at dispatch: cap_overall_week")


def test_concurrent_reservations_for_one_customer_never_pass_the_cap(ops_db):
    with unit_of_work(ops_db) as s:
        ids = put(s, contacts=[NewContact(D, "C1", f"s{i}", "w1", "sms") for i in range(8)], now=local(D, 9)).new_ids
    limits = [Limit("cap_overall_day", EVERY_CHANNEL, 1, 3)]
    start = threading.Barrier(len(ids))
    results: dict[int, str | None] = {}

    def ask(dispatch_id: int) -> None:
        start.wait()
        with unit_of_work(ops_db) as s:
            results.update(ledger.reserve(s, asks=[ledger.Ask(dispatch_id, "C1", "sms", f"x{dispatch_id}", D, limits)]))
            time.sleep(0.05)   # hold the place a moment before committing: the others must wait, not count past it

    threads = [threading.Thread(target=ask, args=(i,)) for i in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(v or "ok" for v in results.values()) == ["cap_overall_day"] * 5 + ["ok"] * 3
    with ops_db() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(ContactReservation)) == 3


def test_a_definitive_failure_gives_its_place_back_and_a_retryable_one_keeps_it(ops_db):
    clock = Clock(local(D, 10))
    enqueue(ops_db, [row("C1", "s1", "w1", "sms"), row("C2", "s1", "w1", "sms")], now=local(D, 9))
    gateway = RecordingGateway(clock, fail={"C1": "final", "C2": "retry"})
    summary = run(ops_db, gateway, clock, ["C1", "C2"])
    assert (summary.failed, summary.retrying) == (1, 1)
    with ops_db() as s:
        places = sorted(s.scalars(sa.select(ContactReservation.customer_id)))
    assert places == ["C2"]   # the timeout may have reached C2: its place stays taken
    # the same day's retry reuses its place (not counted twice), and goes out
    gateway.fail = {}
    clock.now = local(D, 11)
    run(ops_db, gateway, clock, ["C1", "C2"])
    assert [d.customer_id for d in gateway.delivered] == ["C2"]
    with ops_db() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(ContactReservation)) == 1


# ---------------------------------------------------------------------------------------------- withdrawals
@pytest.mark.parametrize("batch_size", [5, 200])
def test_a_consent_withdrawal_during_a_slow_drain_stops_the_rest_within_the_bound(ops_db, batch_size):
    fresh, per, n = 0.5, 0.04, 80
    policy = ContactPolicy()        # no quiet hours or caps: this test runs on the real clock, at any hour
    people = [f"C{i:03}" for i in range(n)]
    today = in_local(utcnow()).date()
    enqueue(ops_db, [row(c, "s1", "w1", "sms", as_of=today, send_at=None) for c in people],
            now=utcnow() - dt.timedelta(minutes=1), policy=policy)
    gateway = RecordingGateway(utcnow, per_message=per)
    withdrawn: dict[str, float] = {}

    def withdraw() -> None:
        time.sleep(0.8)
        with unit_of_work(ops_db) as s:
            for c in people:
                consent.record_change(s, customer_id=c, purpose="marketing", channel="*", granted=False,
                                      effective_at=utcnow(), source="sms_reply", recorded_by="inbound")
        withdrawn["at"] = time.monotonic()       # committed: from here on no contact may start a hand-over

    thread = threading.Thread(target=withdraw)
    thread.start()
    summary = drain(ops_db, gateway.adapters(("sms",)), baseline=consenting(people), policy=policy,
                    batch_size=batch_size, fresh_seconds=fresh)
    thread.join()
    late = [d.mono - withdrawn["at"] for d in gateway.delivered if d.mono > withdrawn["at"]]
    assert 0 < len(gateway.delivered) < n and summary.blocked == n - len(gateway.delivered)
    assert max(late, default=0.0) <= fresh, late     # the chunk in flight finishes; nothing after its end


def test_a_contact_whose_claim_another_worker_took_over_is_not_sent_from_the_old_claim(ops_db):
    enqueue(ops_db, [row("C1", "s1", "w1", "sms")], now=local(D, 9))
    with unit_of_work(ops_db) as s:
        (old,) = [_snapshot(i) for i in contacts.claim_batch(s, worker="a", now=local(D, 10))]
    with unit_of_work(ops_db) as s:   # a's lease ran out while its earlier chunks went out; b claims the item
        (new,) = [_snapshot(i) for i in contacts.claim_batch(s, worker="b", now=local(D, 10, 6))]
    gate = Gate(POLICY, timezone=TZ, baseline=consenting(["C1"]))
    with unit_of_work(ops_db) as s:
        stale = gate.apply(s, [old], local(D, 10, 7))
    assert stale.allowed == [] and stale.verdicts[old["id"]].action == "lost"
    with unit_of_work(ops_db) as s:
        fresh = gate.apply(s, [new], local(D, 10, 7))
    assert [c["id"] for c in fresh.allowed] == [new["id"]]


def test_a_retry_whose_back_off_ends_in_quiet_hours_waits_for_the_morning(ops_db):
    clock = Clock(local(D, 20, 59))
    enqueue(ops_db, [row("C1", "s1", "w1", "sms", send_at="20:00")], now=local(D, 9))
    gateway = RecordingGateway(clock, fail={"C1": "retry"})
    assert run(ops_db, gateway, clock, ["C1"]).retrying == 1      # 20:59: a timeout; back-off 30 s -> 20:59:30
    gateway.fail = {}
    clock.now = local(D, 21) + dt.timedelta(seconds=10)          # 21:00:10 local: the retry is due, in quiet hours
    summary = run(ops_db, gateway, clock, ["C1"])
    assert gateway.delivered == [] and summary.deferred == 1
    assert in_local(outbox(ops_db)[("C1", "s1", "sms")].next_attempt_at).strftime("%d %H:%M") == "03 08:00"
    clock.now = local(D + DAY, 8)
    run(ops_db, gateway, clock, ["C1"])
    assert [in_local(d.at).strftime("%d %H:%M") for d in gateway.delivered] == ["03 08:00"]
