"""Hot-plug: a model shipped in a separate throwaway package is discovered, fitted, promoted, scored and used by a
strategy (`score('churn_plug') >= q`) in a daily run, with no change to Lifeloop's code.

The package is written into tmp_path with a ``.dist-info`` whose ``entry_points.txt`` declares it in group
``lifeloop.models``, and that folder is put on ``sys.path``: exactly what ``pip install`` leaves in
site-packages, without the minute pip takes on a busy machine.
"""

from __future__ import annotations

import shutil
import textwrap

import numpy as np
import pyarrow.compute as pc
import pytest

from lifeloop.context import Context
from lifeloop.errors import ConfigError, DataError
from lifeloop.models import catalogue, registry
from tests.integration.test_models_simulated_bank import bank  # noqa: F401 - its small simulated bank

PLUGIN = '''
"""A plain logistic regression on standardised features (missing: the training mean)."""
import numpy as np
from sklearn.linear_model import LogisticRegression

from lifeloop.models.contract import Model


class PlugLogit(Model):
    estimator = "plug_logit"

    def __init__(self, spec, mean=None, std=None, coef=None, intercept=0.0):
        super().__init__(spec)
        self.mean, self.std, self.coef, self.intercept = mean, std, coef, intercept

    def _z(self, X):
        X = np.where(np.isnan(X), np.asarray(self.mean), X)
        return (X - np.asarray(self.mean)) / np.asarray(self.std)

    def fit(self, X, y):
        self.mean = np.nanmean(X, axis=0).tolist()
        self.std = [float(s) if s > 0 else 1.0 for s in np.nanstd(X, axis=0)]
        m = LogisticRegression(max_iter=2000).fit(self._z(X), y)
        self.coef, self.intercept = m.coef_[0].tolist(), float(m.intercept_[0])
        return self

    def predict(self, X):
        return 1 / (1 + np.exp(-(self._z(X) @ np.asarray(self.coef) + self.intercept)))

    def to_json(self):
        return {"mean": self.mean, "std": self.std, "coef": self.coef, "intercept": self.intercept}

    @classmethod
    def from_json(cls, spec, data):
        return cls(spec, data["mean"], data["std"], data["coef"], data["intercept"])
'''


def install_plugin(site, monkeypatch, name: str = "plug_logit", target: str = "lifeloop_plug_demo:PlugLogit"):
    (site / "lifeloop_plug_demo").mkdir(parents=True)
    (site / "lifeloop_plug_demo" / "__init__.py").write_text(PLUGIN, encoding="utf-8")
    info = site / "lifeloop_plug_demo-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: lifeloop-plug-demo\nVersion: 0.1.0\n",
                                   encoding="utf-8")
    (info / "entry_points.txt").write_text(f"[lifeloop.models]\n{name} = {target}\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(site))


# the template's churn warning stays declared (its churn_warning strategy reads score('churn')); the plug-in is added
MODELS = textwrap.dedent("""\
    version: 1
    models:
      - {name: churn, description: churn warning (流失预警)}
      - {name: churn_plug, estimator: plug_logit, description: a plugged-in churn warning}
""")


@pytest.mark.slow   # the simulated bank's backfill takes a minute or more
def test_a_plugged_in_model_is_fitted_promoted_and_scored_by_the_daily_run(bank, tmp_path, monkeypatch):  # noqa: F811
    shutil.copytree(bank[0].workspace, tmp_path / "ws")
    ctx, last = Context(tmp_path / "ws"), bank[1]
    (ctx.config_dir / "models.yaml").write_text(MODELS, encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown estimator 'plug_logit'.*plug-ins installed .*: none"):
        ctx.models_config()
    ctx.close()
    install_plugin(tmp_path / "site", monkeypatch)
    ctx = Context(tmp_path / "ws")
    assert "plug_logit" in catalogue.estimators()
    manifest = ctx.fit_model("churn_plug", last)
    assert manifest["estimator"] == "plug_logit"
    assert manifest["plugin"] == {"entry_point": "lifeloop_plug_demo:PlugLogit", "package": "lifeloop-plug-demo",
                                  "package_version": "0.1.0"}
    assert manifest["validation"]["model"]["auc"]["value"] > 0.7    # honest labels, out of time, like any model
    ctx.promote_model("churn_plug", manifest["version"], reason="test: plug-in validated out of time")
    [result] = ctx.run(last, ["scores"])
    scores = ctx.snapshot("scores", last)
    assert set(scores["model"].to_pylist()) == {"churn_plug"} and scores.num_rows == ctx.features(last).num_rows
    assert scores["reason_1"].null_count == scores.num_rows      # no contributions: no reason codes
    model, _ = registry.load(ctx.lake, "churn_plug", manifest["version"])
    assert type(model).__module__ == "lifeloop_plug_demo"
    # a strategy selects by the plug-in's score in the same day's run
    cut = float(np.quantile(scores["score"].to_numpy(), 0.9))
    path = ctx.config_dir / "strategies.yaml"
    text = path.read_text(encoding="utf-8")
    rule = "audience: \"stage = 'dormant' AND coalesce(aum, 0) >= dormant_min_aum\""
    assert text.count(rule) == 1
    path.write_text(text.replace(rule, f"audience: \"score('churn_plug') >= {cut!r}\"\n"
                                       "    fallback_audience: \"stage = 'dormant'\""), encoding="utf-8")
    ctx.run(last, ["segments", "audiences"])
    audiences = ctx.snapshot("audiences", last)
    chosen = audiences.filter(pc.equal(audiences["strategy"], "dormant_reactivation"))["customer_id"].to_pylist()
    expected = scores.filter(pc.greater_equal(scores["score"], cut))["customer_id"].to_pylist()
    assert sorted(chosen) == sorted(expected) and len(chosen) > 10
    assert ctx.lake.manifest("audiences", last)["models_read"]["dormant_reactivation"] == ["churn_plug"]
    ctx.close()


def test_a_broken_plugin_is_named_with_its_package(tmp_path, monkeypatch):
    install_plugin(tmp_path / "site", monkeypatch, name="wrong_name")
    with pytest.raises(DataError, match="plug-in 'wrong_name' .*package lifeloop-plug-demo.*estimator = 'plug_logit'"):
        catalogue.plugins()
