"""Feedback on contacts (营销表单): outcomes belong to a contact, referrals make leads, refusals are remembered."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import sqlalchemy as sa

from lifeloop.errors import DataError, NotFoundError
from lifeloop.store.ops import contacts, feedback
from lifeloop.store.ops.contacts import NewContact
from lifeloop.store.ops.feedback import Referral, months_before
from lifeloop.store.ops.models import Feedback, Lead
from tests.ops_fixtures import database_url, ops_db, session  # noqa: F401 - fixtures

UTC = dt.UTC
D = dt.date(2026, 3, 2)
T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def contacted(session, customer: str, channel: str = "call", rm_id: str | None = "RM07") -> int:
    made = contacts.enqueue(session, contacts=[NewContact(D, customer, "retention", "d7", channel, rm_id=rm_id)],
                            now=T0)
    return made.new_ids[0]


def test_an_outcome_is_recorded_against_its_contact_with_the_contacts_customer_and_channel(session):
    contact_id = contacted(session, "C1")
    item = feedback.record(session, dispatch_id=contact_id, outcome="purchased", occurred_at=T0, recorded_by="RM07",
                           product_id="WM-90D", amount=Decimal("50000.00"))
    assert (item.customer_id, item.channel, item.dispatch.id) == ("C1", "call", contact_id)
    assert [f.outcome for f in feedback.for_contact(session, dispatch_id=contact_id)] == ["purchased"]


def test_feedback_for_a_contact_that_does_not_exist_is_refused_by_the_service_and_the_database(session):
    with pytest.raises(DataError) as caught:
        feedback.record(session, dispatch_id=999, outcome="reached", occurred_at=T0, recorded_by="RM07")
    assert caught.value.problems[0].field == "dispatch_id"
    session.add(Feedback(dispatch_id=999, customer_id="C1", channel="call", outcome="reached", occurred_at=T0,
                         recorded_by="RM07"))
    with pytest.raises(sa.exc.IntegrityError):
        session.flush()


def test_a_bad_outcome_is_reported_field_by_field_and_nothing_is_recorded(session):
    contact_id = contacted(session, "C1")
    with pytest.raises(DataError) as caught:
        feedback.record(session, dispatch_id=contact_id, outcome="maybe", occurred_at=T0, recorded_by="RM07",
                        amount=Decimal("10.00"))
    assert [p.field for p in caught.value.problems] == ["outcome", "amount"]
    assert "maybe" in caught.value.render()
    assert session.scalar(sa.select(sa.func.count()).select_from(Feedback)) == 0


def test_the_database_refuses_an_unknown_outcome_even_around_the_service(session):
    contact_id = contacted(session, "C1")
    session.add(Feedback(dispatch_id=contact_id, customer_id="C1", channel="call", outcome="maybe", occurred_at=T0,
                         recorded_by="RM07"))
    with pytest.raises(sa.exc.IntegrityError):
        session.flush()


def test_a_referral_creates_a_lead_for_the_referred_person_owned_by_the_contacts_rm(session):
    contact_id = contacted(session, "C1")
    item = feedback.record(session, dispatch_id=contact_id, outcome="referral", occurred_at=T0, recorded_by="RM07",
                           referral=Referral(name="Wang Fang", phone="13800001111", note="sister, new in town"))
    lead = session.get(Lead, item.referred_lead_id)
    assert (lead.name, lead.phone, lead.referred_by_customer_id, lead.rm_id, lead.status) == \
        ("Wang Fang", "13800001111", "C1", "RM07", "new")


def test_a_referral_without_a_person_is_refused(session):
    contact_id = contacted(session, "C1")
    with pytest.raises(DataError, match="invalid") as caught:
        feedback.record(session, dispatch_id=contact_id, outcome="referral", occurred_at=T0, recorded_by="RM07")
    assert caught.value.problems[0].field == "referral"


def test_recording_the_same_form_twice_with_its_key_keeps_one_row(session):
    contact_id = contacted(session, "C1")
    first = feedback.record(session, dispatch_id=contact_id, outcome="interested", occurred_at=T0,
                            recorded_by="RM07", idempotency_key="form-881")
    again = feedback.record(session, dispatch_id=contact_id, outcome="interested", occurred_at=T0,
                            recorded_by="RM07", idempotency_key="form-881")
    assert first.id == again.id
    assert session.scalar(sa.select(sa.func.count()).select_from(Feedback)) == 1


def test_a_refused_call_is_remembered_for_the_refusal_window_and_then_forgotten(session):
    contact_id = contacted(session, "C1", channel="call")
    refused_at = dt.datetime(2026, 1, 15, 10, 0, tzinfo=UTC)
    feedback.record(session, dispatch_id=contact_id, outcome="refused", occurred_at=refused_at, recorded_by="RM07")
    ask = dict(customer_id="C1", months=3)
    assert feedback.refused_within(session, now=dt.datetime(2026, 4, 15, 9, 59, tzinfo=UTC), **ask)
    assert not feedback.refused_within(session, now=dt.datetime(2026, 4, 15, 10, 0, tzinfo=UTC), **ask)
    assert not feedback.refused_within(session, now=dt.datetime(2026, 1, 15, 9, 0, tzinfo=UTC), **ask)  # before it
    assert not feedback.refused_within(session, customer_id="C2", months=3, now=T0)


def test_a_refused_sms_does_not_stop_calls_unless_asked_about_sms(session):
    contact_id = contacted(session, "C1", channel="sms")
    feedback.record(session, dispatch_id=contact_id, outcome="refused", occurred_at=T0, recorded_by="gateway")
    later = T0 + dt.timedelta(days=10)
    assert not feedback.refused_within(session, customer_id="C1", months=6, now=later)
    assert feedback.refused_within(session, customer_id="C1", months=6, now=later, channels=["sms"])


def test_the_plan_step_gets_every_recent_refuser_with_the_latest_refusal(session):
    for customer, days_ago in (("C1", 10), ("C1", 3), ("C2", 200), ("C3", 40)):
        contact_id = contacts.enqueue(session, contacts=[NewContact(D - dt.timedelta(days=days_ago), customer,
                                                                    "retention", "d7", "call")], now=T0).new_ids[0]
        feedback.record(session, dispatch_id=contact_id, outcome="refused", recorded_by="RM07",
                        occurred_at=T0 - dt.timedelta(days=days_ago))
    contact_id = contacted(session, "C4")
    feedback.record(session, dispatch_id=contact_id, outcome="interested", occurred_at=T0, recorded_by="RM07")
    got = feedback.refusals_since(session, since=months_before(T0, 3))
    assert got == {"C1": T0 - dt.timedelta(days=3), "C3": T0 - dt.timedelta(days=40)}
    assert all(v.tzinfo is not None and v.utcoffset() == dt.timedelta(0) for v in got.values())


def test_months_are_calendar_months_and_a_31st_falls_back_to_the_end_of_a_shorter_month():
    assert months_before(dt.datetime(2026, 5, 31, 8, 0, tzinfo=UTC), 3) == dt.datetime(2026, 2, 28, 8, 0, tzinfo=UTC)
    assert months_before(dt.datetime(2026, 1, 15, tzinfo=UTC), 1) == dt.datetime(2025, 12, 15, tzinfo=UTC)
    assert months_before(dt.datetime(2026, 3, 2, tzinfo=UTC), 24) == dt.datetime(2024, 3, 2, tzinfo=UTC)


def test_feedback_for_an_unknown_contact_cannot_be_listed(session):
    with pytest.raises(NotFoundError):
        feedback.for_contact(session, dispatch_id=12345)


def test_several_outcomes_are_recorded_all_or_nothing_with_every_bad_row_reported(session):
    from lifeloop.store.ops.feedback import Outcome

    ok = contacted(session, "C1")
    rows = [Outcome(ok, "reached", T0, "RM07", source_ref="forms.csv:2"),
            Outcome(999, "reached", T0, "RM07"),
            Outcome(ok, "referral", T0, "RM07"),
            Outcome(ok, "purchased", dt.datetime(2026, 3, 2, 9, 0), "RM07")]
    with pytest.raises(DataError) as caught:
        feedback.record_many(session, outcomes=rows, source="csv", where="forms.csv")
    err = caught.value
    assert err.message == "3 of 4 feedback rows are invalid; nothing was recorded"
    assert [(p.row, p.field) for p in err.problems] == [(2, "dispatch_id"), (3, "referral"), (4, "occurred_at")]
    assert str(err.problems[0]) == "forms.csv, row 2, field dispatch_id: no contact with id 999"
    assert session.scalar(sa.select(sa.func.count()).select_from(Feedback)) == 0
    good = [rows[0], Outcome(ok, "referral", T0, "RM07", referral=Referral("Li Lei"), idempotency_key="k2")]
    assert [f.outcome for f in feedback.record_many(session, outcomes=good, source="csv")] == ["reached", "referral"]
    assert feedback.record_many(session, outcomes=good[1:], source="csv") == []  # same key: already recorded
    assert session.scalar(sa.select(sa.func.count()).select_from(Lead)) == 1
