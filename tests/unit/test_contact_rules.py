"""The contact policy's shared pure rules (lifeloop.config.contact_rules) and the gate's pure decision, by hand."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from lifeloop.config.contact_policy import ContactPolicy
from lifeloop.config.contact_rules import (
    EVERY_CHANNEL,
    Limit,
    cap_breached,
    cap_limits,
    months_before,
    next_allowed,
    quiet_at,
    valid_until,
)
from lifeloop.execution.gate import CustomerState, decide
from lifeloop.strategy.history import History
from lifeloop.strategy.policy import decide as plan_decide
from tests.unit.strategy_factories import D, candidate, candidates, consent_all, policy, strategy

SH = ZoneInfo("Asia/Shanghai")
POLICY = ContactPolicy(
    caps={"day": 1, "week": 3}, channel_caps={"sms": {"day": 1, "week": 2}},
    quiet_hours={"sms": {"start": "21:00", "end": "08:00"}, "rm": {"start": "20:00", "end": "09:00"}},
    quiet_days=[{"date": "2026-02-17", "name": "春节", "channels": ["sms"]}],
    refusal_memory_months={"sms": 3})
DAY = dt.timedelta(days=1)


def at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), SH).astimezone(dt.UTC)


def test_the_next_allowed_instant_is_the_end_of_quiet_hours_in_local_time():
    d = dt.date(2026, 3, 2)
    assert next_allowed(POLICY, "sms", "marketing", at(d, 2), "Asia/Shanghai") == at(d, 8)
    assert next_allowed(POLICY, "sms", "marketing", at(d, 21), "Asia/Shanghai") == at(d + DAY, 8)
    assert next_allowed(POLICY, "sms", "marketing", at(d, 10, 15), "Asia/Shanghai") == at(d, 10, 15)
    assert next_allowed(POLICY, "rm", "marketing", at(d, 8), "Asia/Shanghai") == at(d, 9)
    assert next_allowed(POLICY, "push", "marketing", at(d, 3), "Asia/Shanghai") == at(d, 3)   # no quiet hours
    # 02:00 in Shanghai is 18:00 UTC the day before: the same instant is not quiet for a customer in London
    assert next_allowed(POLICY, "sms", "marketing", at(d, 2), "Europe/London") == at(d, 2)


def test_a_quiet_day_moves_marketing_to_the_day_after_and_lets_service_through():
    eve = dt.date(2026, 2, 16)
    assert next_allowed(POLICY, "sms", "marketing", at(eve, 22), "Asia/Shanghai") == at(eve + 2 * DAY, 8)
    assert next_allowed(POLICY, "sms", "service", at(eve, 22), "Asia/Shanghai") == at(eve + DAY, 8)
    assert quiet_at(POLICY, "sms", "marketing", at(eve + DAY, 12).astimezone(SH)) == "quiet_day 春节"
    assert quiet_at(POLICY, "rm", "marketing", at(eve + DAY, 12).astimezone(SH)) is None


def test_a_contact_is_valid_until_the_local_midnight_ending_its_last_day():
    assert valid_until(dt.date(2026, 3, 2), 1, "Asia/Shanghai") == at(dt.date(2026, 3, 4), 0)
    assert valid_until(dt.date(2026, 3, 2), 0, "Asia/Shanghai") == dt.datetime(2026, 3, 2, 16, tzinfo=dt.UTC)


def test_caps_count_every_rolling_window_that_holds_the_day():
    d = dt.date(2026, 3, 10)
    limits = cap_limits(POLICY, "sms")
    assert [limit.name for limit in limits] == ["cap_overall_day", "cap_overall_week", "cap_sms_day", "cap_sms_week",
                                                "same_strategy_today"]
    assert cap_breached([], d, "sms", "s1", limits) is None
    assert cap_breached([(d, "push", "s2")], d, "sms", "s1", limits) == "cap_overall_day"
    assert cap_breached([(d - 6 * DAY, "sms", "s2"), (d - 3 * DAY, "sms", "s3")], d, "sms", "s1", limits) == \
        "cap_sms_week"
    assert cap_breached([(d - 7 * DAY, "sms", "s2"), (d - 3 * DAY, "sms", "s3")], d, "sms", "s1", limits) is None
    # a contact already counted on a later day (a clock ahead) closes the windows it shares with this one
    assert cap_breached([(d + 2 * DAY, "sms", "s2"), (d - 3 * DAY, "sms", "s3")], d, "sms", "s1", limits) == \
        "cap_sms_week"
    same = [Limit("same_strategy_today", EVERY_CHANNEL, 1, 1, strategy=True)]
    assert cap_breached([(d, "rm", "s1")], d, "sms", "s1", same) == "same_strategy_today"
    assert cap_breached([(d, "rm", "s2")], d, "sms", "s1", same) is None


def test_months_before_counts_calendar_months_on_dates_and_instants():
    assert months_before(dt.date(2026, 5, 31), 3) == dt.date(2026, 2, 28)
    assert months_before(dt.datetime(2026, 1, 15, 8, tzinfo=dt.UTC), 1) == dt.datetime(2025, 12, 15, 8, tzinfo=dt.UTC)


def contact(channel="sms", purpose="marketing", expires=None):
    return {"id": 1, "customer_id": "C1", "channel": channel, "purpose": purpose, "expires_at": expires}


def test_the_gate_blocks_on_consent_then_refusal_and_holds_in_quiet_hours():
    d = dt.date(2026, 3, 2)
    state = CustomerState(at(d, 14))
    assert decide(contact(), now=at(d, 14), timezone="Asia/Shanghai", policy=POLICY, state=state).action == "block"
    allowed = decide(contact(), now=at(d, 14), timezone="Asia/Shanghai", policy=POLICY, state=state, baseline=True)
    assert (allowed.action, allowed.day) == ("allow", d)
    refused = CustomerState(at(d, 14), refusals=[("sms", at(d, 11, 30))])
    got = decide(contact(), now=at(d, 14), timezone="Asia/Shanghai", policy=POLICY, state=refused, baseline=True)
    assert (got.action, got.check) == ("block", "refusal_memory")
    got = decide(contact(purpose="service"), now=at(d, 14), timezone="Asia/Shanghai", policy=POLICY, state=refused)
    assert got.action == "allow"
    got = decide(contact(), now=at(d, 2), timezone="Asia/Shanghai", policy=POLICY, state=state, baseline=True)
    assert (got.action, got.check, got.until) == ("hold", "quiet_hours", at(d, 8))
    got = decide(contact(expires=at(d, 6)), now=at(d, 2), timezone="Asia/Shanghai", policy=POLICY, state=state,
                 baseline=True)
    assert (got.action, got.check) == ("expire", "quiet_hours")


def test_the_plan_drops_a_marketing_contact_planned_on_a_quiet_day_with_that_reason():
    s, care = strategy("s1"), strategy("care", purpose="service")
    pol = policy(quiet_days=[{"date": D.isoformat(), "name": "holiday"}])
    got = [r for r in _plan([candidate("a", s), candidate("b", care, purpose="service")], pol, [s, care])]
    assert [(g["status"], g["dropped_by"]) for g in got] == [("dropped", "quiet_day"), ("contact", None)]


def _plan(rows, pol, strategies):
    return plan_decide(candidates(rows), History.from_rows(consent=consent_all(["a", "b"])), pol,
                       {s.id: s for s in strategies}, D).to_pylist()
