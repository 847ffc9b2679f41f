"""An event source is read at least once and committed only after the decision: a crash between intake and
commit re-reads the batch, which stores and sends nothing twice."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from lifeloop.realtime.sources import JsonLinesSource, pump
from lifeloop.store.ops.models import Event, Moment
from tests.ops_fixtures import database_url  # noqa: F401 - fixture
from tests.realtime_world import CUSTOMERS, Clock, D, RecordingGateway, local, make_world, salary


class Crash(Exception):
    pass


def test_a_crash_before_the_commit_re_reads_the_batch_and_changes_nothing_twice(tmp_path, database_url, monkeypatch):
    ctx = make_world(tmp_path, database_url, monkeypatch)
    stream = tmp_path / "stream.jsonl"
    stream.write_text("".join(json.dumps(salary(c, c, local(D, 9, i))) + "\n" for i, c in enumerate(CUSTOMERS)),
                      encoding="utf-8")
    clock = Clock(local(D, 10))
    gateway = RecordingGateway(clock)
    decider = ctx.decider(clock=clock, adapters=gateway.adapters())
    calls = []

    def decide_then_crash():
        decider.run_until_idle()
        calls.append(1)
        if len(calls) == 2:
            raise Crash("the process died after deciding the second batch, before committing its position")

    source = JsonLinesSource(stream, name="core")
    with pytest.raises(Crash):
        pump(source, lambda raws: ctx.accept_events(raws, source="core"), decide_then_crash, batch=4)
    assert JsonLinesSource(stream).committed == 4          # the first batch only
    sent = sorted(d.customer_id for d in gateway.delivered)
    again = pump(JsonLinesSource(stream, name="core"), lambda raws: ctx.accept_events(raws, source="core"),
                 decider.run_until_idle, batch=4)
    decider.close()
    assert again.committed == [8, 9] and again.duplicates == 4 and again.accepted == 1
    assert JsonLinesSource(stream).committed == 9 and JsonLinesSource(stream).poll(10) == []
    with ctx.ops()() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(Event)) == 9
        assert s.scalar(sa.select(sa.func.count()).select_from(Moment)) == 9
    delivered = [d.customer_id for d in gateway.delivered]
    assert len(delivered) == len(set(delivered)) and set(sent) <= set(delivered)
    ctx.close()
