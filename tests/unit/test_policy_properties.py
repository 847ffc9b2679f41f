"""Property tests: for arbitrary maps, histories and policies, the plan never breaks the contact policy.

No customer exceeds a cap (history + today), is contacted in quiet hours, without consent, on
do-not-disturb or within the refusal window; control customers are never contacted; capacity holds;
every dropped candidate names the policy that dropped it; the same input gives the same decisions.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lifeloop.config.contact_policy import ContactPolicy
from lifeloop.strategy.history import RESPONDED, History
from lifeloop.strategy.policy import decide, months_before
from tests.unit.strategy_factories import D, candidate, candidates, strategy

CHANNELS = ("sms", "push", "call", "rm")
CUSTOMERS = ("a", "b", "c", "d")
TIMES = ("07:30", "08:00", "10:00", "12:00", "20:30", "21:00", "22:00", "23:59")
cap = st.one_of(st.none(), st.integers(0, 3))


@st.composite
def worlds(draw):
    n = draw(st.integers(1, 4))
    strategies = []
    for k in range(n):
        chans = draw(st.lists(st.sampled_from(CHANNELS), min_size=1, max_size=3, unique=True))
        strategies.append(strategy(f"s{k}", channels=tuple(chans), priority=draw(st.integers(0, 3)),
                                   capacity={"per_day": draw(cap), "per_rm_per_day": draw(cap)},
                                   budget=draw(st.one_of(st.none(), st.floats(0, 20)))))
    pol = ContactPolicy.model_validate({
        "caps": {"day": draw(cap), "week": draw(cap), "month": draw(cap)},
        "channel_caps": {ch: {"day": draw(cap), "week": draw(cap), "month": draw(cap)}
                         for ch in draw(st.lists(st.sampled_from(CHANNELS), unique=True))},
        "quiet_hours": {ch: {"start": draw(st.sampled_from(TIMES)), "end": draw(st.sampled_from(TIMES))}
                        for ch in draw(st.lists(st.sampled_from(CHANNELS), unique=True))},
        "refusal_memory_months": {ch: draw(st.integers(0, 6))
                                  for ch in draw(st.lists(st.sampled_from(CHANNELS), unique=True))},
        "consent": {"missing": {"marketing": draw(st.booleans()), "service": draw(st.booleans())}},
        "channels": {"call": {"cost": 3, "seats": draw(st.one_of(st.none(), st.integers(0, 2))), "per_seat_per_day": 2},
                     "rm": {"cost": 20, "per_rm_per_day": draw(cap)}, "sms": {"cost": 0.05}},
    })
    rows = []
    for _k, s in enumerate(strategies):
        for c in draw(st.lists(st.sampled_from(CUSTOMERS), unique=True)):
            rows.append(candidate(c, s, rm_id=draw(st.sampled_from(["RM1", "RM2", None])), control=draw(st.booleans()),
                                  tie=draw(st.floats(0, 1)), send_at=draw(st.one_of(st.none(), st.sampled_from(TIMES))),
                                  values=[draw(st.floats(-5, 50)) for _ in s.channels],
                                  purpose=draw(st.sampled_from(["marketing", "service"]))))
    day = st.integers(0, 200).map(lambda k: D - dt.timedelta(days=k))
    history = History.from_rows(
        contacts=[dict(customer_id=draw(st.sampled_from(CUSTOMERS)), strategy="old", wave="w",
                       channel=draw(st.sampled_from(CHANNELS)), contact_date=draw(st.integers(1, 40).map(
                           lambda k: D - dt.timedelta(days=k))), treated=draw(st.booleans()),
                       outcome=draw(st.sampled_from([None, "refused", *RESPONDED])))
                  for _ in range(draw(st.integers(0, 12)))],
        consent=[dict(customer_id=c, purpose=p, channel=ch, granted=draw(st.booleans()))
                 for c in CUSTOMERS for p in ("marketing", "service") for ch in CHANNELS if draw(st.booleans())],
        dnd=[dict(customer_id=draw(st.sampled_from(CUSTOMERS)), channel=draw(st.sampled_from([None, *CHANNELS])),
                  start_date=draw(day), end_date=draw(st.one_of(st.none(), day)))
             for _ in range(draw(st.integers(0, 3)))],
        refusals=[dict(customer_id=draw(st.sampled_from(CUSTOMERS)), channel=draw(st.sampled_from(CHANNELS)),
                       refused_on=draw(day)) for _ in range(draw(st.integers(0, 3)))])
    rm_capacity = {"RM1": draw(st.integers(0, 2))}
    return strategies, pol, rows, history, rm_capacity


def _decide(world):
    strategies, pol, rows, history, rm_capacity = world
    return decide(candidates(rows), history, pol, {s.id: s for s in strategies}, D, rm_capacity).to_pylist()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(worlds())
def test_no_decision_ever_breaks_the_contact_policy(world):
    strategies, pol, rows, history, rm_capacity = world
    out = _decide(world)
    assert out == _decide(world)  # same input, same decisions
    contacts = [(r, o) for r, o in zip(rows, out, strict=False) if o["status"] == "contact"]
    by_id = {s.id: s for s in strategies}
    hist = history.contacts.to_pylist()
    consent = {(c["customer_id"], c["purpose"], c["channel"]): c["granted"] for c in history.consent.to_pylist()}
    for r, o in zip(rows, out, strict=False):
        assert o["status"] in ("contact", "control", "dropped")
        assert (o["dropped_by"] is None) == (o["status"] != "dropped")
        if r["control"]:
            assert o["status"] != "contact"
    for r, o in contacts:
        c, ch = r["customer_id"], o["channel"]
        assert ch in r["channels"]
        # consent for the purpose on that channel (or none on file and the purpose allows that)
        assert consent.get((c, r["purpose"], ch), pol.consent.missing.get(r["purpose"], False)) is True
        # not on do-not-disturb today
        for x in history.dnd.to_pylist():
            live = x["start_date"] <= D and (x["end_date"] is None or x["end_date"] >= D)
            assert not (live and x["customer_id"] == c and x["channel"] in (None, ch))
        # not within the refusal memory
        months = pol.refusal_memory_months.get(ch, 0)
        for x in history.refusals.to_pylist():
            assert not (months and x["customer_id"] == c and x["channel"] == ch
                        and x["refused_on"] > months_before(D, months))
        # never in quiet hours
        quiet = pol.quiet_hours.get(ch)
        assert o["send_at"] is not None
        assert quiet is None or not quiet.contains(dt.time.fromisoformat(o["send_at"]))
    # caps: history (treated only) + today's contacts, per window, overall and per channel
    for c in CUSTOMERS:
        today = [o["channel"] for r, o in contacts if r["customer_id"] == c]
        if not today:
            continue
        for n, limit in pol.caps.windows():
            past = sum(1 for h in hist if h["customer_id"] == c and h["treated"] and (D - h["contact_date"]).days < n)
            assert past + len(today) <= limit
        for ch, caps in pol.channel_caps.items():
            mine = today.count(ch)
            for n, limit in caps.windows():
                past = sum(1 for h in hist if h["customer_id"] == c and h["treated"] and h["channel"] == ch
                           and (D - h["contact_date"]).days < n)
                assert mine == 0 or past + mine <= limit
    # capacity: strategy per day, channel per day, RM per day, budget
    per_strategy = Counter(r["strategy"] for r, _ in contacts)
    for sid, k in per_strategy.items():
        s = by_id[sid]
        assert s.capacity.per_day is None or k <= s.capacity.per_day
        spent = sum(o["cost"] for r, o in contacts if r["strategy"] == sid)
        assert s.budget is None or spent <= s.budget + 1e-9
    calls = sum(1 for _, o in contacts if o["channel"] == "call")
    limit = pol.channel("call").daily_limit()
    assert limit is None or calls <= limit
    rm_tasks = Counter(r["rm_id"] for r, o in contacts if o["channel"] == "rm")
    assert None not in rm_tasks
    for rm, k in rm_tasks.items():
        lim = rm_capacity.get(rm, pol.channel("rm").per_rm_per_day)
        assert lim is None or k <= lim
    # one wave of a strategy per customer per day
    assert max(Counter((r["customer_id"], r["strategy"]) for r, _ in contacts).values(), default=0) <= 1
