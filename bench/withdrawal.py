"""Benchmark: how long after a consent withdrawal can a contact still go out, with a slow gateway?

    .venv/bin/python bench/withdrawal.py                       # 0.4 s a request, batch sizes 200 and 1000
    .venv/bin/python bench/withdrawal.py --per-request 0.4 --fresh 10 --batch 200 1000 --after 12 17

A SQLite operations database in a temp folder holds N SMS contacts (the bank consents to all). The drain
sends them through a gateway that takes ``--per-request`` seconds a message (sequentially, as the webhook
adapter does); ``--after`` seconds in, every customer withdraws marketing consent on every channel (one
transaction, as an inbound-reply import would). The gateway records the monotonic time of every message
it is handed; the figure is the time from the withdrawal's commit to the last message handed over after
it (0 if none), for each batch size, worst of several withdrawal times (so one lands mid-chunk). Figures go to
docs/performance.md ("The contact gate").
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from lifeloop.config.contact_policy import ContactPolicy  # noqa: E402
from lifeloop.execution.dispatch import drain  # noqa: E402
from lifeloop.store.ops import consent, open_ops  # noqa: E402
from lifeloop.store.ops.database import unit_of_work  # noqa: E402
from lifeloop.store.ops.types import utcnow  # noqa: E402
from tests.gate_world import RecordingGateway, consenting, enqueue, in_local, row  # noqa: E402


def once(batch: int, per: float, fresh: float, after: float, n: int) -> dict:
    """One drain with a withdrawal ``after`` seconds in: what went out after it, and how late."""
    folder = Path(tempfile.mkdtemp(prefix="lifeloop-withdrawal-"))
    sessions = open_ops(f"sqlite:///{folder / 'ops.db'}")
    people = [f"C{i:05}" for i in range(n)]
    policy = ContactPolicy()   # nothing but the withdrawal stops a contact (no quiet hours: any wall-clock hour)
    today = in_local(utcnow()).date()
    enqueue(sessions, [row(c, "s1", "w1", "sms", as_of=today, send_at=None) for c in people],
            now=utcnow() - dt.timedelta(minutes=1), policy=policy)
    gateway = RecordingGateway(utcnow, per_message=per)
    mark: dict[str, float] = {}

    def withdraw() -> None:
        time.sleep(after)
        with unit_of_work(sessions) as s:
            for c in people:
                consent.record_change(s, customer_id=c, purpose="marketing", channel="*", granted=False,
                                      effective_at=utcnow(), source="sms_reply", recorded_by="bench")
        mark["at"] = time.monotonic()

    thread = threading.Thread(target=withdraw)
    started = time.monotonic()
    thread.start()
    summary = drain(sessions, gateway.adapters(("sms",)), baseline=consenting(people), policy=policy,
                    batch_size=batch, fresh_seconds=fresh)
    thread.join()
    late = [d.mono - mark["at"] for d in gateway.delivered if d.mono > mark["at"]]
    sessions.kw["bind"].dispose()
    return {"batch": batch, "sent": len(gateway.delivered), "blocked": summary.blocked, "after_withdrawal": len(late),
            "last_after_s": round(max(late, default=0.0), 2), "withdrawal_at_s": round(mark["at"] - started, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-request", type=float, default=0.4)
    parser.add_argument("--fresh", type=float, default=10.0, help="channels.yaml fresh_seconds")
    parser.add_argument("--batch", type=int, nargs="+", default=[200, 1000])
    parser.add_argument("--after", type=float, nargs="+", default=[12.0, 14.5, 17.0, 19.5],
                        help="seconds into the drain the withdrawal lands (one run each; the worst is reported)")
    parser.add_argument("--contacts", type=int, default=2000)
    args = parser.parse_args()
    print(f"gateway {args.per_request} s a request, fresh_seconds {args.fresh}, withdrawal at {args.after} s")
    print("| batch size | runs | sent after the withdrawal (per run) | last one after it (s, worst run) |")
    print("|---:|---:|---|---:|")
    for batch in args.batch:
        runs = [once(batch, args.per_request, args.fresh, after, args.contacts) for after in args.after]
        print(f"| {batch} | {len(runs)} | {', '.join(str(r['after_withdrawal']) for r in runs)} | "
              f"{max(r['last_after_s'] for r in runs)} |", flush=True)

if __name__ == "__main__":
    main()
