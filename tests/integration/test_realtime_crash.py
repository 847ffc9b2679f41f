"""kill -9 during a load: no acknowledged event is lost and no contact goes out twice after the restart.

``lifeloop serve`` runs in a child process on 127.0.0.1; a client posts salary events (each a contact for a
treated customer) and keeps the ids the server acknowledged; the server is killed with SIGKILL mid-load, started
again, and left to decide and send what is left. The delivered log is the SMS channel's export files (each row
carries its contact key). SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import datetime as dt
import threading
import time
from collections import Counter

import httpx
import pytest
import sqlalchemy as sa

from lifeloop.store.ops.database import resolve_url, session_factory
from lifeloop.store.ops.models import Dispatch, Event
from tests.ops_fixtures import database_url  # noqa: F401 - fixture
from tests.realtime_world import TOKEN, ServerProcess, build_workspace


def salary_event(i: int, customers: int) -> dict:
    return {"kind": "transaction", "event_id": f"k{i}", "customer_id": f"C{(i * 7919) % customers:06d}",
            "occurred_at": dt.datetime.now(dt.UTC).isoformat(), "amount": "9000.00", "direction": "credit",
            "txn_type": "salary", "counterparty_kind": "employer"}


@pytest.mark.slow
def test_kill_9_during_load_loses_no_acknowledged_event_and_sends_no_contact_twice(tmp_path, database_url):
    customers = 400
    url = None if database_url.startswith("sqlite") else database_url
    ws = build_workspace(tmp_path, customers=customers, day=dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1),
                         database_url=url)
    sessions = session_factory(url or resolve_url(ws))
    server = ServerProcess(ws, database_url=url).start()
    acknowledged: list[str] = []
    stop = threading.Event()

    def load() -> None:
        n = 0
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5) as http:
            while not stop.is_set():
                batch = [salary_event(n + j, customers) for j in range(20)]
                try:
                    r = http.post("/events", json=batch)
                except httpx.HTTPError:
                    time.sleep(0.05)
                    continue       # not acknowledged: the source sends it again later (same ids)
                if r.status_code == 200:
                    acknowledged.extend(e["event_id"] for e in batch)
                    n += 20

    client = threading.Thread(target=load)
    client.start()
    try:
        deadline = time.monotonic() + 60
        while len(acknowledged) < 600 and time.monotonic() < deadline:
            time.sleep(0.05)
        server.kill()                      # SIGKILL: mid-request, mid-decision, mid-send
        time.sleep(0.5)
        stop.set()
        client.join(timeout=30)
        assert len(acknowledged) >= 600
        server.start()                     # the same workspace and database
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with sessions() as s:
                undecided = s.scalar(sa.select(sa.func.count()).select_from(Event).where(Event.decided_at.is_(None)))
                waiting = s.scalar(sa.select(sa.func.count()).select_from(Dispatch)
                                   .where(Dispatch.status.in_(("pending", "claimed"))))
            if undecided == 0 and waiting == 0:
                break
            time.sleep(0.3)
        assert undecided == 0 and waiting == 0
    finally:
        stop.set()
        server.stop()
    with sessions() as s:
        stored = set(s.scalars(sa.select(Event.event_id)))
        outbox = Counter(s.execute(sa.select(Dispatch.customer_id, Dispatch.strategy_id, Dispatch.as_of)).all())
        statuses = Counter(s.scalars(sa.select(Dispatch.status)))
    assert set(acknowledged) <= stored                        # nothing acknowledged is lost
    assert max(outbox.values()) == 1                          # one contact per customer, strategy and day
    keys = Counter()
    for f in (ws / "exports").rglob("*.csv"):
        with open(f, encoding="utf-8-sig", newline="") as fh:
            keys.update(row["contact_key"] for row in csv.DictReader(fh))
    assert keys and max(keys.values()) == 1                   # the delivered log: nobody got the same contact twice
    # a file written just before the kill is recorded "unknown" (never re-sent, left for an operator)
    assert statuses["sent"] <= len(keys) <= statuses["sent"] + statuses["unknown"]
    sessions.kw["bind"].dispose()
