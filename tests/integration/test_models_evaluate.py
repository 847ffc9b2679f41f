"""``lifeloop models evaluate NAME``: a version measured on the newest closed outcome window (AUC and PR-AUC with
intervals, top-decile lift, a lift table), labelled in sample when that window is the one it was trained on.

A hand-made lake: features and lifecycle snapshots on two dates 91 days apart, outcomes 45 days after each."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score
from typer.testing import CliRunner

from lifeloop.cli.app import app
from lifeloop.config.shelf import CHURN_FEATURES, BoostingSpec, LabelSpec, ModelSpec
from lifeloop.context import Context
from lifeloop.errors import DataError, NotFoundError
from lifeloop.models import catalogue, labels, registry
from lifeloop.models.evaluation import evaluate
from tests.conformance.test_scores_duckdb_vs_spark import features_table

T1, T2 = dt.date(2024, 3, 31), dt.date(2024, 6, 30)
N = 600


def publish(ctx, area: str, day: dt.date, table: pa.Table) -> None:
    ctx.lake.publish(area, day, lambda staging: pq.write_table(table, staging / f"{area}.parquet"))


def outcomes(features: pa.Table, seed: int) -> tuple[pa.Table, pa.Table]:
    """Stages at T (a tenth already dormant, a fifth declining) and 45 days later (recent inactivity -> dormant)."""
    rng = np.random.default_rng(seed)
    ids = features["customer_id"].to_pylist()
    X = labels.matrix(features, CHURN_FEATURES)
    start = rng.choice(["active", "declining", "dormant"], len(ids), p=[0.7, 0.2, 0.1])
    days = np.nan_to_num(X[:, CHURN_FEATURES.index("days_since_last_txn")], nan=20)
    gone = rng.random(len(ids)) < 1 / (1 + np.exp(4 - 0.15 * days))
    later = np.where(gone, "dormant", start)
    return (pa.table({"customer_id": ids, "stage": start.tolist()}),
            pa.table({"customer_id": ids, "stage": later.tolist()}))


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    context = Context.init(tmp_path_factory.mktemp("eval") / "bank")
    for day, seed in ((T1, 1), (T2, 2)):
        feats = features_table(N, seed)
        at, later = outcomes(feats, seed)
        publish(context, "features", day, feats)
        publish(context, "lifecycle", day, at)
        publish(context, "lifecycle", day + dt.timedelta(days=45), later)
    spec = ModelSpec(name="churn", estimator="hgb", boosting=BoostingSpec(max_iter=15, threads=1))
    w = labels.window(context.lake, spec.label, T1 + dt.timedelta(days=90))
    _, X, y, _ = labels.examples(w, spec.label, spec.features)
    model = catalogue.for_spec(spec)(spec).fit(X, y)
    registry.save(context.lake, model, {"as_of": "2024-06-29", "label": spec.label.describe(),
                                        "training_window": w.describe()}, actor="test")
    yield context
    context.close()


def test_out_of_time_figures_match_sklearn_and_a_hand_count_of_the_lift_table(ctx):
    r = evaluate(ctx.lake, "churn", None, T2 + dt.timedelta(days=90))
    assert r["version"] == "v1" and r["window"]["features_as_of"] == T2.isoformat() and r["in_sample"] is False
    model, _ = registry.load(ctx.lake, "churn", "v1")
    w = labels.window(ctx.lake, LabelSpec(), T2 + dt.timedelta(days=90))
    _, X, y, _ = labels.examples(w, LabelSpec(), CHURN_FEATURES)
    score = model.predict(X)
    at_start = pq.read_table(ctx.lake.snapshot_file("lifecycle", T2))["stage"].to_pylist()
    assert r["metrics"]["customers"] == len(y) == N - at_start.count("dormant") < N   # the dormant cannot become so
    assert r["metrics"]["auc"]["value"] == round(roc_auc_score(y, score), 4)
    assert r["metrics"]["pr_auc"]["value"] == round(average_precision_score(y, score), 4)
    lo, hi = r["metrics"]["auc"]["ci95"]
    assert lo < r["metrics"]["auc"]["value"] < hi
    top = np.argsort(-score, kind="stable")[: len(np.array_split(np.arange(len(y)), 10)[0])]
    assert r["lift"][0]["positives"] == int(y[top].sum())
    assert r["lift"][0]["lift"] == pytest.approx(y[top].mean() / y.mean())
    assert sum(row["customers"] for row in r["lift"]) == len(y) and r["lift"][-1]["cumulative_capture"] == 1.0
    assert r["metrics"]["auc"]["value"] > 0.6 > r["rule_declining"]["auc"]["value"]   # the rule is noise here


def test_on_the_window_it_was_trained_on_the_figures_are_labelled_in_sample(ctx):
    r = evaluate(ctx.lake, "churn", "v1", T1 + dt.timedelta(days=90))
    assert r["in_sample"] is True
    with pytest.raises(DataError, match="nothing to train on"):
        evaluate(ctx.lake, "churn", "v1", T1 + dt.timedelta(days=30))
    with pytest.raises(NotFoundError, match="no model churn version v9"):
        evaluate(ctx.lake, "churn", "v9", None)


def test_the_command_prints_the_metrics_and_the_lift_table(ctx):
    out = CliRunner().invoke(app, ["--workspace", str(ctx.workspace), "models", "evaluate", "churn", "--as-of",
                                   "2024-09-28"], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    assert "features of 2024-06-30" in out.output and "in sample" not in out.output
    assert "AUC" in out.output and "PR-AUC" in out.output and "cumulative capture" in out.output


def test_the_report_draws_the_active_models_lift_chart(ctx, tmp_path):
    registry.promote(ctx.lake, "churn", "v1", "test", "for the report")
    out = CliRunner().invoke(app, ["--workspace", str(ctx.workspace), "report", "--out", str(tmp_path / "r.html"),
                                   "--as-of", "2024-09-28"], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    html = (tmp_path / "r.html").read_text(encoding="utf-8")
    body = html[html.index('<section id="models">'):]
    assert "churn v1" in body and body.count("<rect") == 10 and "features of 2024-06-30" in body
    expected = evaluate(ctx.lake, "churn", "v1", dt.date(2024, 9, 28))
    assert f"{expected['metrics']['auc']['value']:.3f} [" in body
