"""Benchmark: the insight steps (lifecycle + segments + transitions) against the feature step, same run.

    .venv/bin/python bench/insight.py                          # 1M customers, 50M transactions
    .venv/bin/python bench/insight.py --customers 100000 --transactions 5000000

Generates the synthetic bank of bench/features.py (its generator is imported, so the data is the same)
into a workspace under bench/out_insight/, split into two monthly batches (facts up to D0 = D - 30 days,
then the rest), so that the lifecycle has history and transitions have two snapshots. Then, in one run:

  1. features, lifecycle and segments as of D0 (history; not timed against anything);
  2. the feature step as of D                                      -> F
  3. lifecycle as of D, segments as of D, transitions D0 -> D      -> I = their sum; goal I <= 1.5 x F
  4. for context (not in the goal): the clusters step (fit on first use, then assign), the holdings
     analysis, the whole insight summary and one customer profile.

Prints a Markdown table; figures go to docs/performance.md by hand.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from lifeloop.context import Context  # noqa: E402
from lifeloop.data.schema import TABLES  # noqa: E402
from lifeloop.insight import cluster_registry, holdings  # noqa: E402
from lifeloop.insight.profile import customer_profile  # noqa: E402
from lifeloop.insight.summary import build  # noqa: E402
from lifeloop.insight.transitions import between  # noqa: E402
from lifeloop.pipeline import STEPS, run_step  # noqa: E402


def _features_bench():
    """bench/features.py as a module (its generator and as-of date)."""
    spec = importlib.util.spec_from_file_location("bench_features", ROOT / "bench" / "features.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def split(con, source: Path, staging: Path, cut: dt.date, after: bool) -> None:
    """Write the tables of ``source`` to ``staging``, facts dated up to ``cut`` (or after it if ``after``)."""
    import duckdb

    for path in sorted(source.glob("*.parquet")):
        rel = con.read_parquet(str(path))
        column = TABLES[path.stem].date_column
        if column:
            test = duckdb.ColumnExpression(column) <= duckdb.ConstantExpression(cut)
            rel = rel.filter(~test if after else test)
        rel.write_parquet(str(staging / path.name), compression="zstd")


def timed(fn):
    started = time.perf_counter()
    value = fn()
    return time.perf_counter() - started, value


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--transactions", type=int, default=50_000_000)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out_insight")
    ap.add_argument("--regenerate", action="store_true", help="rebuild the data even if it exists")
    ap.add_argument("--no-extras", action="store_true", help="skip clusters, holdings, summary and profile")
    args = ap.parse_args(argv)

    import duckdb

    fb = _features_bench()
    d = fb.D
    d0 = d - dt.timedelta(days=30)
    ws = args.out / "workspace"
    marker = args.out / "data.json"
    wanted = {"customers": args.customers, "transactions": args.transactions, "as_of": d.isoformat(),
              "history": d0.isoformat(), "v": 1}
    if args.regenerate or not marker.exists() or json.loads(marker.read_text())["params"] != wanted:
        shutil.rmtree(args.out, ignore_errors=True)
        args.out.mkdir(parents=True)
        ctx = Context.init(ws)
        started = time.perf_counter()
        raw = args.out / "generated"
        raw.mkdir()
        con = duckdb.connect()
        rows = fb.generate(con, raw, args.customers, args.transactions)
        ctx.lake.publish("bank", d0, lambda staging: split(con, raw, staging, d0, after=False))
        ctx.lake.publish("bank", d, lambda staging: {"rows": rows, **(split(con, raw, staging, d0, after=True) or {})})
        con.close()
        shutil.rmtree(raw)
        gen = time.perf_counter() - started
        marker.write_text(json.dumps({"params": wanted, "generate_seconds": round(gen, 1)}))
        print(f"generated {args.customers:,} customers / {args.transactions:,} transactions in {gen:.1f}s "
              f"(two batches: {d0}, {d})")

    rows: list[tuple[str, float, str]] = []
    with Context(ws) as ctx:
        engine = ctx.engine("duckdb")
        history, _ = timed(lambda: ctx.run(d0, ["features", "lifecycle", "segments"], "duckdb"))
        f, _ = timed(lambda: ctx.run(d, ["features"], "duckdb"))
        lc, _ = timed(lambda: ctx.run(d, ["lifecycle"], "duckdb"))
        sg, _ = timed(lambda: ctx.run(d, ["segments"], "duckdb"))
        tr, flows = timed(lambda: between(engine, ctx.lake, d0, d))
        insight = lc + sg + tr
        rows += [("(F) feature step as of D", f, ""),
                 ("lifecycle step as of D", lc, f"{lc / f:.2f} x F"),
                 ("segments step as of D", sg, f"{sg / f:.2f} x F"),
                 (f"transitions {d0} -> {d} (flows, moving on)", tr, f"{tr / f:.2f} x F"),
                 ("**(I) lifecycle + segments + transitions**", insight, f"**{insight / f:.2f} x F** (goal <= 1.5)")]
        extras: dict[str, float] = {}
        if not args.no_extras:
            ports = ctx.ports()

            def clusters_step():
                return run_step(STEPS["clusters"], ports, d, engine)   # the one runner, as `lifeloop run` does

            # time a first fit even when the workspace is reused
            cluster_registry.registry_path(ctx.lake).unlink(missing_ok=True)
            extras["clusters step, first run (fit k=3..8 + assign)"], res = timed(clusters_step)
            extras["clusters step, daily (assign only)"], _ = timed(clusters_step)
            extras["holdings analysis"], _ = timed(lambda: holdings.build(ctx, d))
            extras["insight summary (stages, tiers, clusters, holdings)"], _ = timed(lambda: build(ctx, d))
            some = ctx.snapshot("lifecycle", d)["customer_id"][12345 % ctx.snapshot("lifecycle", d).num_rows].as_py()
            extras["one customer profile"], _ = timed(lambda: customer_profile(ctx, some))
            for name, secs in extras.items():
                rows.append((name, secs, f"{secs / f:.2f} x F"))
            fit_note = (res.summary.get("notes") or [""])[0]
        customers = ctx.snapshot("lifecycle", d).num_rows

    print()
    print(f"{customers:,} customers, {args.transactions:,} transactions; {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, duckdb {duckdb.__version__}; history run as of {d0}: {history:.1f}s")
    print()
    print("| run (DuckDB) | seconds | ratio |")
    print("|---|---:|---:|")
    for name, secs, ratio in rows:
        print(f"| {name} | {secs:.2f} | {ratio} |")
    print()
    print(f"transitions: {len(flows['flows'])} flows, {len(flows['moving_on'])} stages with moving-on shares")
    if not args.no_extras:
        print(f"clusters: {fit_note}")
    results = {"customers": customers, "transactions": args.transactions, "features": f, "lifecycle": lc,
               "segments": sg, "transitions": tr, "insight": insight, "ratio": insight / f, "extras": extras,
               "history_seconds": history, "cores": os.cpu_count()}
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    return 0 if insight <= 1.5 * f else 1


if __name__ == "__main__":
    raise SystemExit(main())
