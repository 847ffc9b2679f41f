"""The plan step's history from the operations database, in the bank's local days (Asia/Shanghai, UTC+8)."""

from __future__ import annotations

import datetime as dt

import pytest

from lifeloop.store.ops import consent, contacts, feedback
from lifeloop.store.ops.contacts import NewContact
from lifeloop.store.ops.history import day_bounds, plan_history
from tests.ops_fixtures import database_url, ops_db, session  # noqa: F401 - fixtures

TZ = "Asia/Shanghai"
SH = dt.timezone(dt.timedelta(hours=8))
D = dt.date(2026, 3, 10)


def at(day: int, hour: int = 9) -> dt.datetime:
    """A Shanghai wall-clock time in March 2026."""
    return dt.datetime(2026, 3, day, hour, 0, tzinfo=SH)


def history(session, lookback: int = 30):
    return plan_history(session, as_of=D, lookback_days=lookback, timezone=TZ)


def test_a_local_day_starts_at_midnight_in_the_banks_zone():
    assert day_bounds(D, TZ) == (dt.datetime(2026, 3, 9, 16, 0, tzinfo=dt.UTC),
                                 dt.datetime(2026, 3, 10, 16, 0, tzinfo=dt.UTC))


def test_contacts_are_earlier_lists_in_the_look_back_window_with_their_latest_outcome(session):
    def add(customer, day, channel="call"):
        return contacts.enqueue(session, contacts=[NewContact(day, customer, "retention", "d7", channel)],
                                now=at(1)).new_ids[0]

    answered = add("C1", D - dt.timedelta(days=3))
    feedback.record(session, dispatch_id=answered, outcome="no_answer", occurred_at=at(7, 10), recorded_by="rm")
    feedback.record(session, dispatch_id=answered, outcome="interested", occurred_at=at(8, 10), recorded_by="rm")
    add("C2", D - dt.timedelta(days=1), channel="sms")
    add("TODAY", D)                                   # today's list is not history yet
    add("OLD", D - dt.timedelta(days=31))             # outside the window
    cancelled = add("CANCELLED", D - dt.timedelta(days=2))
    contacts.cancel(session, dispatch_ids=[cancelled], reason="paused")
    rows = history(session)["contacts"].to_pylist()
    assert [(r["customer_id"], r["channel"], r["contact_date"], r["treated"], r["outcome"]) for r in rows] == [
        ("C1", "call", dt.date(2026, 3, 7), True, "interested"),
        ("C2", "sms", dt.date(2026, 3, 9), True, None),
    ]


def test_consent_is_the_latest_change_by_the_end_of_the_local_day_with_every_channel_spelt_out(session):
    change = dict(purpose="marketing", source="customer", recorded_by="rm")
    consent.record_change(session, customer_id="C1", channel="*", granted=False, effective_at=at(1), **change)
    consent.record_change(session, customer_id="C1", channel="sms", granted=True, effective_at=at(10, 23), **change)
    # 11 March 07:00 in Shanghai is still 10 March in UTC: not yet in force on the bank's 10 March
    consent.record_change(session, customer_id="C1", channel="push", granted=True, effective_at=at(11, 7), **change)
    got = {(r["customer_id"], r["channel"]): r["granted"] for r in history(session)["consent"].to_pylist()}
    assert got[("C1", "sms")] is True
    assert got[("C1", "push")] is False and got[("C1", "call")] is False
    assert len(got) == 7  # one row per contact channel


def test_do_not_disturb_covers_every_local_day_it_touches_and_nothing_else(session):
    add = dict(reason="complaint", created_by="ops")
    consent.add_do_not_disturb(session, customer_id="MIDNIGHT", starts_at=at(1), expires_at=at(11, 0), **add)
    consent.add_do_not_disturb(session, customer_id="MORNING", starts_at=at(10, 8), expires_at=at(11, 9),
                               channel="call", **add)
    consent.add_do_not_disturb(session, customer_id="OPEN", starts_at=at(2), **add)
    consent.add_do_not_disturb(session, customer_id="TOMORROW", starts_at=at(11, 0), **add)
    consent.add_do_not_disturb(session, customer_id="ENDED", starts_at=at(1), expires_at=at(10, 0), **add)
    lifted = consent.add_do_not_disturb(session, customer_id="LIFTED", starts_at=at(1), **add)
    consent.lift_do_not_disturb(session, entry_id=lifted.id, lifted_by="ops", reason="ok", at=at(9, 12))
    rows = {r["customer_id"]: (r["channel"], r["start_date"], r["end_date"])
            for r in history(session)["dnd"].to_pylist()}
    assert rows == {
        "MIDNIGHT": (None, dt.date(2026, 3, 1), dt.date(2026, 3, 10)),
        "MORNING": ("call", dt.date(2026, 3, 10), dt.date(2026, 3, 11)),
        "OPEN": (None, dt.date(2026, 3, 2), None),
    }


def test_refusals_carry_the_local_date_they_happened(session):
    call = contacts.enqueue(session, contacts=[NewContact(D - dt.timedelta(days=9), "C1", "retention", "d7", "call")],
                            now=at(1)).new_ids[0]
    feedback.record(session, dispatch_id=call, outcome="refused", occurred_at=at(2, 4),
                    recorded_by="rm")  # UTC: 1 March
    later = contacts.enqueue(session, contacts=[NewContact(D, "C2", "retention", "d7", "call")], now=at(1)).new_ids[0]
    feedback.record(session, dispatch_id=later, outcome="refused", occurred_at=at(11, 9), recorded_by="rm")
    assert history(session)["refusals"].to_pylist() == [
        {"customer_id": "C1", "channel": "call", "refused_on": dt.date(2026, 3, 2)}]


def test_the_tables_have_exactly_the_columns_the_plan_step_reads(session):
    strategy_history = pytest.importorskip("lifeloop.strategy.history")
    got = history(session)
    for name, schema in strategy_history.schemas().items():
        assert got[name].schema.equals(schema), name
