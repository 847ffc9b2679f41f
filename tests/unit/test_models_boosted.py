"""The gradient-boosted churn option: calibrated, exact contributions, kept as JSON and scored like the scorecard."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest

from lifeloop.config.shelf import BoostingSpec, ModelSpec
from lifeloop.models import registry
from lifeloop.models.boosted import BoostedChurn
from lifeloop.models.scores import score_table
from lifeloop.store.lake import Lake

SPEC = ModelSpec(name="churn", estimator="hgb", features=("a", "b", "c"), bins=4, seed=3,
                 boosting=BoostingSpec(threads=1, max_iter=60))


def toy(n: int = 4000, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = np.column_stack([rng.normal(size=n), rng.integers(0, 5, n).astype(float), rng.normal(size=n)])
    X[rng.random(n) < 0.1, 1] = np.nan
    # an interaction the scorecard cannot represent: a high only matters when b is small
    logit = -2.5 + 2.0 * X[:, 0] * (np.nan_to_num(X[:, 1], nan=4) < 2)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return X, y


@pytest.fixture(scope="module")
def model():
    X, y = toy()
    return BoostedChurn(SPEC).fit(X, y)


def exact_contributions(model, X):
    """The model's contributions on X, checked to add up to its calibrated log-odds and to name the features that
    make the label (the noise feature c explains much less than a and b)."""
    base, contrib = model.contributions(X)
    p = model.predict(X)
    assert np.abs(base + contrib.sum(axis=1) - np.log(p / (1 - p))).max() < 1e-9
    spread = contrib.std(axis=0)
    assert spread[0] > 3 * spread[2] and spread[1] > 1.5 * spread[2]
    return contrib


def calibrated(p, y):
    """Mean and each tenth by score: expected vs observed rate."""
    assert abs(p.mean() - y.mean()) < 0.01
    for chunk in np.array_split(np.argsort(p), 10):
        assert abs(p[chunk].mean() - y[chunk].mean()) < 0.03


def test_contributions_add_up_exactly_to_the_calibrated_log_odds(model):
    exact_contributions(model, toy(1000, seed=2)[0])


def test_probabilities_are_calibrated_by_decile_of_score(model):
    X, y = toy(20000, seed=3)
    calibrated(model.predict(X), y)


def test_saved_as_json_it_scores_identically_and_the_scores_step_gives_reasons(model, tmp_path):
    lake = Lake(tmp_path / "lake")
    version = registry.save(lake, model, {"as_of": "2024-06-30"}, actor="tester")
    body = (tmp_path / "lake" / "models" / "churn" / version / "model.json").read_text()
    assert json.loads(body)["trees"]["trees"] and b"\x80" not in body.encode()   # JSON, not a pickle
    assert reloaded_scores_the_same(lake, model, version)["estimator"] == "hgb"


def reloaded_scores_the_same(lake, model, version):
    """Load a saved version: the same probabilities as the fitted model, and the scores step's rows give reasons
    naming the features that make the label; returns the manifest."""
    loaded, manifest = registry.load(lake, "churn", version)
    X, _ = toy(500, seed=4)
    assert np.array_equal(loaded.predict(X), model.predict(X))
    ids = [f"C{i:04d}" for i in range(len(X))]
    scores = score_table(loaded, version, pa.table({"customer_id": ids, "a": X[:, 0], "b": X[:, 1], "c": X[:, 2]}),
                         {})
    assert np.allclose(scores["score"].to_numpy(), loaded.predict(X))
    top = scores.sort_by([("score", "descending")]).slice(0, 20)
    assert all(r and r.split(":")[0] in ("a", "b") for r in top["reason_1"].to_pylist())
    return manifest
