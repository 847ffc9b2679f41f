"""Benchmark: the audiences and plan steps for 1M customers and 20 strategies (goal: under 30 s).

    .venv/bin/python bench/plan.py                                  # 1M customers, 20M transactions
    .venv/bin/python bench/plan.py --customers 100000 --transactions 2000000

Builds a workspace under bench/out_plan/ with bench/features.py's synthetic bank (plus a consent
table: marketing consent on each channel for ~80% of customers), runs features, lifecycle and
segments once (not timed here; bench/features.py times features), writes a 20-strategy map (the
default template's 8 with this bank's product codes, and 12 cross-sell strategies per value tier),
then times the two steps, twice each, each step through the one runner (``pipeline.run_step``: gather
the declared inputs, compute, publish with its manifest), and prints a Markdown table. The feature step,
timed in the same run (F), is the baseline the ratios are given against (a shared machine moves absolute
times by 2-3x). Figures go to docs/performance.md.

``--evidence`` publishes a synthetic review evidence snapshot (lake/evidence as of D) (every strategy x wave x channel x
value tier, 1,000 treated vs 1,000 control, uplift differing by tier), so every candidate is valued
per segment: the plan's worst case for learned values (docs/strategies.md, "Value-based arbitration").
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from features import D, prepare_bank, q  # noqa: E402  (bench/features.py: the same synthetic bank)

from lifeloop.context import Context  # noqa: E402
from lifeloop.pipeline import STEPS, run_step  # noqa: E402
from lifeloop.strategy.learning import evidence_schema  # noqa: E402
from lifeloop.workspace import template_root  # noqa: E402

PRODUCTS = {"WM090": "P04", "TD1Y": "P02", "WM180": "P04", "WM030": "P04", "CC_STD": "P07"}


def consent(db, folder: Path, customers: int) -> None:
    """Marketing consent per customer and channel (~80% granted), one row each."""
    db.execute(f"""COPY (SELECT 'C' || lpad(i::VARCHAR, 9, '0') AS customer_id, 'marketing' AS purpose, ch AS channel,
        hash(i, ch) % 10 < 8 AS granted, NULL::DATE AS updated_on
        FROM range({customers}) r(i), (VALUES ('sms'), ('push'), ('call'), ('rm'), ('email')) c(ch))
        TO {q(str(folder / 'consent.parquet'))} (FORMAT parquet, COMPRESSION zstd)""")


def strategy_map() -> dict:
    """The template's map with this bank's products, plus 12 per-tier cross-sell strategies = 20."""
    doc = yaml.safe_load((template_root("bank") / "config" / "strategies.yaml").read_text(encoding="utf-8"))
    for s in doc["strategies"]:
        if s["offer"].get("product_id"):
            s["offer"]["product_id"] = PRODUCTS[s["offer"]["product_id"]]
    base = doc["strategies"][0]
    extra = {"fund_cross_sell": ("fund_count = 0 AND frequency_90d > 0", "P05", ["rm", "sms"]),
             "insurance_cross_sell": ("insurance_count = 0 AND age BETWEEN 30 AND 55", "P06", ["call", "sms"]),
             "digital_adoption": ("coalesce(app_logins_90d, 0) = 0 AND frequency_90d > 0", "P01", ["sms", "push"])}
    for name, (rule, product, channels) in extra.items():
        for k, tier in enumerate(("mass", "potential", "wealth", "private")):
            sid = f"{name}_{tier}"
            doc["strategies"].append({
                "id": sid, "name": {"zh": sid, "en": sid}, "owner": "bench",
                "objective": {"kind": "fee_income", "metric": "fee", "window_days": 30},
                "scenario": {"kind": "product", "segments": [tier]}, "audience": f"tier = '{tier}' AND {rule}",
                "offer": {"product_id": product}, "channels": channels,
                "scripts": {ch: base["scripts"]["sms"] for ch in channels},
                "waves": [{"id": "w1", "day": 0}], "holdout": 0.1, "priority": 20 + 5 * k,
                "expected": {"uplift": 0.01 * (k + 1), "value": 100 * (k + 1)}, "start": "2024-01-01",
                "reentry_days": 90})
    assert len(doc["strategies"]) == 20
    return doc


def synthetic_evidence(doc: dict):
    """Evidence for every strategy x wave x channel x tier of the map: 1,000 vs 1,000, uplift by tier."""
    import pyarrow as pa

    rows = []
    for s in doc["strategies"]:
        for w in s["waves"]:
            for ch in ([w["channel"]] if w.get("channel") else s["channels"]):
                for k, tier in enumerate(("mass", "potential", "wealth", "private")):
                    pt, pc_ = 0.05 + 0.01 * k, 0.04
                    se = ((pt * (1 - pt) + pc_ * (1 - pc_)) / 1000) ** 0.5
                    rows.append((s["id"], w["id"], ch, tier, 1000, 1000, pt, pc_, pt - pc_, se))
    names = evidence_schema().names
    return pa.Table.from_pylist([dict(zip(names, r, strict=False)) for r in rows], schema=evidence_schema())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--transactions", type=int, default=20_000_000)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out_plan")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--regenerate", action="store_true")
    ap.add_argument("--evidence", action="store_true", help="value every candidate by a synthetic per-tier evidence")
    args = ap.parse_args(argv)

    import duckdb
    import pyarrow.parquet as pq

    ws = prepare_bank(args.out, args.customers, args.transactions, regenerate=args.regenerate,
                      extra=lambda con, staging: consent(con, staging, args.customers),
                      after=lambda ctx: ctx.run(D, steps=["features", "lifecycle", "segments"]))
    doc = strategy_map()
    (ws / "config" / "strategies.yaml").write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False),
                                                  encoding="utf-8")
    with Context(ws) as ctx:
        # the plan reads the newest evidence snapshot on or before D: publish one, or make sure there is none
        shutil.rmtree(ctx.lake.root / "evidence", ignore_errors=True)
        if args.evidence:
            evidence = synthetic_evidence(doc)      # what the review's evidence step would publish
            ctx.lake.publish("evidence", D, lambda staging: pq.write_table(evidence, staging / "evidence.parquet"))

    names = ("features", "audiences", "plan")
    times: dict[str, list[float]] = {k: [] for k in names}
    cpu: dict[str, list[float]] = {k: [] for k in names}
    summary = {}
    for _ in range(args.repeat):
        with Context(ws) as ctx:
            ports, engine = ctx.ports(), ctx.engine("duckdb")
            for name in names:
                started, cpu0 = time.perf_counter(), time.process_time()
                result = run_step(STEPS[name], ports, D, engine)
                times[name].append(time.perf_counter() - started)
                cpu[name].append(time.process_time() - cpu0)
            summary = result.summary
    aud_rows = pq.read_metadata(Context(ws).lake.snapshot_dir("audiences", D) / "audiences.parquet").num_rows
    best = {k: min(v) for k, v in times.items()}
    print(f"\n{args.customers:,} customers, {args.transactions:,} transactions, 20 strategies; "
          f"{aud_rows:,} audience rows; {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"duckdb {duckdb.__version__}\n")
    best_cpu = {k: min(v) for k, v in cpu.items()}
    # CPU seconds of this process (DuckDB's threads included): a machine shared with other jobs
    # inflates wall time, so both are reported, with the load average at the end
    f = best["features"]
    print(f"| step | wall seconds (best of {args.repeat}) | CPU seconds | ratio to (F) |")
    print("|---|---:|---:|---:|")
    for k, v in best.items():
        print(f"| {'(F) ' if k == 'features' else ''}{k} | {v:.2f} | {best_cpu[k]:.2f} | {v / f:.2f} |")
    both, both_cpu = best["audiences"] + best["plan"], best_cpu["audiences"] + best_cpu["plan"]
    print(f"| audiences + plan | {both:.2f} | {both_cpu:.2f} | {both / f:.2f} |")
    print(f"\nruns: {json.dumps({k: [round(x, 2) for x in v] for k, v in times.items()})}; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"plan summary: {json.dumps(summary, ensure_ascii=False)}")
    (args.out / "results.json").write_text(json.dumps({"times": times, "cpu": cpu, "audience_rows": aud_rows,
                                                       "summary": summary, "customers": args.customers,
                                                       "transactions": args.transactions,
                                                       "as_of": D.isoformat()}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
