"""Benchmark of the simulated bank (issue 3): paste the printed figures into docs/performance.md.

Goals on the 2-core reference machine: 100k customers x 730 days in under 2 minutes; one day of a
1M-customer bank advanced (with 100k contacts) in under 5 seconds.

    .venv/bin/python bench/simulate.py [--customers 100000] [--days 730] [--advance-customers 1000000]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import tempfile
import time
from pathlib import Path


def folder_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--customers", type=int, default=100_000)
    ap.add_argument("--days", type=int, default=730)
    ap.add_argument("--advance-customers", type=int, default=1_000_000)
    ap.add_argument("--advance-history-days", type=int, default=30)
    ap.add_argument("--contacts", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--keep", type=Path, default=None, help="write here instead of a temporary folder")
    args = ap.parse_args()

    import numpy as np
    import pyarrow as pa

    from lifeloop.data.simulator import SimulatedBank, simulate

    root = args.keep or Path(tempfile.mkdtemp(prefix="lifeloop-bench-sim-"))
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}")
    try:
        out = root / "bank"
        t, cpu = time.perf_counter(), time.process_time()
        r = simulate(out, customers=args.customers, days=args.days, seed=args.seed)
        full = time.perf_counter() - t
        print(f"simulate {args.customers:,} customers x {args.days} days: {full:.1f} s wall, "
              f"{time.process_time() - cpu:.1f} s CPU "
              f"(goal < 120 s); rows: " + ", ".join(f"{k} {v:,}" for k, v in r.rows.items())
              + f"; {folder_mb(out):.0f} MB on disk")

        big = root / "big"
        t = time.perf_counter()
        simulate(big, customers=args.advance_customers, days=args.advance_history_days, seed=args.seed)
        print(f"simulate {args.advance_customers:,} customers x {args.advance_history_days} days (set-up): "
              f"{time.perf_counter() - t:.1f} s")
        rng = np.random.default_rng(args.seed)
        who = rng.choice(args.advance_customers, args.contacts, replace=False) + 1
        contacts = pa.table({"customer_id": [f"C{i:09d}" for i in who],
                             "offer": rng.choice(["WM090", "TD1Y", "AUM_INFLOW", "INS_HEALTH"], args.contacts),
                             "channel": rng.choice(["sms", "push", "call", "rm"], args.contacts),
                             "treated": rng.random(args.contacts) < 0.9})
        t, cpu = time.perf_counter(), time.process_time()
        bank = SimulatedBank.open(big)
        opened = time.perf_counter() - t
        day = bank.advance(contacts)
        total = time.perf_counter() - t
        print(f"advance one day of {args.advance_customers:,} customers with {args.contacts:,} contacts: "
              f"{total:.2f} s wall, {time.process_time() - cpu:.2f} s CPU (goal < 5 s; open {opened:.2f} s); rows: "
              + ", ".join(f"{k} {v:,}" for k, v in day.rows.items()))
        t = time.perf_counter()
        nxt = SimulatedBank.open(big).advance(None)
        print(f"advance the next day ({nxt.date}) without contacts: {time.perf_counter() - t:.2f} s wall")
        print(f"peak memory: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6:.1f} GB")
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
