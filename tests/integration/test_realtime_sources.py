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


def test_events_run_pumps_a_source_to_its_end_and_goes_on_from_its_committed_position(tmp_path, database_url,
                                                                                       monkeypatch):
    import subprocess
    import sys

    ctx = make_world(tmp_path, database_url, monkeypatch)
    stream = tmp_path / "stream.jsonl"
    stream.write_text("".join(json.dumps(salary(c, c, local(D, 9, i))) + "\n" for i, c in enumerate(CUSTOMERS)),
                      encoding="utf-8")
    clock = Clock(local(D, 10))
    gateway = RecordingGateway(clock)
    pumped, summary = ctx.run_event_source(stream, source="core", batch=4, clock=clock, adapters=gateway.adapters())
    assert (pumped.batches, pumped.accepted, pumped.duplicates, pumped.committed) == (3, 9, 0, [4, 8, 9])
    assert (summary.events, summary.moments) == (9, 9)
    assert (tmp_path / "stream.jsonl.offset").read_text() == "9"
    first = sorted(d.customer_id for d in gateway.delivered)
    assert first and summary.drain.sent == len(first)
    # appended: a repeat of an id already stored, and a new salary the next day (within 24 h: suppressed)
    with stream.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(salary("C001", "C001", local(D, 9, 0))) + "\n")
        fh.write(json.dumps(salary("n1", "C002", local(D, 23, 0))) + "\n")
    again, more = ctx.run_event_source(stream, source="core", batch=4, clock=clock, adapters=gateway.adapters())
    assert (again.batches, again.accepted, again.duplicates, again.committed) == (1, 1, 1, [11])
    assert more.events == 1 and sorted(d.customer_id for d in gateway.delivered) == first
    with ctx.ops()() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(Event)) == 10
    ctx.close()
    if "sqlite" not in database_url:
        return
    # the command: a file that is no JSON-lines source is a clear error naming the fix
    bad = tmp_path / "stream.csv"
    bad.write_text("kind,event_id\n", encoding="utf-8")
    cli = [sys.executable, "-m", "lifeloop.cli", "-w", str(tmp_path / "ws"), "events", "run"]
    refused = subprocess.run([*cli, str(bad)], capture_output=True, text=True, timeout=120)
    assert refused.returncode == 1 and "Error:" in refused.stderr and "JSON-lines" in refused.stderr
    assert "lifeloop events ingest stream.csv" in refused.stderr and "Traceback" not in refused.stderr
    done = subprocess.run([*cli, str(stream), "--source", "core"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "stream.jsonl: 0 batches, 0 events stored" in done.stdout and "committed position unchanged" in done.stdout
