"""The LightGBM churn option (an optional extra): calibrated, TreeSHAP contributions that add up, kept as LightGBM's
text model inside JSON, refused under another LightGBM version, and explained like the other estimators."""

from __future__ import annotations

import builtins
import json

import numpy as np
import pytest

from lifeloop.config.shelf import BoostingSpec, ModelSpec
from lifeloop.errors import ConfigError, DataError
from lifeloop.models import catalogue, registry
from lifeloop.models.boosted import BoostedChurn
from lifeloop.models.lightgbm import LightGBMChurn
from lifeloop.models.metrics import auc
from lifeloop.store.lake import Lake
from tests.unit.test_models_boosted import calibrated, exact_contributions, reloaded_scores_the_same, toy

pytest.importorskip("lightgbm", reason="LightGBM is in the dev extras; this runs wherever `make test` installed it")

SPEC = ModelSpec(name="churn", estimator="lightgbm", features=("a", "b", "c"), bins=4, seed=3,
                 boosting=BoostingSpec(threads=1, max_iter=60))


@pytest.fixture(scope="module")
def model():
    X, y = toy()
    return LightGBMChurn(SPEC).fit(X, y)


def test_the_spec_resolves_to_the_lightgbm_estimator():
    assert catalogue.for_spec(SPEC) is LightGBMChurn
    with pytest.raises(ValueError, match="cannot use estimator 'lightgbm'"):
        ModelSpec(name="x", kind="uplift", estimator="lightgbm", offer="P1")


def test_treeshap_contributions_add_up_exactly_to_the_calibrated_log_odds(model):
    import lightgbm

    X, _ = toy(1000, seed=2)
    contrib = exact_contributions(model, X)
    # the contributions are LightGBM's own TreeSHAP values scaled by the calibration's multiplier
    raw = lightgbm.Booster(model_str=model.booster.model_to_string()).predict(X, pred_contrib=True)
    assert np.allclose(contrib, model.a * raw[:, :-1], rtol=0, atol=1e-12)


def test_probabilities_are_calibrated_and_rank_as_well_as_scikit_learns_trees(model):
    X, y = toy(20000, seed=3)
    p = model.predict(X)
    calibrated(p, y)
    Xt, yt = toy()
    hgb = BoostedChurn(SPEC.model_copy(update={"estimator": "hgb"})).fit(Xt, yt)
    oracle = auc(y, 2.0 * X[:, 0] * (np.nan_to_num(X[:, 1], nan=4) < 2))   # the label's true log-odds ranks best
    assert auc(y, p) > oracle - 0.02 and abs(auc(y, p) - auc(y, hgb.predict(X))) < 0.02


def test_a_refit_gives_the_same_model(model):
    X, y = toy()
    again = LightGBMChurn(SPEC).fit(X, y)
    assert again.booster.model_to_string() == model.booster.model_to_string() and (again.a, again.b) == (model.a,
                                                                                                         model.b)


def test_saved_as_text_in_json_it_scores_identically_and_another_version_is_refused(model, tmp_path):
    lake = Lake(tmp_path / "lake")
    version = registry.save(lake, model, {"as_of": "2024-06-30"}, actor="tester")
    folder = tmp_path / "lake" / "models" / "churn" / version
    body = (folder / "model.json").read_text()
    assert json.loads(body)["lightgbm"].startswith("tree\n") and b"\x80" not in body.encode()
    manifest = reloaded_scores_the_same(lake, model, version)
    assert manifest["estimator"] == "lightgbm" and manifest["libraries"]["lightgbm"]

    found = json.loads((folder / "manifest.json").read_text())
    found["libraries"]["lightgbm"] = "3.3.5"
    (folder / "manifest.json").write_text(json.dumps(found))
    with pytest.raises(DataError, match="fitted with lightgbm 3.3.5"):
        registry.load(lake, "churn", version)


def test_without_the_library_the_error_says_how_to_install_it(monkeypatch):
    real = builtins.__import__

    def no_lightgbm(name, *args, **kwargs):
        if name == "lightgbm":
            raise ImportError("No module named 'lightgbm'")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_lightgbm)
    X, y = toy(500)
    with pytest.raises(ConfigError, match="needs the LightGBM library") as err:
        LightGBMChurn(SPEC).fit(X, y)
    assert "lifeloop[lightgbm]" in err.value.hint
