"""Consent changes and do-not-disturb (免打扰): "may we contact this customer?" with the reason."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from lifeloop.errors import DataError
from lifeloop.store.ops import consent
from tests.ops_fixtures import database_url, ops_db, session  # noqa: F401 - fixtures

UTC = dt.UTC
T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
DAY = dt.timedelta(days=1)


def allowed(session, customer="C1", channel="sms", at=T0, **kw) -> consent.Permission:
    return consent.is_contact_allowed(session, customer_id=customer, channel=channel, at=at, **kw)


def test_do_not_disturb_blocks_until_it_expires_and_not_before_it_starts(session):
    consent.add_do_not_disturb(session, customer_id="C1", reason="complaint #4411", created_by="ops1",
                               starts_at=T0, expires_at=T0 + 30 * DAY)
    during = allowed(session, at=T0 + DAY, baseline=True)
    assert not during and during.reason == "do-not-disturb until 2026-04-01 09:00 UTC: complaint #4411"
    assert allowed(session, at=T0 - DAY, baseline=True)
    assert allowed(session, at=T0 + 30 * DAY, baseline=True)  # expiry is exclusive
    assert allowed(session, customer="C2", at=T0 + DAY, baseline=True)


def test_do_not_disturb_on_one_channel_leaves_the_others_open(session):
    consent.add_do_not_disturb(session, customer_id="C1", channel="call", reason="asked: no calls",
                               created_by="rm07", starts_at=T0)
    assert not allowed(session, channel="call", at=T0 + 400 * DAY, baseline=True)  # no expiry: until lifted
    assert allowed(session, channel="sms", at=T0 + DAY, baseline=True)


def test_a_lifted_entry_stops_blocking_from_the_moment_it_is_lifted(session):
    entry = consent.add_do_not_disturb(session, customer_id="C1", reason="bereavement", created_by="rm07",
                                       starts_at=T0)
    consent.lift_do_not_disturb(session, entry_id=entry.id, lifted_by="rm07", reason="customer asked",
                                at=T0 + 10 * DAY)
    assert not allowed(session, at=T0 + 9 * DAY, baseline=True)
    assert allowed(session, at=T0 + 10 * DAY, baseline=True)
    assert [e.id for e in consent.active_do_not_disturb(session, at=T0 + 5 * DAY)] == [entry.id]
    assert consent.active_do_not_disturb(session, at=T0 + 11 * DAY) == []


def test_do_not_disturb_that_ends_before_it_starts_or_has_no_reason_is_refused(session):
    with pytest.raises(DataError, match="expires before it starts"):
        consent.add_do_not_disturb(session, customer_id="C1", reason="x", created_by="a", starts_at=T0,
                                   expires_at=T0 - DAY)
    with pytest.raises(DataError, match="needs a reason"):
        consent.add_do_not_disturb(session, customer_id="C1", reason=" ", created_by="a", starts_at=T0)


def test_the_database_refuses_an_expiry_before_the_start_even_around_the_service(session):
    from lifeloop.store.ops.models import DoNotDisturb

    session.add(DoNotDisturb(customer_id="C1", reason="x", created_by="a", starts_at=T0, expires_at=T0 - DAY))
    with pytest.raises(sa.exc.IntegrityError):
        session.flush()


def test_the_latest_consent_change_wins_and_all_channels_compete_with_one_channel_on_time(session):
    change = dict(customer_id="C1", purpose="marketing", source="customer", recorded_by="rm07")
    consent.record_change(session, channel="*", granted=False, effective_at=T0, reason="no marketing", **change)
    consent.record_change(session, channel="sms", granted=True, effective_at=T0 + 5 * DAY, **change)
    assert not allowed(session, channel="sms", at=T0 + DAY, baseline=True)
    at_six = allowed(session, channel="sms", at=T0 + 6 * DAY, baseline=False)
    assert at_six and at_six.reason == "marketing consent granted for sms on 2026-03-07 (customer)"
    assert not allowed(session, channel="push", at=T0 + 6 * DAY, baseline=True)
    consent.record_change(session, channel="*", granted=False, effective_at=T0 + 9 * DAY, **change)
    assert not allowed(session, channel="sms", at=T0 + 10 * DAY)


def test_without_changes_the_banks_records_decide_and_marketing_without_any_record_is_refused(session):
    assert allowed(session, baseline=True).reason == "marketing consent given in the bank's records"
    assert not allowed(session, baseline=False)
    refused = allowed(session)
    assert not refused and refused.reason == "no marketing consent on record"
    assert allowed(session, purpose="service")


def test_do_not_disturb_wins_over_consent(session):
    consent.record_change(session, customer_id="C1", purpose="marketing", channel="sms", granted=True,
                          effective_at=T0, source="customer", recorded_by="rm07")
    consent.add_do_not_disturb(session, customer_id="C1", reason="complaint", created_by="ops", starts_at=T0)
    assert not allowed(session, at=T0 + DAY)


def test_an_unknown_channel_or_purpose_is_refused_with_the_known_ones(session):
    with pytest.raises(DataError) as caught:
        consent.record_change(session, customer_id="C1", purpose="sales", channel="fax", granted=True,
                              effective_at=T0, source="customer", recorded_by="rm07")
    assert [p.field for p in caught.value.problems] == ["purpose", "channel"]
    assert "marketing" in caught.value.render() and "sms" in caught.value.render()


def test_the_plan_step_reads_the_latest_consent_per_customer_and_channel(session):
    change = dict(purpose="marketing", source="customer", recorded_by="rm07")
    consent.record_change(session, customer_id="C1", channel="sms", granted=False, effective_at=T0, **change)
    consent.record_change(session, customer_id="C1", channel="push", granted=False, effective_at=T0, **change)
    consent.record_change(session, customer_id="C1", channel="*", granted=True, effective_at=T0 + DAY, **change)
    consent.record_change(session, customer_id="C2", channel="call", granted=False, effective_at=T0, **change)
    consent.record_change(session, customer_id="C3", channel="call", granted=False, effective_at=T0 + 9 * DAY,
                          **change)
    assert consent.latest_consent(session, at=T0 + 2 * DAY) == {("C1", "*"): True, ("C2", "call"): False}
