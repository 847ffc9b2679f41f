"""``POST /events`` on a real server (uvicorn on 127.0.0.1, started and stopped here): a service token compared
by its hash (401 without), a rate limit (429 with Retry-After), a bad event refused naming the field (422,
nothing stored), a batch stored once per id. SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import socket
import threading
import time

import httpx
import pytest
import sqlalchemy as sa

from lifeloop.api import create_app
from lifeloop.context import Context
from lifeloop.realtime.access import token_hash
from lifeloop.store.ops.migrations import upgrade
from lifeloop.store.ops.models import Event
from tests.ops_fixtures import database_url  # noqa: F401 - fixture

TOKEN = "s3cret-core-banking-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path, database_url, monkeypatch):
    import uvicorn

    monkeypatch.setenv("LIFELOOP_DATABASE_URL", database_url)
    upgrade(database_url)   # PostgreSQL is migrated on purpose (lifeloop db upgrade), never by the server
    ws = tmp_path / "ws"
    Context.init(ws).close()
    (ws / "config" / "events.yaml").write_text(
        "sources:\n"
        f"  - {{name: core_banking, token_sha256: {token_hash(TOKEN)}, rate_per_second: 0.01, burst: 3}}\n"
        f"  - {{name: app_tracking, token_sha256: {token_hash('other')}, rate_per_second: 1000, burst: 1000}}\n",
        encoding="utf-8")
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(create_app(lambda: Context(ws)), host="127.0.0.1", port=port,
                                        log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}", Context(ws)
    srv.should_exit = True
    thread.join(timeout=30)


def event(i: int, **over) -> dict:
    return {"kind": "app", "event_id": f"a{i}", "customer_id": "C001", "action": "product_view",
            "product_id": "WM01", "occurred_at": dt.datetime(2026, 3, 2, 2, 0, i, tzinfo=dt.UTC).isoformat(), **over}


def stored(ctx: Context) -> list[str]:
    with ctx.ops()() as s:
        return sorted(s.scalars(sa.select(Event.event_id)))


def test_post_events_authenticates_limits_validates_and_stores_each_id_once(server):
    url, ctx = server
    with httpx.Client(base_url=url, timeout=10) as http:
        assert http.post("/events", json=event(1)).status_code == 401
        refused = http.post("/events", json=event(1), headers={"Authorization": "Bearer wrong"})
        assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
        assert stored(ctx) == []
        auth = {"Authorization": f"Bearer {TOKEN}"}
        ok = http.post("/events", json=[event(1), event(2)], headers=auth)
        assert ok.status_code == 200 and ok.json()["accepted"] == 2 and ok.json()["duplicates"] == 0
        again = http.post("/events", json={"events": [event(2), event(3)]}, headers=auth)
        assert again.json() == {"accepted": 1, "duplicates": 1, "duplicate_ids": ["a2"]}
        bad = http.post("/events", json=[event(4), event(5, action="buy")], headers=auth)
        assert bad.status_code == 422
        assert bad.json()["problems"][0]["row"] == 2 and bad.json()["problems"][0]["field"] == "action"
        # burst 3 used up (3 requests above); at 0.01/s (so a slow machine cannot refill it) the 4th is refused
        limited = http.post("/events", json=event(6), headers=auth)
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
        # another source has its own bucket
        other = http.post("/events", json=event(7), headers={"Authorization": "Bearer other"})
        assert other.status_code == 200
        assert stored(ctx) == ["a1", "a2", "a3", "a7"]
        with ctx.ops()() as s:
            sources = dict(s.execute(sa.select(Event.event_id, Event.source)).all())
        assert sources == {"a1": "core_banking", "a2": "core_banking", "a3": "core_banking", "a7": "app_tracking"}
        # (the bucket's refill over time is tested with a fake clock in tests/unit/test_realtime_access.py)
        health = http.get("/health").json()
        assert health["status"] == "ok" and health["decider_errors"] == []
    ctx.close()
