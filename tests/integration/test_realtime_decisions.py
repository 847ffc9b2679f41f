"""A decision in seconds, checked on what the gateway received and on the recorded decisions: the audience on
the latest snapshot, suitability, the batch's holdout hash, the same contact gate (consent, quiet hours in local
time, caps in the contact ledger shared with the batch), re-entry suppression, and exactly once whatever the
repeats. SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from lifeloop.store.ops.models import Dispatch, Moment, MomentDecision
from lifeloop.strategy.holdout import is_control
from tests.gate_world import enqueue, row
from tests.ops_fixtures import database_url  # noqa: F401 - fixture
from tests.realtime_world import (
    CUSTOMERS,
    STRATEGIES,
    Clock,
    D,
    RecordingGateway,
    local,
    make_world,
    outflow,
    salary,
)


def decide(ctx, clock, gateway):
    decider = ctx.decider(clock=clock, adapters=gateway.adapters())
    try:
        return decider.run_until_idle()
    finally:
        decider.close()


def decisions(ctx) -> dict[tuple[str, str], MomentDecision]:
    with ctx.ops()() as s:
        return {(d.customer_id, d.strategy_id): d for d in s.scalars(sa.select(MomentDecision))}


def test_salary_moments_reach_the_audience_once_with_the_batch_holdout_and_the_gate(tmp_path, database_url,
                                                                                     monkeypatch):
    ctx = make_world(tmp_path, database_url, monkeypatch)
    clock = Clock(local(D, 10, 0))
    gateway = RecordingGateway(clock)
    at = local(D, 9, 58)
    events = [salary(c, c, at) for c in CUSTOMERS]
    assert len(ctx.accept_events(events, source="core").accepted) == 9
    summary = decide(ctx, clock, gateway)
    assert summary.events == 9 and summary.moments == 9
    made = decisions(ctx)
    control = {c for c in CUSTOMERS if is_control(c, "salary_care", "lifeloop", 0.3)}
    assert 0 < len(control - {"C007"}) < 8      # the hash puts some in control (fixed ids: fixed draw)
    expected = {}
    for c in CUSTOMERS:
        expected[c] = ("not_in_audience" if c == "C007" else "control" if c in control else "treated")
    assert {c: made[(c, "salary_care")].outcome for c in CUSTOMERS} == expected
    assert "salary credited: 8,000.00" in made[("C001", "salary_care")].reason
    assert "audience rule false on the snapshot of 2026-03-02" in made[("C007", "salary_care")].reason
    assert made[("C001", "salary_care")].entered_at == at
    # delivered: every treated customer once, but C008 has no marketing consent -> blocked at the gate
    got = sorted(d.customer_id for d in gateway.delivered)
    assert got == sorted(c for c, o in expected.items() if o == "treated" and c != "C008")
    assert all(d.strategy == "salary_care" and d.channel == "sms" and d.as_of == D for d in gateway.delivered)
    with ctx.ops()() as s:
        statuses = {r.customer_id: (r.status, r.blocked_reason) for r in s.scalars(sa.select(Dispatch))}
    if "C008" not in control:
        assert statuses["C008"][0] == "blocked" and "consent" in statuses["C008"][1]
    for c in control:
        if c != "C007":
            assert statuses[c][0] == "cancelled"     # recorded as a control entry, never sent
    # the same events again, a second salary the same day, and one the next morning (within 24 h): nothing new
    sent = len(gateway.delivered)
    ctx.accept_events(events, source="core")
    ctx.accept_events([salary("again-1", "C001", local(D, 15, 0)),
                       salary("next-1", "C001", local(D + dt.timedelta(1), 9, 0))], source="core")
    clock.now = local(D + dt.timedelta(1), 9, 5)
    second = decide(ctx, clock, gateway)
    assert len(gateway.delivered) == sent
    assert second.outcomes == {"suppressed": 1}          # the next day's salary: a new moment, re-entry waits 24 h
    with ctx.ops()() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(Moment)) == 10
        suppressed = s.scalar(sa.select(MomentDecision).where(MomentDecision.outcome == "suppressed"))
    assert "re-entry wait 365 d, the strategy's reentry_days" in suppressed.reason   # the default: once a year
    ctx.close()


def test_a_moment_in_quiet_hours_waits_for_the_morning_and_one_over_the_cap_is_never_sent(tmp_path, database_url,
                                                                                          monkeypatch):
    ctx = make_world(tmp_path, database_url, monkeypatch)
    treated = [c for c in CUSTOMERS if c not in ("C007", "C008") and not is_control(c, "salary_care", "lifeloop", 0.3)]
    late, capped = treated[0], treated[1]
    clock = Clock(local(D, 9, 0))
    gateway = RecordingGateway(clock)
    # the batch already contacted `capped` today (caps: one contact a day overall): sent at 09:00
    enqueue(ctx.ops(), [row(capped, "birthday", "w1", "sms", send_at="09:00")], now=clock.now)
    decider = ctx.decider(clock=clock, adapters=gateway.adapters())
    decider.drain()
    assert [(d.customer_id, d.strategy) for d in gateway.delivered] == [(capped, "birthday")]
    # 15:00 local: a salary for `capped` -> its one contact of the day is taken: blocked, never sent
    clock.now = local(D, 15, 0)
    ctx.accept_events([salary("q2", capped, local(D, 14, 59))], source="core")
    assert decider.run_until_idle().outcomes == {"treated": 1}
    assert [(d.customer_id, d.strategy) for d in gateway.delivered] == [(capped, "birthday")]
    with ctx.ops()() as s:
        blocked = s.scalar(sa.select(Dispatch).where(Dispatch.customer_id == capped,
                                                     Dispatch.strategy_id == "salary_care"))
    assert blocked.status == "blocked" and "cap_" in blocked.blocked_reason
    # 22:30 local: a salary for `late` (quiet hours for SMS from 21:00): held until 08:00
    clock.now = local(D, 22, 30)
    ctx.accept_events([salary("q1", late, local(D, 22, 29))], source="core")
    decider.run_until_idle()
    assert len(gateway.delivered) == 1
    clock.now = local(D + dt.timedelta(1), 7, 59)
    decider.drain()
    assert len(gateway.delivered) == 1
    clock.now = local(D + dt.timedelta(1), 8, 0)
    decider.drain()
    decider.close()
    got = [(d.customer_id, d.strategy, d.at) for d in gateway.delivered]
    assert got[1:] == [(late, "salary_care", local(D + dt.timedelta(1), 8, 0))]
    ctx.close()


def test_a_large_outflow_offers_a_product_only_to_the_suitable_and_in_the_audience(tmp_path, database_url, monkeypatch):
    ctx = make_world(tmp_path, database_url, monkeypatch)
    clock = Clock(local(D, 14, 0))
    gateway = RecordingGateway(clock)
    at = local(D, 13, 0)
    ctx.accept_events([
        outflow("a", "C001", at, "30000.00"), outflow("b", "C001", at + dt.timedelta(minutes=5), "25000.00"),  # 55,000
        outflow("c", "C002", at, "80000.00"),      # aum 5,000: not in the audience (aum >= 10000)
        outflow("d", "C009", at, "90000.00"),      # risk C1, the product is R3: unsuitable
        outflow("e", "C003", at, "49999.99"),      # below the amount: no moment
    ], source="core")
    summary = decide(ctx, clock, gateway)
    made = decisions(ctx)
    assert {k: d.outcome for k, d in made.items() if k[1] == "outflow_retain"} == {
        ("C001", "outflow_retain"): "treated", ("C002", "outflow_retain"): "not_in_audience",
        ("C009", "outflow_retain"): "unsuitable"}
    assert "money out to outside today reached 55,000.00" in made[("C001", "outflow_retain")].reason
    assert "suitability" in made[("C009", "outflow_retain")].reason
    assert [(d.customer_id, d.strategy) for d in gateway.delivered] == [("C001", "outflow_retain")]
    assert summary.moments == 3
    ctx.close()


def test_the_strategys_reentry_days_apply_to_real_time_entries(tmp_path, database_url, monkeypatch):
    strategies = STRATEGIES.replace("    holdout: 0.3\n", "    holdout: 0.3\n    reentry_days: 3\n")
    assert strategies != STRATEGIES
    ctx = make_world(tmp_path, database_url, monkeypatch, strategies=strategies)
    clock = Clock(local(D, 10, 0))
    gateway = RecordingGateway(clock)
    # C001's salary on D, again on D+2 (a second employer: within 3 days) and on D+3 at 10:00 (3 days after)
    days = [(0, 9, 58), (2, 9, 0), (3, 10, 0)]
    ctx.accept_events([salary(f"r{n}", "C001", local(D + dt.timedelta(days=d), h, m))
                       for n, (d, h, m) in enumerate(days)], source="core")
    clock.now = local(D + dt.timedelta(days=3), 11, 0)
    decide(ctx, clock, gateway)
    with ctx.ops()() as s:
        made = [(d.entered_at, d.outcome, d.reason) for d in s.scalars(
            sa.select(MomentDecision).where(MomentDecision.customer_id == "C001").order_by(MomentDecision.entered_at))]
    arm = "control" if is_control("C001", "salary_care", "lifeloop", 0.3) else "treated"
    assert [o for _, o, _ in made] == [arm, "suppressed", arm]
    assert "re-entry wait 3 d, the strategy's reentry_days" in made[1][2]
    assert [at for at, *_ in made] == [local(D + dt.timedelta(days=d), h, m) for d, h, m in days]
    ctx.close()
