"""The detectors, by hand and by property: each moment's definition on small cases worked out by hand, and
for the monotone detectors, any arrival order (shuffled, repeated, late) fires exactly the batch's moments."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from lifeloop.config.events import EventsConfig
from lifeloop.realtime.detectors import Seen, reach_days, triggers

UTC = dt.UTC
DAY = dt.date(2026, 3, 2)
CONFIG = EventsConfig.model_validate({"moments": [
    {"id": "salary", "kind": "salary_credited", "min_amount": 1000},
    {"id": "big_in", "kind": "large_inflow", "amount": 50000},
    {"id": "big_out", "kind": "large_outflow", "amount": 50000},
    {"id": "to_bank", "kind": "large_outflow", "amount": 20000, "other_bank_only": True},
    {"id": "low", "kind": "low_balance", "below": 100},
    {"id": "first_swipe", "kind": "first_card_swipe"},
    {"id": "interest", "kind": "product_interest", "views": 3, "within_days": 7},
    {"id": "back", "kind": "long_absence_login", "absent_days": 30},
]})
MONOTONE_IDS = ("salary", "big_in", "big_out", "to_bank", "low", "first_swipe")


def at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), UTC)


def txn(i, when, amount, direction="credit", txn_type="transfer", cp="individual", after=None, customer="C1",
        payroll=False):
    body = {"amount": str(amount), "direction": direction, "txn_type": txn_type, "counterparty_kind": cp,
            "payroll": payroll}
    if after is not None:
        body["balance_after"] = str(after)
    return Seen(f"t{i}", "transaction", customer, when, when.date(), body)


def app(i, when, action, product=None, customer="C1"):
    return Seen(f"a{i}", "app", customer, when, when.date(), {"action": action, "product_id": product})


def fired(events, ids=None):
    return sorted((t.moment, t.local_date.isoformat(), t.scope, t.event_id) for t in triggers(events, CONFIG.moments)
                  if ids is None or t.moment in ids)


def test_large_inflow_sums_the_day_from_outside_and_fires_on_the_crossing_posting():
    events = [txn(1, at(DAY, 9), 30000), txn(2, at(DAY, 10), 15000, cp="internal"),   # own transfer: not counted
              txn(3, at(DAY, 11), 90000, txn_type="salary", cp="employer"),            # salary: not an inflow
              txn(4, at(DAY, 12), 19999.99), txn(5, at(DAY, 13), 0.01), txn(6, at(DAY, 14), 70000)]
    # 30000 + 19999.99 = 49999.99 < 50000; + 0.01 reaches it at t5; once a day
    assert fired(events, ("big_in",)) == [("big_in", "2026-03-02", "", "t5")]
    next_day = [txn(7, at(DAY + dt.timedelta(1), 9), 50000)]
    assert fired(events + next_day, ("big_in",))[-1] == ("big_in", "2026-03-03", "", "t7")
    # salary: t3 only (credit coded salary, >= 1000); a payroll-flagged transfer counts too
    assert fired(events, ("salary",)) == [("salary", "2026-03-02", "", "t3")]
    assert fired([txn(8, at(DAY, 8), 5000, payroll=True)], ("salary",)) == [("salary", "2026-03-02", "", "t8")]
    assert fired([txn(9, at(DAY, 8), 999.99, txn_type="salary")], ("salary",)) == []


def test_outflows_count_transfers_and_cash_out_and_the_other_bank_variant_only_bank_counterparties():
    events = [txn(1, at(DAY, 9), 25000, "debit", "transfer", "bank"),
              txn(2, at(DAY, 10), 20000, "debit", "cash", "other"),
              txn(3, at(DAY, 11), 40000, "debit", "card_payment", "merchant"),   # a purchase is not an outflow
              txn(4, at(DAY, 12), 5000, "debit", "transfer", "internal"),
              txn(5, at(DAY, 13), 5000, "debit", "transfer", "individual")]
    assert fired(events, ("big_out", "to_bank")) == [("big_out", "2026-03-02", "", "t5"),   # 25000+20000+5000
                                                     ("to_bank", "2026-03-02", "", "t1")]


def test_low_balance_first_swipe_interest_and_absence_by_hand():
    low = [txn(1, at(DAY, 9), 50, "debit", "card_payment", "merchant", after=120),
           txn(2, at(DAY, 10), 50, "debit", "card_payment", "merchant", after=70),
           txn(3, at(DAY, 11), 50, "debit", "card_payment", "merchant", after=20)]
    assert fired(low, ("low",)) == [("low", "2026-03-02", "", "t2")]
    act = Seen("n1", "core_notice", "C1", at(DAY, 8), DAY, {"notice": "card_activated", "card_id": "K1"})
    before = Seen("s0", "card_swipe", "C1", at(DAY, 7), DAY, {"card_id": "K1", "amount": "10"})
    swipes = [Seen(f"s{i}", "card_swipe", "C1", at(DAY + dt.timedelta(i), 9), DAY + dt.timedelta(i),
                   {"card_id": "K1", "amount": "10"}) for i in (1, 2)]
    assert fired([act, before, *swipes], ("first_swipe",)) == [("first_swipe", "2026-03-03", "K1", "s1")]
    assert fired([before, *swipes], ("first_swipe",)) == []                    # never activated: no first swipe
    views = [app(i, at(DAY + dt.timedelta(days=d), 9), "product_view", "WM1") for i, d in enumerate((0, 3, 7, 8))]
    # views on D, D+3, D+7 (D is out of the 7 days before D+7), D+8: the 3rd view within 7 days is on D+8
    assert fired(views, ("interest",)) == [("interest", "2026-03-10", "WM1", "a3")]
    bought = [*views, app(9, at(DAY + dt.timedelta(days=6), 9), "purchase", "WM1")]
    assert fired(bought, ("interest",)) == []
    logins = [app(i, at(DAY + dt.timedelta(days=d), 9), "login") for i, d in enumerate((0, 10, 40, 41, 70, 105))]
    # D+40 is 30 days after D+10; D+70 is 29 after D+41; D+105 is 35 after D+70
    assert fired(logins, ("back",)) == [("back", "2026-04-11", "", "a2"), ("back", "2026-06-15", "", "a5")]
    assert fired(logins[:1], ("back",)) == []                                  # a first login is not a return
    assert reach_days(CONFIG.moments)[0] >= 30


def _event(draw_id, kind, customer, day, minute, amount, direction, txn_type, cp, after):
    when = dt.datetime.combine(DAY + dt.timedelta(days=day), dt.time(0), UTC) + dt.timedelta(minutes=minute)
    if kind == "swipe":
        return Seen(f"e{draw_id}", "card_swipe", customer, when, when.date(), {"card_id": f"K{amount % 2}",
                                                                                "amount": str(amount)})
    if kind == "activation":
        return Seen(f"e{draw_id}", "core_notice", customer, when, when.date(), {"notice": "card_activated",
                                                                                 "card_id": f"K{amount % 2}"})
    body = {"amount": str(Decimal(amount)), "direction": direction, "txn_type": txn_type, "counterparty_kind": cp,
            "balance_after": str(after)}
    return Seen(f"e{draw_id}", "transaction", customer, when, when.date(), body)


events_strategy = st.lists(st.builds(
    lambda *a: a,
    st.sampled_from(["txn", "txn", "txn", "swipe", "activation"]), st.sampled_from(["C1", "C2"]),
    st.integers(0, 1), st.integers(0, 1439), st.integers(1, 40000), st.sampled_from(["credit", "debit"]),
    st.sampled_from(["transfer", "cash", "salary", "interest", "card_payment"]),
    st.sampled_from(["individual", "bank", "internal", "employer"]), st.integers(0, 500)), min_size=1, max_size=30)


@settings(max_examples=300, deadline=None)
@given(raw=events_strategy, data=st.data())
def test_any_arrival_order_with_repeats_fires_exactly_the_batch_moments(raw, data):
    events = [_event(i, *r) for i, r in enumerate(raw)]
    monotone = [m for m in CONFIG.moments if m.id in MONOTONE_IDS]
    batch = {t.key for t in triggers(events, monotone)}
    # arrival: a shuffle, with some events repeated (duplicate ids) and some held back to the very end (late)
    order = data.draw(st.permutations(events))
    repeats = data.draw(st.lists(st.sampled_from(events), max_size=5))
    late = data.draw(st.lists(st.sampled_from(events), max_size=3, unique_by=lambda e: e.event_id))
    arrivals = [e for e in order if e not in late] + repeats + late
    _, forward = reach_days(monotone)
    stored: dict[str, Seen] = {}
    stream: set[str] = set()
    for e in arrivals:
        if e.event_id in stored:
            continue          # intake: a duplicate changes nothing
        stored[e.event_id] = e
        mine = [x for x in stored.values() if x.customer_id == e.customer_id]
        stream |= {t.key for t in triggers(mine, monotone)
                   if e.local_date <= t.local_date <= e.local_date + dt.timedelta(days=forward)}
    assert stream == batch
