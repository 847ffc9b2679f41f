"""A real-time contact of a day is not the day's plan: the batch plans that day afterwards without --replan, and
the re-plan guard still counts the plan's own contacts. SQLite and PostgreSQL."""

from __future__ import annotations

import sqlalchemy as sa

from lifeloop.store.ops import contacts
from lifeloop.store.ops.models import Dispatch
from tests.gate_world import enqueue, row
from tests.ops_fixtures import database_url  # noqa: F401 - fixture
from tests.realtime_world import Clock, D, RecordingGateway, local, make_world, salary


def test_real_time_contacts_do_not_count_as_the_days_dispatched_plan(tmp_path, database_url, monkeypatch):
    ctx = make_world(tmp_path, database_url, monkeypatch)
    clock = Clock(local(D, 10, 0))
    gateway = RecordingGateway(clock)
    ctx.accept_events([salary("a", "C001", local(D, 9, 58))], source="core")
    decider = ctx.decider(clock=clock, adapters=gateway.adapters())
    done = decider.run_until_idle()
    assert done.enqueued + done.controls == 1      # treated (enqueued) or control (recorded): one outbox item
    decider.close()
    with ctx.ops()() as s:
        assert s.scalar(sa.select(sa.func.count(Dispatch.id)).where(Dispatch.as_of == D)) == 1
        assert contacts.dispatched_on(s, D) == 0          # the decider's, not the plan's
    enqueue(ctx.ops(), [row("C002", "birthday", "w1", "sms")], now=clock.now)   # a contact of the plan of D
    with ctx.ops()() as s:
        assert contacts.dispatched_on(s, D) == 1
    ctx.close()
