"""The replay forwards only the events a decision can read (``decision_reads``): over a simulated payday with
every detector enabled, the forwarded events fire exactly the moments the whole stream fires, and give every
customer the same day's event columns (salary, inflow, outflow) the audience rules read."""

from __future__ import annotations

import datetime as dt

import yaml

from lifeloop.config.events import EventsConfig
from lifeloop.config.strategies import StrategiesConfig
from lifeloop.data.simulator import simulate
from lifeloop.data.simulator.stream import event_stream
from lifeloop.realtime.audience import decision_reads, event_columns
from lifeloop.realtime.batch import as_seen, moments_of

DAY = dt.date(2024, 1, 10)     # a payday of the simulated bank (seed 3), as in test_realtime_parity
TZ = "Asia/Shanghai"
EVERY = """\
moments:
  - {id: salary_credited, kind: salary_credited}
  - {id: large_outflow, kind: large_outflow, amount: 2000}
  - {id: outflow_other_bank, kind: large_outflow, amount: 1000, other_bank_only: true}
  - {id: large_inflow, kind: large_inflow, amount: 500}
  - {id: low_balance, kind: low_balance, below: 200}
  - {id: first_card_swipe, kind: first_card_swipe}
  - {id: product_interest, kind: product_interest, views: 2, within_days: 7}
  - {id: back_after_absence, kind: long_absence_login, absent_days: 3}
"""


def _columns(seen, config):
    by: dict[str, list] = {}
    for e in seen:
        by.setdefault(e.customer_id, []).append(e)
    return {c: event_columns(day, config, DAY) for c, day in by.items()}


def test_the_forwarded_events_fire_the_same_moments_and_columns_as_the_whole_stream(tmp_path):
    out = tmp_path / "bank"
    simulate(out, customers=200, days=12, seed=3)
    events = []
    for d in range(9, -1, -1):     # the days before give the absence and interest detectors their history
        events += event_stream(out, DAY - dt.timedelta(days=d), timezone=TZ)
    config = EventsConfig.model_validate(yaml.safe_load(EVERY))
    seen = as_seen(events, TZ)
    kept = [e for e in seen if decision_reads(e, config.moments)]
    assert 0 < len(kept) <= len(seen)       # with every detector nearly every event is read (balances, logins)
    assert sorted(t.key for t in moments_of(kept, config.moments)) == \
        sorted(t.key for t in moments_of(seen, config.moments))
    assert len(moments_of(seen, config.moments)) > 0
    strategies = StrategiesConfig(strategies=[])
    on_day = [e for e in seen if e.local_date == DAY]
    whole = _columns(on_day, strategies)
    none = event_columns([], strategies, DAY)          # a customer none of whose events is forwarded
    for moments in (config.moments, EventsConfig.model_validate(yaml.safe_load(
            "moments:\n  - {id: s, kind: salary_credited}\n")).moments):
        forwarded = _columns([e for e in on_day if decision_reads(e, moments)], strategies)
        assert {c: forwarded.get(c, none) for c in whole} == whole
    assert any(v["salary_today"] for v in whole.values()) and any(v["outflow_today"] for v in whole.values())
    # with only the template's two moments, far fewer events are forwarded, and still the same moments
    two = EventsConfig.model_validate(yaml.safe_load(
        "moments:\n  - {id: s, kind: salary_credited}\n  - {id: o, kind: large_outflow, amount: 2000}\n"))
    fewer = [e for e in seen if decision_reads(e, two.moments)]
    assert 0 < len(fewer) < len(seen) // 2 and all(e.kind == "transaction" for e in fewer)
    assert sorted(t.key for t in moments_of(fewer, two.moments)) == sorted(t.key for t in moments_of(seen, two.moments))
