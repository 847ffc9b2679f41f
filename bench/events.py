"""Benchmark: real-time intake and decisions over loopback (``lifeloop serve`` in a child process).

    .venv/bin/python bench/events.py                         # 1,000 events/s for 60 s, then 50,000 with 20% dups
    .venv/bin/python bench/events.py --rate 1000 --seconds 20 --burst-events 20000
    .venv/bin/python bench/events.py --url postgresql+psycopg://user@host/db   # an empty database

1. **Sustained.** Clients post batches of 50 events (salary credits, transfers, card payments over
   ``--customers`` customers) at ``--rate`` events per second for ``--seconds`` seconds. Each event's
   ``occurred_at`` is the instant it was sent; its decision time is ``events.decided_at`` (the detectors and
   every strategy decision committed, in one transaction with the outbox items). Reports the achieved intake
   rate and the p50/p95/p99 event-to-decision latency, and how many contacts the gate let out.
2. **Duplicates.** ``--burst-events`` events, 20% of them repeating an id already sent, posted by 16
   concurrent clients as fast as they go; checks that exactly the unique ids are stored.

Loopback only; bounded in time (the sustained phase stops at ``--seconds``, the check waits at most 900 s for
the decider). Figures go to docs/performance.md ("Real-time events").
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from lifeloop.store.ops.database import resolve_url, session_factory  # noqa: E402
from lifeloop.store.ops.models import Dispatch, Event, MomentDecision  # noqa: E402
from tests.realtime_world import TOKEN, ServerProcess, build_workspace  # noqa: E402

HEADERS = {"Authorization": f"Bearer {TOKEN}"}
BATCH = 50


def make_event(i: int, customers: int, rng: random.Random, prefix: str = "e") -> dict:
    customer = f"C{rng.randrange(customers):06d}"
    kind = rng.random()
    now = dt.datetime.now(dt.UTC).isoformat()
    base = {"event_id": f"{prefix}{i}", "customer_id": customer, "occurred_at": now}
    if kind < 0.15:
        return {**base, "kind": "transaction", "amount": "8000.00", "direction": "credit", "txn_type": "salary",
                "counterparty_kind": "employer"}
    if kind < 0.25:
        return {**base, "kind": "transaction", "amount": f"{rng.randrange(1000, 90000)}.00", "direction": "debit",
                "txn_type": "transfer", "counterparty_kind": "bank", "balance_after": f"{rng.randrange(0, 5000)}.00"}
    return {**base, "kind": "card_swipe", "card_id": f"K{customer}", "amount": f"{rng.randrange(5, 500)}.00"}


def sustained(server: ServerProcess, rate: float, seconds: float, customers: int, clients: int = 4) -> dict:
    """Post ``rate`` events/s for ``seconds`` seconds from ``clients`` threads; returns what was acknowledged.

    The load generator shares the two cores with the server, so it does its own work up front: every request's
    events are made and encoded before the clock starts, and each client's connection is open before then;
    only ``occurred_at`` is written at the moment of sending (a byte-level substitution, not a re-encoding).
    """
    per_client = rate / clients
    acked = [0] * clients
    errors: list[str] = []
    per_client_batches = int(per_client * seconds / BATCH) + 2
    stamp = "1970-01-01T00:00:00.000000+00:00"   # the placeholder every event's occurred_at carries until sent
    bodies = []
    for k in range(clients):
        rng = random.Random(k)
        mine = []
        for b in range(per_client_batches):
            events = [{**make_event(k * 10**9 + b * BATCH + j, customers, rng), "occurred_at": stamp}
                      for j in range(BATCH)]
            mine.append(json.dumps(events).encode())
        bodies.append(mine)
    https = [httpx.Client(base_url=server.url, headers={**HEADERS, "Content-Type": "application/json"}, timeout=30)
             for _ in range(clients)]
    for http in https:
        http.get("/health")
    placeholder = stamp.encode()
    start_barrier = threading.Barrier(clients + 1)
    stop_at: list[float] = []

    def client(k: int) -> None:
        http, n = https[k], 0
        start_barrier.wait()
        started = time.monotonic()
        while time.monotonic() < stop_at[0] and n < len(bodies[k]):
            due = started + n * BATCH / per_client        # keep to the schedule (no catch-up beyond it)
            if due > time.monotonic():
                time.sleep(due - time.monotonic())
            now = dt.datetime.now(dt.UTC).isoformat(timespec="microseconds").encode()
            r = http.post("/events", content=bodies[k][n].replace(placeholder, now))
            if r.status_code != 200:
                errors.append(f"{r.status_code}: {r.text[:200]}")
            else:
                acked[k] += r.json()["accepted"]
            n += 1

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    stop_at.append(time.monotonic() + seconds)
    started = time.monotonic()
    start_barrier.wait()
    for t in threads:
        t.join()
    for http in https:
        http.close()
    return {"acknowledged": sum(acked), "seconds": time.monotonic() - started, "errors": errors[:5]}


def wait_decided(sessions, expected: int, limit: float = 900) -> float:
    started = time.monotonic()
    while time.monotonic() - started < limit:
        with sessions() as s:
            done = s.scalar(sa.select(sa.func.count()).select_from(Event).where(Event.decided_at.is_not(None)))
        if done >= expected:
            return time.monotonic() - started
        time.sleep(0.2)
    raise RuntimeError(f"only {done:,} of {expected:,} events were decided within {limit:.0f} s")


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def duplicates(server: ServerProcess, total: int, customers: int, clients: int = 16) -> dict:
    """``total`` events, 20% repeating an earlier id, from ``clients`` concurrent clients."""
    rng = random.Random(7)
    unique = int(total * 0.8)
    events = [make_event(i, customers, rng, prefix="d") for i in range(unique)]
    events += [dict(rng.choice(events)) for _ in range(total - unique)]
    rng.shuffle(events)
    chunks = [events[i:i + BATCH] for i in range(0, len(events), BATCH)]
    results = {"accepted": 0, "duplicates": 0, "errors": []}
    lock = threading.Lock()

    def client(k: int) -> None:
        with httpx.Client(base_url=server.url, headers=HEADERS, timeout=60) as http:
            for chunk in chunks[k::clients]:
                r = http.post("/events", json=chunk)
                with lock:
                    if r.status_code == 200:
                        results["accepted"] += r.json()["accepted"]
                        results["duplicates"] += r.json()["duplicates"]
                    else:
                        results["errors"].append(r.status_code)

    started = time.monotonic()
    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    results["seconds"] = time.monotonic() - started
    results["unique_ids"] = len({e["event_id"] for e in events})
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=1000)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--burst-events", type=int, default=50_000)
    parser.add_argument("--url", default=None, help="an empty database (default: SQLite in the workspace)")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="lifeloop-events-"))
    ws = build_workspace(root, customers=args.customers, day=dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1),
                         database_url=args.url)
    url = args.url or resolve_url(ws)
    sessions = session_factory(url)
    server = ServerProcess(ws, database_url=args.url).start()
    out: dict = {"database": sessions.kw["bind"].dialect.name, "rate": args.rate, "seconds": args.seconds}
    try:
        load = sustained(server, args.rate, args.seconds, args.customers)
        out["sustained"] = {**load, "events_per_second": round(load["acknowledged"] / load["seconds"], 1)}
        out["sustained"]["drain_after_load_seconds"] = round(wait_decided(sessions, load["acknowledged"]), 2)
        with sessions() as s:
            lat = [(d - o).total_seconds() for o, d in s.execute(sa.select(Event.occurred_at, Event.decided_at))]
            out["sustained"]["decisions"] = dict(s.execute(sa.select(MomentDecision.outcome, sa.func.count())
                                                           .group_by(MomentDecision.outcome)).all())
            out["sustained"]["outbox"] = dict(s.execute(sa.select(Dispatch.status, sa.func.count())
                                                        .group_by(Dispatch.status)).all())
        out["sustained"]["latency_seconds"] = {"p50": round(percentile(lat, 0.50), 3),
                                               "p95": round(percentile(lat, 0.95), 3),
                                               "p99": round(percentile(lat, 0.99), 3), "max": round(max(lat), 3)}
        before = load["acknowledged"]
        if args.burst_events:
            dup = duplicates(server, args.burst_events, args.customers)
            with sessions() as s:
                stored = s.scalar(sa.select(sa.func.count()).select_from(Event)) - before
            dup["stored"] = stored
            dup["exactly_the_unique_ones"] = stored == dup["unique_ids"] == dup["accepted"]
            out["duplicates"] = dup
    finally:
        server.stop()
    print(json.dumps(out, indent=2, default=str))


if __name__ == "__main__":
    main()
