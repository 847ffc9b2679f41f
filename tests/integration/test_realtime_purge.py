"""A purged customer's real-time rows go with the rest of their ops rows, so the review's real-time entries
(re-published from the operations database every run) cannot bring them back. SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pyarrow.parquet as pq
import sqlalchemy as sa

from lifeloop.realtime import entries
from lifeloop.store.ops import rights
from lifeloop.store.ops.database import unit_of_work
from lifeloop.store.ops.models import Event, Moment, MomentDecision
from tests.ops_fixtures import database_url  # noqa: F401 - fixture
from tests.realtime_world import CUSTOMERS, Clock, D, RecordingGateway, local, make_world, salary


def test_a_purge_deletes_the_customers_real_time_rows_and_the_next_entries_leave_them_out(tmp_path, database_url,
                                                                                           monkeypatch):
    ctx = make_world(tmp_path, database_url, monkeypatch)
    clock = Clock(local(D, 10, 0))
    gateway = RecordingGateway(clock)
    ctx.accept_events([salary(c, c, local(D, 9, 58)) for c in CUSTOMERS], source="core")
    decider = ctx.decider(clock=clock, adapters=gateway.adapters())
    decider.run_until_idle()
    decider.close()
    after = D + dt.timedelta(days=1)
    assert entries.publish(ctx.lake, ctx.ops(), None, after) == 8          # C007 is in no audience
    with unit_of_work(ctx.ops()) as session:
        _, counts = rights.purge_customer(session, customer_id="C001", digests={"customer_id": "x"}, reason="closed",
                                          actor="tests")
    assert (counts["events"], counts["moments"], counts["moment_decisions"]) == (1, 1, 1)
    with ctx.ops()() as s:
        for model in (Event, Moment, MomentDecision):
            assert s.scalar(sa.select(sa.func.count()).select_from(model).where(model.customer_id == "C001")) == 0
            assert s.scalar(sa.select(sa.func.count()).select_from(model)) > 0     # the others' rows stay
    assert entries.publish(ctx.lake, ctx.ops(), None, after) == 7
    ids = pq.read_table(ctx.lake.snapshot_file(entries.AREA, after))["customer_id"].to_pylist()
    assert "C001" not in ids and len(ids) == 7
    ctx.close()
