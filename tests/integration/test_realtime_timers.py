"""Maturity timers (到期前后): set from the holdings, fired once on the right local date (T-7, T-1, T+1) across
restarts, missed when their date passed with nothing running; decided like any moment. SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import re

import pyarrow.parquet as pq
import sqlalchemy as sa

from lifeloop.store.ops.models import MomentDecision, Timer
from tests.ops_fixtures import database_url  # noqa: F401 - fixture
from tests.realtime_world import EVENTS, STRATEGIES, Clock, D, RecordingGateway, _table, local, make_world

MATURES = dt.date(2026, 3, 20)
TIMER_EVENTS = EVENTS + "  - {id: maturing, kind: maturity, offsets: [-7, -1, 1], scene: 到期续作}\n"
TIMER_STRATEGY = STRATEGIES + """\
  - id: renew
    name: {zh: 到期续作, en: Renewal}
    owner: ops
    objective: {kind: scale, metric: aum, window_days: 30}
    scenario: {kind: event, name: 到期续作}
    audience: "true"
    offer: {code: RENEW}
    channels: [sms]
    scripts: {sms: {zh: "您的存款即将到期"}}
    waves: [{id: w1, day: 0}]
    holdout: 0
    start: 2026-01-01
    reentry_days: 1      # each reminder (T-7, T-1, T+1) is an entry of its own
"""


def test_maturity_timers_fire_once_on_their_local_dates_across_restarts(tmp_path, database_url, monkeypatch):
    ctx = make_world(tmp_path, database_url, monkeypatch, events=TIMER_EVENTS, strategies=TIMER_STRATEGY)
    holdings = [{"account_id": "TD1", "customer_id": "C001", "product_id": "TD1Y", "snapshot_date": D,
                 "maturity_date": MATURES, "status": "open", "balance": 1},
                {"account_id": "DD1", "customer_id": "C002", "product_id": "DD", "snapshot_date": D,
                 "maturity_date": None, "status": "open", "balance": 1},
                {"account_id": "TD2", "customer_id": "C003", "product_id": "TD1Y", "snapshot_date": D,
                 "maturity_date": D + dt.timedelta(days=3), "status": "open", "balance": 1}]
    products = [{"product_id": "TD1Y", "name": "1年定期", "product_type": "time_deposit", "risk_level": "R1"},
                {"product_id": "DD", "name": "活期", "product_type": "demand_deposit", "risk_level": "R1"}]

    def write(staging):
        pq.write_table(_table("holdings", holdings), staging / "holdings.parquet")
        pq.write_table(_table("products", products), staging / "products.parquet")

    ctx.lake.publish("bank", D + dt.timedelta(days=1), write)
    day = D + dt.timedelta(days=1)
    # TD1: T-7 = 03-13, T-1 = 03-19, T+1 = 03-21; TD2 matures 03-05: T-7 (02-26) is past, so T-1 03-04, T+1 03-06
    assert ctx.set_timers(day) == 5
    assert ctx.set_timers(day) == 0                           # the same day again: nothing new
    clock = Clock(local(dt.date(2026, 3, 12), 23, 59))
    gateway = RecordingGateway(clock)

    def run(at: dt.datetime):
        clock.now = at
        decider = ctx.decider(clock=clock, adapters=gateway.adapters())   # a new decider: as after a restart
        try:
            return decider.run_until_idle()
        finally:
            decider.close()

    assert run(local(dt.date(2026, 3, 3), 10)).timers == 0
    assert run(local(dt.date(2026, 3, 4), 10)).timers == 1       # TD2's T-1
    assert run(local(dt.date(2026, 3, 4), 11)).timers == 0       # fired once, whatever runs later that day
    skipped = run(local(dt.date(2026, 3, 7), 10))               # nothing ran on 03-06: TD2's T+1 is missed
    assert (skipped.timers, skipped.missed_timers) == (0, 1)
    assert run(local(dt.date(2026, 3, 12), 23, 59)).timers == 0  # 23:59 on the 12th: not yet
    assert run(local(dt.date(2026, 3, 13), 0, 1)).timers == 1    # 00:01 local on the 13th (16:01 UTC on the 12th)
    assert len(gateway.delivered) == 1                           # quiet hours: the SMS waits for 08:00
    assert run(local(dt.date(2026, 3, 13), 8, 0)).timers == 0
    assert run(local(dt.date(2026, 3, 19), 9)).timers == 1
    assert run(local(dt.date(2026, 3, 21), 9)).timers == 1
    with ctx.ops()() as s:
        statuses = dict(s.execute(sa.select(Timer.scope, Timer.status)).all())
        made = list(s.scalars(sa.select(MomentDecision).order_by(MomentDecision.id)))
    assert statuses == {"TD1:-7": "fired", "TD1:-1": "fired", "TD1:+1": "fired", "TD2:-1": "fired", "TD2:+1": "missed"}
    assert [(d.customer_id, d.outcome) for d in made] == [("C003", "treated")] + [("C001", "treated")] * 3
    assert "matures 2026-03-20: 7 day(s) before (T-7)" in made[1].reason
    # delivered: once per timer, on its local date (08:00 quiet hours end for the 00:01 one)
    got = [(d.customer_id, d.at.astimezone(local(D, 0).tzinfo).date()) for d in gateway.delivered]
    assert got == [("C003", dt.date(2026, 3, 4)), ("C001", dt.date(2026, 3, 13)), ("C001", dt.date(2026, 3, 19)),
                   ("C001", dt.date(2026, 3, 21))]
    ctx.close()


def test_the_daily_run_sets_the_maturity_timers_once(tmp_path, database_url, monkeypatch):
    from lifeloop import pipeline

    # the daily run checks the configuration first: SMS scripts with the sender's signature and an opt-out
    compliant = re.sub(r'zh: "([^"]*)"', r'zh: "【{{ bank_name }}】\1回复TD退订"', TIMER_STRATEGY)
    ctx = make_world(tmp_path, database_url, monkeypatch, events=TIMER_EVENTS, strategies=compliant)
    holdings = [{"account_id": "TD1", "customer_id": "C001", "product_id": "TD1Y", "snapshot_date": D,
                 "maturity_date": MATURES, "status": "open", "balance": 1}]
    products = [{"product_id": "TD1Y", "name": "1年定期", "product_type": "time_deposit", "risk_level": "R1"}]

    def write(staging):
        pq.write_table(_table("holdings", holdings), staging / "holdings.parquet")
        pq.write_table(_table("products", products), staging / "products.parquet")

    day = D + dt.timedelta(days=1)
    ctx.lake.publish("bank", day, write)
    assert "timers" in pipeline.resolve_steps(None)              # part of the whole daily run, after ingest
    [first] = ctx.run(day, steps=["timers"])
    assert (first.step, first.rows, first.summary) == ("timers", 3, {"timers": 3, "new": 3})
    [again] = ctx.run(day, steps=["timers"])
    assert (again.rows, again.summary) == (0, {"timers": 3, "new": 0})   # idempotent: one timer per key
    with ctx.ops()() as s:
        rows = s.execute(sa.select(Timer.scope, Timer.fire_on, Timer.status).order_by(Timer.fire_on)).all()
    assert rows == [("TD1:-7", dt.date(2026, 3, 13), "pending"), ("TD1:-1", dt.date(2026, 3, 19), "pending"),
                    ("TD1:+1", dt.date(2026, 3, 21), "pending")]
    ctx.close()
