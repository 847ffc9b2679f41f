"""Benchmark: fitting the churn warning on N rows and scoring N customers, next to the feature step.

    .venv/bin/python bench/models.py                                    # 1M customers, 50M transactions
    .venv/bin/python bench/models.py --customers 200000 --transactions 10000000 --threads 1

Reuses bench/features.py's synthetic bank (generated once under bench/out/ and kept while the sizes
match), then times in one run:

  (a) the feature step on DuckDB (as bench/features.py measures it);
  (b) fitting each churn estimator (the scorecard and the gradient-boosted trees, with their 5-fold
      calibration) on the feature rows of every customer. The synthetic bank has no lifecycle history,
      so the label is synthetic — a noisy function of recency and activity — which times the estimator,
      not the quality of a churn model (docs/models.md has those figures);
  (c) the daily ``scores`` step with each fitted model promoted: read the features, score, deciles, top-3
      reason codes in two languages, write and publish.

Prints a Markdown table; figures go to docs/performance.md by hand.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from features import D, prepare_bank  # noqa: E402

from lifeloop.config.shelf import CHURN_FEATURES, BoostingSpec, ModelSpec  # noqa: E402
from lifeloop.context import Context  # noqa: E402
from lifeloop.models import catalogue, registry  # noqa: E402
from lifeloop.models.labels import matrix  # noqa: E402


def synthetic_label(X, seed: int = 7):
    """A noisy label from recency and activity (columns of CHURN_FEATURES), about 10% positive."""
    import numpy as np

    names = list(CHURN_FEATURES)
    recency = np.nan_to_num(X[:, names.index("days_since_last_txn")], nan=365.0)
    activity = np.nan_to_num(X[:, names.index("frequency_90d")], nan=0.0)
    logit = -2.6 + 0.01 * np.minimum(recency, 365) - 0.05 * np.minimum(activity, 60)
    rng = np.random.default_rng(seed)
    return (rng.random(len(X)) < 1 / (1 + np.exp(-logit))).astype(np.int8)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--transactions", type=int, default=50_000_000)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    ap.add_argument("--threads", type=int, default=None, help="OpenMP threads for the boosted trees")
    ap.add_argument("--estimators", nargs="+", default=["scorecard", "hgb"], choices=["scorecard", "hgb"],
                    help="which churn estimators to fit and score (the scorecard's fit is the slow one)")
    ap.add_argument("--spark", action="store_true", help="also time the scores step on Spark (mapInArrow)")
    ap.add_argument("--regenerate", action="store_true", help="rebuild the data even if it exists")
    args = ap.parse_args(argv)

    load0 = os.getloadavg()[0]
    ws = prepare_bank(args.out, args.customers, args.transactions, regenerate=args.regenerate)
    rows: list[tuple[str, float]] = []
    with Context(ws) as ctx:
        started = time.perf_counter()
        ctx.run(D, steps=["features"], engine="duckdb")
        rows.append(("(a) feature step, DuckDB", time.perf_counter() - started))
        feats = ctx.features(D).sort_by("customer_id")
        X = matrix(feats, CHURN_FEATURES)
        y = synthetic_label(X)
        fitted = {}
        for estimator in args.estimators:
            spec = ModelSpec(name=f"churn_{estimator}", estimator=estimator,
                             boosting=BoostingSpec(threads=args.threads))
            started = time.perf_counter()
            model = catalogue.for_spec(spec)(spec).fit(X, y)
            rows.append((f"(b) fit {estimator} on {len(y):,} rows ({y.mean():.1%} positive), with 5-fold "
                         "calibration", time.perf_counter() - started))
            version = registry.save(ctx.lake, model, {"as_of": D.isoformat(), "bench": True}, actor="bench")
            fitted[spec.name] = version
        for name, version in fitted.items():
            for other in registry.active(ctx.lake):
                registry.retire(ctx.lake, other, registry.champion(ctx.lake, other), "bench", "next benchmark")
            registry.promote(ctx.lake, name, version, "bench", "benchmark")
            started = time.perf_counter()
            [result] = ctx.run(D, steps=["scores"])
            rows.append((f"(c) scores step, {name.split('_', 1)[1]}: {result.rows:,} customers scored with reasons",
                         time.perf_counter() - started))
            if args.spark:
                started = time.perf_counter()
                ctx.run(D, steps=["scores"], engine="spark")
                rows.append((f"(c) scores step on Spark (mapInArrow, {ctx.config.spark.master}), "
                             f"{name.split('_', 1)[1]}", time.perf_counter() - started))
    print()
    print(f"load average at the start {load0:.1f}, at the end {os.getloadavg()[0]:.1f}")
    print(f"{args.customers:,} customers, {args.transactions:,} transactions, {len(CHURN_FEATURES)} model features; "
          f"{os.cpu_count()} cores, Python {platform.python_version()}, load average {os.getloadavg()[0]:.1f}")
    print()
    print("| run | seconds |")
    print("|---|---|")
    for label, seconds in rows:
        print(f"| {label} | {seconds:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
