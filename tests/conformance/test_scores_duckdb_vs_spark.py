"""DuckDB and Spark write the same scores file, byte for byte: the scorecard (reason codes in two languages), the
boosted trees (scikit-learn's and LightGBM's), over a features snapshot with missing values, decimals, booleans and
ties, and a CLV model (BG/NBD and Gamma-Gamma) over an RFM summary of synthetic transactions, whose detail file
(clv.parquet) is the same too.

Spark scores in ``mapInArrow`` batches of 97 rows (so a batch boundary falls inside every decile); DuckDB in
one batch in process. The scores are also checked against each model's own ``predict`` on the whole matrix.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lifeloop.config.shelf import CHURN_FEATURES, BoostingSpec, ClvSpec, ModelSpec
from lifeloop.context import Context
from lifeloop.models import catalogue, registry
from lifeloop.models.clv import rfm_summary
from lifeloop.models.clv.shelf import ClvShelfModel
from lifeloop.models.clv.shelf import matrix as rfm_matrix
from lifeloop.models.labels import matrix
from tests.factories import allow_days_after_batch
from tests.fixtures_bank import LATER, publish_batch, publish_tiny_bank

pytestmark = [pytest.mark.spark, pytest.mark.slow]   # ~1 min quiet: fitting, the JVM

N = 1_000
AS_OF = LATER


def features_table(n: int = N, seed: int = 3) -> pa.Table:
    """Feature rows shaped like the features step's: BIGINT counts, DECIMAL money, a BOOLEAN flag, NULLs, ties."""
    rng = np.random.default_rng(seed)
    cols: dict[str, pa.Array] = {"customer_id": pa.array([f"C{i:05d}" for i in rng.permutation(n)])}
    for name in CHURN_FEATURES:
        if name == "payroll_flag":
            values = [bool(v) if v < 2 else None for v in rng.integers(0, 3, n)]
            cols[name] = pa.array(values, pa.bool_())
        elif name in ("aum", "monetary_90d", "net_flow_30d"):
            values = [None if rng.random() < 0.05 else Decimal(f"{v:.2f}") for v in rng.lognormal(8, 2, n)]
            cols[name] = pa.array(values, pa.decimal128(18, 2))
        elif name == "aum_change_pct_90d":
            cols[name] = pa.array([None if rng.random() < 0.1 else float(v) for v in rng.normal(0, 0.3, n)])
        else:   # small integers: many ties
            cols[name] = pa.array([None if rng.random() < 0.05 else int(v) for v in rng.integers(0, 40, n)],
                                  pa.int64())
    return pa.table(cols)


def transactions(n: int = N, seed: int = 4) -> list[tuple]:
    """Customer-initiated debits of ``n`` customers over two years (DECIMAL amounts, same-day repeats, ties)."""
    rng = np.random.default_rng(seed)
    rows, k = [], 0
    for i in range(n):
        first = AS_OF - dt.timedelta(days=int(rng.integers(1, 730)))
        rate = rng.gamma(0.8, 1 / 20)        # purchases a day while active
        days = sorted({int(v) for v in rng.uniform(0, (AS_OF - first).days, rng.poisson(rate * (AS_OF - first).days))})
        for day in [0, *days[: int(rng.integers(0, len(days) + 1))]]:
            k += 1
            amount = Decimal(f"{rng.lognormal(4, 1):.2f}") if rng.random() > 0.2 else Decimal("50.00")
            rows.append((f"X{k:07d}", f"AC{i:05d}", f"C{i:05d}", first + dt.timedelta(days=day), amount, "debit",
                         "purchase", "pos", "merchant", True, None))
    return rows


def label(X: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(5)
    recency = np.nan_to_num(X[:, CHURN_FEATURES.index("days_since_last_txn")], nan=40)
    return (rng.random(len(X)) < 1 / (1 + np.exp(3 - 0.08 * recency))).astype(np.int8)


@pytest.fixture(scope="module")
def workspaces(tmp_path_factory):
    """Two workspaces with the same features snapshot and the same promoted churn models (scorecard, scikit-learn's
    trees, LightGBM) and CLV model."""
    features = features_table()
    X = matrix(features.sort_by("customer_id"), CHURN_FEATURES)
    y = label(X)
    specs = [ModelSpec(name="churn", estimator="scorecard"),
             ModelSpec(name="churn_trees", estimator="hgb", boosting=BoostingSpec(max_iter=20, threads=1)),
             ModelSpec(name="churn_lgbm", estimator="lightgbm", boosting=BoostingSpec(max_iter=20, threads=1))]
    models = [catalogue.for_spec(s)(s).fit(X, y) for s in specs]
    txns = transactions()
    clv_spec = ModelSpec(name="clv", kind="clv", clv=ClvSpec(horizon_days=91, margin=0.004))
    rows = {"customer_id": [r[2] for r in txns], "txn_date": [r[3] for r in txns],
            "amount": [float(r[4]) for r in txns]}
    rfm = rfm_summary(rows, "customer_id", "txn_date", "amount", observation_end=AS_OF)
    models.append(ClvShelfModel(clv_spec).fit_summary(rfm, {"calibration_end": AS_OF.isoformat()}))
    out = {}
    for engine in ("duckdb", "spark"):
        ctx = allow_days_after_batch(Context.init(tmp_path_factory.mktemp(engine) / "bank"), 400)
        publish_tiny_bank(ctx.lake)
        publish_batch(ctx.lake, AS_OF - dt.timedelta(days=1), {"transactions": txns})
        ctx.lake.publish("features", AS_OF, lambda staging: pq.write_table(features, staging / "features.parquet"))
        for model in models:
            version = registry.save(ctx.lake, model, {"as_of": AS_OF.isoformat()}, actor="test")
            registry.promote(ctx.lake, model.spec.name, version, "test", "conformance")
        out[engine] = ctx
    yield out, models, X
    for ctx in out.values():
        ctx.close()


def scores_file(ctx) -> bytes:
    return (ctx.lake.snapshot_dir("scores", AS_OF) / "scores.parquet").read_bytes()


def test_duckdb_and_spark_write_the_same_scores_file(workspaces, spark):
    ctxs, models, X = workspaces
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", "97")
    try:
        for engine, ctx in ctxs.items():
            [result] = ctx.run(AS_OF, steps=["scores"], engine=engine)
            assert result.rows == 4 * N + 3    # CLV: N customers and the tiny bank's three with debits
    finally:
        spark.conf.unset("spark.sql.execution.arrow.maxRecordsPerBatch")
    assert scores_file(ctxs["duckdb"]) == scores_file(ctxs["spark"])
    detail = [(c.lake.snapshot_dir("scores", AS_OF) / "clv.parquet").read_bytes() for c in ctxs.values()]
    assert detail[0] == detail[1]
    table = pq.read_table(ctxs["spark"].lake.snapshot_dir("scores", AS_OF) / "scores.parquet")
    *models, clv = models
    summary = pq.read_table(ctxs["spark"].lake.snapshot_dir("scores", AS_OF) / "clv.parquet")
    rows = table.filter(pa.compute.equal(table["model"], "clv"))
    assert rows["customer_id"].to_pylist() == summary["customer_id"].to_pylist() and rows.num_rows == N + 3
    np.testing.assert_allclose(rows["score"].to_numpy(), clv.predict(rfm_matrix(summary)), rtol=1e-12)
    assert rows["score"].to_pylist() == summary["clv"].to_pylist()
    for model in models:
        rows = table.filter(pa.compute.equal(table["model"], model.spec.name))
        assert rows["customer_id"].to_pylist() == sorted(rows["customer_id"].to_pylist())
        np.testing.assert_allclose(rows["score"].to_numpy(), model.predict(X), rtol=1e-12)
        assert np.bincount(rows["decile"].to_numpy())[1:].tolist() == [N // 10] * 10
    churn = table.filter(pa.compute.equal(table["model"], "churn")).to_pylist()
    assert all(r["reason_1"] and r["reasons_zh"] and r["reasons_en"] for r in churn)
