"""The contact policy on small hand-made cases: what is kept, what is dropped, and why."""

from __future__ import annotations

import datetime as dt

from lifeloop.strategy.history import History
from lifeloop.strategy.policy import decide, months_before
from tests.unit.strategy_factories import D, candidate, candidates, consent_all, policy, strategy


def run(rows, *, strategies, history=None, pol=None, rm_capacity=None, spent=None):
    out = decide(candidates(rows), history or History.from_rows(consent=consent_all(["a", "b", "c"])),
                 pol or policy(), {s.id: s for s in strategies}, D, rm_capacity, spent)
    return out.to_pylist()


def test_a_customer_without_a_marketing_consent_row_is_dropped_for_consent():
    s = strategy("s1")
    got = run([candidate("z", s)], strategies=[s])
    assert got[0]["status"] == "dropped" and got[0]["dropped_by"] == "consent"
    assert got[0]["detail"] == "sms: consent"


def test_a_service_message_needs_no_consent_row_but_respects_a_refused_one():
    s = strategy("care", purpose="service")
    hist = History.from_rows(consent=[dict(customer_id="b", purpose="service", channel="sms", granted=False)])
    got = run([candidate("z", s, purpose="service"), candidate("b", s, purpose="service")], strategies=[s],
              history=hist)
    assert [g["status"] for g in got] == ["contact", "dropped"]
    assert got[1]["dropped_by"] == "consent"


def test_the_next_channel_is_used_when_the_first_is_refused():
    s = strategy("s1", channels=("sms", "push"))
    hist = History.from_rows(consent=[dict(customer_id="a", purpose="marketing", channel="push", granted=True)])
    got = run([candidate("a", s)], strategies=[s], history=hist)
    assert got[0]["status"] == "contact" and got[0]["channel"] == "push"
    assert got[0]["detail"] == "sms: consent"


def test_with_one_contact_a_day_and_ranking_by_priority_the_higher_priority_strategy_wins():
    # the low one sorts first by name and is worth more: only priority can make the high one win
    low, high = strategy("a_low", priority=10), strategy("b_high", priority=90)
    got = run([candidate("a", low, values=[5.0]), candidate("a", high, values=[1.0])], strategies=[low, high],
              pol=policy(caps={"day": 1}, arbitration={"rank_by": "priority"}))
    assert (got[0]["status"], got[0]["dropped_by"]) == ("dropped", "cap_overall_day")
    assert got[1]["status"] == "contact"


def test_at_equal_priority_the_higher_expected_value_wins():
    a, b = strategy("a1"), strategy("b1")
    got = run([candidate("a", a, values=[1.0]), candidate("a", b, values=[5.0])], strategies=[a, b],
              pol=policy(caps={"day": 1}))
    assert [g["status"] for g in got] == ["dropped", "contact"]
    assert got[1]["expected_value"] == 5.0


def test_history_counts_towards_the_weekly_cap_and_older_contacts_do_not():
    s = strategy("s1")
    contacts = [dict(customer_id="a", strategy="x", wave="w", channel="sms", contact_date=D - dt.timedelta(days=6),
                     treated=True, outcome=None),
                dict(customer_id="b", strategy="x", wave="w", channel="sms", contact_date=D - dt.timedelta(days=7),
                     treated=True, outcome=None),
                # a control row was never contacted: it does not count
                dict(customer_id="c", strategy="x", wave="w", channel="sms", contact_date=D - dt.timedelta(days=1),
                     treated=False, outcome=None)]
    hist = History.from_rows(contacts=contacts, consent=consent_all(["a", "b", "c"]))
    got = run([candidate(c, s) for c in "abc"], strategies=[s], history=hist,
              pol=policy(channel_caps={"sms": {"week": 1}}))
    assert [g["dropped_by"] for g in got] == ["cap_sms_week", None, None]


def test_a_send_time_in_quiet_hours_moves_to_their_end_or_is_dropped():
    s = strategy("s1")
    pol = policy(quiet_hours={"sms": {"start": "21:00", "end": "08:00"}})
    got = run([candidate("a", s, send_at="07:00"), candidate("b", s, send_at="22:30"),
               candidate("c", s, send_at="12:00")],
              strategies=[s], pol=pol)
    assert [(g["status"], g["send_at"], g["dropped_by"]) for g in got] == [
        ("contact", "08:00", None), ("dropped", None, "quiet_hours"), ("contact", "12:00", None)]


def test_a_customer_who_refused_a_call_is_not_called_within_six_months():
    s = strategy("s1", channels=("call",))
    refusals = [dict(customer_id="a", channel="call", refused_on=dt.date(2024, 1, 1)),   # 6 months ago minus 1 day
                dict(customer_id="b", channel="call", refused_on=dt.date(2023, 12, 30)),  # older than 6 months
                dict(customer_id="c", channel="sms", refused_on=dt.date(2024, 6, 1))]     # another channel
    hist = History.from_rows(consent=consent_all(["a", "b", "c"]), refusals=refusals)
    got = run([candidate(c, s) for c in "abc"], strategies=[s], history=hist,
              pol=policy(refusal_memory_months={"call": 6}))
    assert [g["dropped_by"] for g in got] == ["refusal_memory", None, None]
    assert months_before(D, 6) == dt.date(2023, 12, 30)


def test_do_not_disturb_applies_while_active_and_to_the_named_channel_only():
    s = strategy("s1", channels=("sms", "push"))
    dnd = [dict(customer_id="a", channel=None, start_date=dt.date(2024, 6, 1), end_date=None),
           dict(customer_id="b", channel="sms", start_date=dt.date(2024, 6, 1), end_date=dt.date(2024, 7, 1)),
           dict(customer_id="c", channel=None, start_date=dt.date(2024, 1, 1), end_date=dt.date(2024, 6, 29))]
    hist = History.from_rows(consent=consent_all(["a", "b", "c"]), dnd=dnd)
    got = run([candidate(c, s) for c in "abc"], strategies=[s], history=hist)
    assert [(g["status"], g["channel"], g["dropped_by"]) for g in got] == [
        ("dropped", None, "dnd"), ("contact", "push", None), ("contact", "sms", None)]


def test_relationship_manager_capacity_goes_to_the_most_valuable_customers():
    s = strategy("s1", channels=("rm",))
    rows = [candidate("a", s, values=[1.0]), candidate("b", s, values=[3.0]), candidate("c", s, values=[2.0])]
    got = run(rows, strategies=[s], rm_capacity={"RM1": 2})
    assert [g["dropped_by"] for g in got] == ["capacity_rm", None, None]


def test_an_rm_task_needs_the_customers_own_rm():
    s = strategy("s1", channels=("rm",))
    got = run([candidate("a", s, rm_id=None)], strategies=[s])
    assert got[0]["dropped_by"] == "no_rm"


def test_outbound_seats_limit_calls_per_day():
    s = strategy("s1", channels=("call",))
    pol = policy(channels={"call": {"cost": 3, "seats": 1, "per_seat_per_day": 2}})
    got = run([candidate(c, s, tie=t) for c, t in (("a", 0.1), ("b", 0.2), ("c", 0.3))], strategies=[s], pol=pol)
    assert [g["dropped_by"] for g in got] == [None, None, "capacity_channel"]
    assert [g["cost"] for g in got] == [3.0, 3.0, 0.0]


def test_a_strategy_stops_when_its_budget_is_spent():
    s = strategy("s1", channels=("call",), budget=10.0)
    pol = policy(channels={"call": {"cost": 3}})
    got = run([candidate(c, s, tie=t) for c, t in (("a", 0.1), ("b", 0.2), ("c", 0.3))], strategies=[s], pol=pol,
              spent={"s1": 4.0})
    assert [g["dropped_by"] for g in got] == [None, None, "budget"]


def test_control_customers_are_never_contacted_and_use_no_capacity():
    s = strategy("s1", capacity={"per_day": 1})
    got = run([candidate("a", s, control=True, tie=0.01), candidate("b", s, tie=0.5)], strategies=[s])
    assert [(g["status"], g["cost"]) for g in got] == [("control", 0.0), ("contact", 0.0)]


def test_a_control_customer_without_consent_is_dropped_like_a_treated_one():
    s = strategy("s1")
    got = run([candidate("z", s, control=True)], strategies=[s])
    assert (got[0]["status"], got[0]["dropped_by"]) == ("dropped", "consent")
