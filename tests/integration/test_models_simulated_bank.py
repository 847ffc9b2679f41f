"""The churn warning on a small simulated bank: honest labels, the scores step, and the figures vs the rule.

The bank's one extract is split into fortnightly batches (as extracts would arrive) and the insight
steps are backfilled, so lifecycle snapshots exist to read outcomes from.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from lifeloop.cli.app import app
from lifeloop.config.shelf import ModelsConfig
from lifeloop.context import Context
from lifeloop.models import labels, registry, training
from lifeloop.models.labels import matrix
from tests.integration.test_kpis_simulated_bank import split_into_month_batches


def backfilled_bank(root, customers: int, days: int, seed: int):
    ctx = Context.init(root / "ws")
    ctx.simulate(root / "extracts", customers=customers, days=days, seed=seed)
    last = ctx.ingest(root / "extracts").as_of
    cuts = sorted(last - dt.timedelta(days=14 * k) for k in range(1, (days - 30) // 14))
    split_into_month_batches(ctx, last, cuts)
    ctx.backfill([*cuts, last], steps=("features", "lifecycle"))
    return ctx, last


@pytest.fixture(scope="module")
def bank(tmp_path_factory):
    ctx, last = backfilled_bank(tmp_path_factory.mktemp("models"), customers=500, days=300, seed=11)
    yield ctx, last
    ctx.close()


def test_without_an_active_model_the_scores_step_publishes_an_empty_table_and_says_so(bank):
    ctx, last = bank
    [result] = ctx.run(last, ["scores"])
    assert result.rows == 0 and "no active model" in result.warnings[0]
    assert ctx.lake.manifest("scores", last)["models"] == {}


def test_changing_every_snapshot_dated_after_the_cut_off_gives_the_identical_model(bank, tmp_path):
    shutil.copytree(bank[0].workspace, tmp_path / "ws")
    ctx, last = Context(tmp_path / "ws"), bank[1]
    spec = ModelsConfig().spec("churn")
    cut_off = last - dt.timedelta(days=28)
    first, fields = training.fit(ctx.lake, spec, cut_off)
    assert dt.date.fromisoformat(fields["training_window"]["outcomes_until"]) <= cut_off
    for day in [d for d in ctx.lake.dates("lifecycle") if d > cut_off]:
        stages = ctx.lifecycle(day)
        churned = stages.set_column(stages.schema.get_field_index("stage"), "stage",
                                    pa.array(["churned"] * stages.num_rows))
        ctx.lake.publish("lifecycle", day, lambda s, t=churned: pq.write_table(t, s / "lifecycle.parquet"))
    for day in [d for d in ctx.lake.dates("features") if d > cut_off]:
        feats = ctx.features(day)
        aum = pc.multiply(pc.cast(feats["aum"], pa.float64()), -1.0)
        feats = feats.set_column(feats.schema.get_field_index("aum"), "aum", pc.cast(aum, feats["aum"].type))
        ctx.lake.publish("features", day, lambda s, t=feats: pq.write_table(t, s / "features.parquet"))
    again, fields_again = training.fit(ctx.lake, spec, cut_off)
    assert json.dumps(again.to_json(), sort_keys=True) == json.dumps(first.to_json(), sort_keys=True)
    assert fields_again == fields
    # and the changes are visible to a fit as of the last day (the test would prove nothing otherwise)
    assert labels.window(ctx.lake, spec.label, last).data_hash(ctx.lake) != fields["data_hash"]
    ctx.close()


def test_the_active_model_scores_every_customer_with_a_decile_and_reasons_that_add_up(bank):
    ctx, last = bank
    manifest = ctx.fit_model("churn", last)
    ctx.promote_model("churn", manifest["version"], reason="test: out-of-time validation recorded")
    [result] = ctx.run(last, ["scores"])
    scores = ctx.snapshot("scores", last)
    assert result.rows == ctx.features(last).num_rows == scores.num_rows
    assert set(scores["version"].to_pylist()) == {manifest["version"]}
    assert sorted(set(scores["decile"].to_pylist())) == list(range(1, 11))
    top = scores.filter(pc.equal(scores["decile"], 1))
    assert top["reason_1"].null_count == 0 and all("：" not in r for r in top["reasons_en"].to_pylist())
    model, _ = registry.load(ctx.lake, "churn", manifest["version"])
    X = matrix(ctx.features(last).sort_by("customer_id"), model.spec.features)
    base, contrib = model.contributions(X)
    s = scores["score"].to_numpy()
    assert np.allclose(base + contrib.sum(axis=1), np.log(s / (1 - s)), atol=1e-9)
    assert ctx.lake.manifest("scores", last)["models"]["churn"]["version"] == manifest["version"]


@pytest.mark.slow
def test_on_a_bigger_bank_the_churn_warning_beats_the_declining_rule_out_of_time(tmp_path):
    ctx, last = backfilled_bank(tmp_path, customers=2000, days=365, seed=11)
    validation = ctx.fit_model("churn", last)["validation"]
    model, rule = validation["model"], validation["rule_declining"]
    assert model["auc"]["value"] >= 0.75 and model["top_decile_lift"]["value"] >= 3
    assert model["auc"]["ci95"][0] > rule["auc"]["ci95"][1]
    ctx.close()


def test_monitoring_reports_drift_against_training_and_the_calibration_of_scores_whose_outcomes_are_known(bank):
    ctx, last = bank
    manifest = ctx.fit_model("churn", last)
    ctx.promote_model("churn", manifest["version"], reason="test: monitoring")
    early = [d for d in ctx.lake.dates("features") if d <= last - dt.timedelta(days=91)][-1]
    ctx.run(early, ["scores"])
    ctx.run(last, ["scores"])
    report = ctx.monitor_model("churn", last)
    assert report["reference"] == manifest["training_window"]["features_as_of"]
    assert {i["feature"] for i in report["inputs"]} == set(manifest["features"])
    assert all(i["psi"] >= 0 and i["reading"] in ("stable", "moderate shift", "significant shift")
               for i in report["inputs"])
    # the scores of `early` have a closed 90-day horizon: predicted vs observed over the same customers
    [cal] = [c for c in report["calibration"] if c["scored_on"] == early.isoformat()]
    assert cal["customers"] > 200 and 0 <= cal["observed_ci95"][0] <= cal["observed"] <= cal["observed_ci95"][1]
    assert all(c["scored_on"] != last.isoformat() for c in report["calibration"])   # its outcomes are not known yet
    out = CliRunner().invoke(app, ["--workspace", str(ctx.workspace), "models", "monitor", "churn",
                                   "--as-of", last.isoformat()])
    assert out.exit_code == 0, out.output
    assert "score PSI" in out.output and f"scores of {early}" in out.output
