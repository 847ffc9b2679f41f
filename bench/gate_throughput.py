"""Benchmark: the contact gate's cost on a big day — N contacts drained through a channel that answers at once.

    .venv/bin/python bench/gate_throughput.py                      # 20,000 contacts, SQLite
    .venv/bin/python bench/gate_throughput.py --url postgresql+psycopg://user@host/db --contacts 20000

Each contact is one customer's SMS (the bank consents to all), enqueued with the template's contact policy
and drained at 10:00 local with batch size 500: every contact passes the gate (consent, DND, refusals read
per chunk, quiet hours, a place in the contact ledger) and is handed to a recording channel. Prints the
wall time of the enqueue and of the drain. Figures go to docs/performance.md ("The contact gate").
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from lifeloop.execution.dispatch import drain  # noqa: E402
from lifeloop.store.ops import open_ops  # noqa: E402
from lifeloop.store.ops.migrations import upgrade  # noqa: E402
from tests.gate_world import POLICY, TZ, Clock, D, RecordingGateway, consenting, enqueue, local, row  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=20_000)
    parser.add_argument("--url", default=None, help="an empty database (default: SQLite in a temp folder)")
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    url = args.url or f"sqlite:///{Path(tempfile.mkdtemp(prefix='lifeloop-gate-')) / 'ops.db'}"
    upgrade(url)
    sessions = open_ops(url, auto_upgrade=False)
    people = [f"C{i:07}" for i in range(args.contacts)]
    started = time.perf_counter()
    enqueue(sessions, [row(c, "s1", "w1", "sms") for c in people], now=local(D, 9))
    queued = time.perf_counter() - started
    clock = Clock(local(D, 10))
    gateway = RecordingGateway(clock)
    started = time.perf_counter()
    summary = drain(sessions, gateway.adapters(("sms",)), baseline=consenting(people, channels=("sms",)),
                    policy=POLICY, timezone=TZ, clock=clock, batch_size=args.batch)
    drained = time.perf_counter() - started
    print(f"{sessions.kw['bind'].dialect.name}: {args.contacts:,} contacts enqueued in {queued:.1f} s, "
          f"gated and sent in {drained:.1f} s (sent {summary.sent:,}, delivered {len(gateway.delivered):,})")


if __name__ == "__main__":
    main()
