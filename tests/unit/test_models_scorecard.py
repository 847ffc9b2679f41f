"""The churn scorecard, its labels, metrics and registry on hand-made data (no simulated bank)."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest

from lifeloop.config.shelf import LabelSpec, ModelSpec
from lifeloop.errors import DataError
from lifeloop.models import labels, metrics, registry
from lifeloop.models.churn import ChurnScorecard, bin_label, cut, quantile_edges
from lifeloop.models.scores import deciles
from lifeloop.store.lake import Lake

SPEC = ModelSpec(name="churn", features=("a", "b"), bins=4, seed=3)


def toy(n: int = 600, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = np.column_stack([rng.normal(size=n), rng.integers(0, 5, n).astype(float)])
    X[rng.random(n) < 0.1, 1] = np.nan
    y = (rng.random(n) < 1 / (1 + np.exp(-(2 * X[:, 0] - 1.5)))).astype(int)
    return X, y


def test_values_fall_in_right_open_bins_and_a_missing_value_has_a_bin_of_its_own():
    edges = [1.0, 3.0]
    assert cut(np.array([0.5, 1.0, 2.9, 3.0, 7.0, np.nan]), edges).tolist() == [0, 1, 1, 2, 2, 3]
    assert [bin_label(edges, k) for k in range(4)] == ["< 1", "1 to < 3", ">= 3", "missing"]
    assert quantile_edges(np.array([1.0, 1, 1, 2, 2, 3, 3, 4, np.nan]), 4) == [2.0, 3.0]


def test_reason_contributions_add_up_to_the_scores_log_odds():
    X, y = toy()
    model = ChurnScorecard(SPEC).fit(X, y)
    base, contrib = model.contributions(X)
    p = model.predict(X)
    assert np.allclose(base + contrib.sum(axis=1), np.log(p / (1 - p)), atol=1e-9)
    # and by hand from the weights: intercept plus each feature's bin weight
    row = X[7]
    by_hand = model.intercept + sum(model.weights[j][int(cut(row[j:j + 1], model.edges[j])[0])] for j in range(2))
    assert np.isclose(by_hand, base + contrib[7].sum())
    # contributions are centred: the average training customer gets zero from each feature
    assert np.allclose(contrib.mean(axis=0), 0, atol=1e-9)


def test_the_scorecard_ranks_the_signal_and_its_probabilities_are_calibrated_on_average():
    X, y = toy()
    p = ChurnScorecard(SPEC).fit(X, y).predict(X)
    assert metrics.auc(y, p) > 0.75
    assert abs(p.mean() - y.mean()) < 0.02


def test_auc_pr_auc_and_top_decile_lift_match_hand_computed_values():
    y = np.array([1, 0, 1, 0, 0, 0, 0, 0, 0, 0])
    s = np.array([0.9, 0.8, 0.7, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.05])
    # positives outrank 8 + 7 of the 16 (positive, negative) pairs
    assert metrics.auc(y, s) == pytest.approx(15 / 16)
    assert metrics.pr_auc(y, s) == pytest.approx((1 / 1 + 2 / 3) / 2)
    assert metrics.top_decile_lift(y, s) == pytest.approx(1 / 0.2)
    assert deciles(np.array([0.1, 0.9, 0.5, 0.7])).tolist() == [8, 1, 6, 3]  # ranks 3,0,2,1 of 4 -> rank*10//4 + 1


def test_auc_and_pr_auc_equal_scikit_learns_with_ties_and_on_bootstrap_weights():
    """Ours are one sort (and, in the bootstrap, the draw's counts as weights); scikit-learn's are the reference:
    scores with many ties (a 0/1 rule, a few levels) and without, and a resample against its weights."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    rng = np.random.default_rng(11)
    checked = 0
    for t in range(120):
        n = int(rng.integers(5, 400))
        y = rng.integers(0, 2, n)
        s = rng.integers(0, 1 + t % 6, n).astype(float) if t % 2 else rng.random(n)
        if y.min() == y.max():
            continue
        assert metrics.auc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
        assert metrics.pr_auc(y, s) == pytest.approx(average_precision_score(y, s), abs=1e-12)
        i = rng.integers(0, n, n)
        if 0 < y[i].sum() < n:
            counts = metrics._counts(y, np.bincount(i, minlength=n), *metrics._ranked(s))
            assert metrics._auc(*counts) == pytest.approx(roc_auc_score(y[i], s[i]), abs=1e-12)
            assert metrics._average_precision(*counts) == pytest.approx(average_precision_score(y[i], s[i]),
                                                                         abs=1e-12)
            checked += 1
    assert checked > 80


def test_the_bootstrap_intervals_are_those_of_resampling_and_scoring_each_sample():
    """evaluate() against the plain bootstrap (resample, then scikit-learn on the sample), same seed and draws."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    rng = np.random.default_rng(5)
    y = (rng.random(2000) < 0.05).astype(int)
    s = rng.random(2000) + 0.3 * y
    got = metrics.evaluate(y, s, reps=60, seed=3)
    draws = np.random.default_rng(3)
    aucs, aps = [], []
    for _ in range(60):
        i = draws.integers(0, len(y), len(y))
        if 0 < y[i].sum() < len(i):
            aucs.append(roc_auc_score(y[i], s[i]))
            aps.append(average_precision_score(y[i], s[i]))
    assert got["auc"]["ci95"] == [round(float(v), 4) for v in np.percentile(aucs, [2.5, 97.5])]
    assert got["pr_auc"]["ci95"] == [round(float(v), 4) for v in np.percentile(aps, [2.5, 97.5])]
    assert got["auc"]["value"] == round(roc_auc_score(y, s), 4)


def test_labels_mark_customers_who_become_dormant_or_churned_and_skip_those_already_there():
    at_t = pa.table({"customer_id": ["c1", "c2", "c3", "c4", "c5"],
                     "stage": ["mature", "declining", "dormant", "prospect", "growing"]})
    later = [pa.table({"customer_id": ["c1", "c2", "c5"], "stage": ["mature", "dormant", "growing"]}),
             pa.table({"customer_id": ["c1", "c2", "c5"], "stage": ["churned", "won_back", "growing"]})]
    out = labels.outcomes(at_t, later, LabelSpec())
    assert dict(zip(out["customer_id"].to_pylist(), out["label"].to_pylist(), strict=True)) == {
        "c1": True, "c2": True, "c5": False}


def test_a_saved_model_scores_identically_after_loading_and_another_library_version_is_refused(tmp_path):
    lake = Lake(tmp_path / "lake")
    X, y = toy()
    model = ChurnScorecard(SPEC).fit(X, y)
    version = registry.save(lake, model, {"as_of": "2024-06-30"}, actor="tester")
    loaded, manifest = registry.load(lake, "churn", version)
    assert version == "v1" and manifest["libraries"] == registry.library_versions()
    assert np.array_equal(loaded.predict(X), model.predict(X))
    path = tmp_path / "lake" / "models" / "churn" / "v1" / "manifest.json"
    data = json.loads(path.read_text())
    data["libraries"]["scikit-learn"] = "0.0.1"
    path.write_text(json.dumps(data))
    with pytest.raises(DataError) as err:
        registry.load(lake, "churn", "v1")
    assert "fitted with scikit-learn 0.0.1" in err.value.message and "refit" in err.value.hint


def test_the_history_is_append_only_and_the_last_promotion_not_retired_is_active(tmp_path):
    lake = Lake(tmp_path / "lake")
    X, y = toy()
    for _ in range(2):
        registry.save(lake, ChurnScorecard(SPEC).fit(X, y), {"as_of": "2024-06-30"}, actor="tester")
    assert registry.active(lake) == {}
    registry.promote(lake, "churn", "v1", "ana", "AUC 0.8 out of time")
    registry.promote(lake, "churn", "v2", "ana", "fresher window")
    assert registry.active(lake) == {"churn": "v2"}
    registry.retire(lake, "churn", "v2", "bo", "drifted")
    assert registry.active(lake) == {}
    with pytest.raises(DataError):
        registry.promote(lake, "churn", "v2", "ana", "again")
    actions = [(h["action"], h["version"], h["actor"]) for h in registry.history(lake, "churn")]
    assert actions == [("fit", "v1", "tester"), ("fit", "v2", "tester"), ("promote", "v1", "ana"),
                       ("promote", "v2", "ana"), ("retire", "v2", "bo")]
