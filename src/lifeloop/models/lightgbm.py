"""Churn warning on LightGBM (an optional extra: ``pip install 'lifeloop[lightgbm]'``), beside scikit-learn's trees.

``estimator: lightgbm`` in config/models.yaml. It is :class:`lifeloop.models.boosted.BoostedChurn` with
LightGBM's booster in place of scikit-learn's: the same settings (``boosting:``; ``max_iter`` rounds,
``min_samples_leaf`` as ``min_data_in_leaf``, ``l2_regularization`` as ``lambda_l2``), the same Platt
calibration on 5-fold out-of-fold log-odds, the same reason-code bins. Per-customer contributions are
LightGBM's own exact TreeSHAP values (``pred_contrib``: Lundberg et al., 2020, "From local explanations to
global understanding with explainable AI for trees", *Nature Machine Intelligence* 2), which add up to
the raw log-odds; the calibration's one multiplier keeps them exact on the calibrated scale.

The booster is kept in LightGBM's own text format inside model.json (never pickle), and loading refuses a
LightGBM version other than the one it was fitted with (the registry's check). Training is deterministic
(``deterministic``, ``force_row_wise``, a fixed seed and thread count), so a refit gives the same model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lifeloop.config.shelf import ModelSpec
from lifeloop.errors import ConfigError, DataError
from lifeloop.models.boosted import BoostedChurn
from lifeloop.models.churn import quantile_edges

if TYPE_CHECKING:
    import numpy as np

INSTALL = "pip install 'lifeloop[lightgbm]' (LightGBM is an optional extra), or use estimator: hgb"


def _lightgbm() -> Any:
    try:
        import lightgbm
    except ImportError:
        raise ConfigError("estimator 'lightgbm' needs the LightGBM library, which is not installed",
                          hint=INSTALL) from None
    return lightgbm


def params(spec: ModelSpec) -> dict[str, Any]:
    """LightGBM's parameters for the spec's boosting settings (deterministic)."""
    b = spec.boosting
    return {"objective": "binary", "learning_rate": b.learning_rate, "max_depth": b.max_depth,
            "num_leaves": min(2 ** b.max_depth, 131072), "min_data_in_leaf": b.min_samples_leaf,
            "lambda_l2": b.l2_regularization, "num_threads": b.threads or 0, "seed": spec.seed,
            "deterministic": True, "force_row_wise": True, "verbosity": -1}


def train(spec: ModelSpec, X: np.ndarray, y: np.ndarray) -> Any:
    """A LightGBM booster of ``spec.boosting.max_iter`` rounds on (X, y); NaN is missing."""
    lgb = _lightgbm()
    data = lgb.Dataset(X, label=y, params={"verbosity": -1}, free_raw_data=True)
    return lgb.train(params(spec), data, num_boost_round=spec.boosting.max_iter)


class LightGBMChurn(BoostedChurn):
    """Calibrated LightGBM trees; TreeSHAP contributions on the calibrated log-odds scale add up exactly."""

    estimator = "lightgbm"
    requires = ("numpy", "lightgbm")

    def __init__(self, spec: ModelSpec, booster: Any = None, a: float = 1.0, b: float = 0.0,
                 edges: list[list[float]] | None = None):
        super().__init__(spec, None, a, b, edges)
        self.booster = booster

    def fit(self, X: np.ndarray, y: np.ndarray) -> LightGBMChurn:
        """Trees on every row, then Platt scaling on 5-fold out-of-fold log-odds."""
        import numpy as np
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import StratifiedKFold

        if len(np.unique(y)) < 2:
            raise DataError(f"model {self.spec.name}: every training customer has the same label ({int(y[0])}); "
                            "there is nothing to learn", hint="train on a longer history or a wider window")
        oof = np.zeros(len(y))
        for tr, te in StratifiedKFold(n_splits=5, shuffle=True, random_state=self.spec.seed).split(X, y):
            oof[te] = train(self.spec, X[tr], y[tr]).predict(X[te], raw_score=True)
        platt = LogisticRegression(C=1e6, max_iter=1000).fit(oof.reshape(-1, 1), y)
        self.a, self.b = float(platt.coef_[0, 0]), float(platt.intercept_[0])
        self.booster = train(self.spec, X, y)
        self.edges = [quantile_edges(X[:, j], self.spec.bins) for j in range(X.shape[1])]
        return self

    def contributions(self, X: np.ndarray) -> tuple[float, np.ndarray]:
        """(base, contributions) on the calibrated log-odds scale; base + row sums = the log-odds exactly."""
        import numpy as np

        shap = np.asarray(self.booster.predict(X, pred_contrib=True), dtype=np.float64)
        base = shap[:, -1]
        if len(base) and np.ptp(base) > 1e-12:   # TreeSHAP's expected value is one number per model
            raise DataError(f"model {self.spec.name}: LightGBM gave different expected values per row",
                            hint="report this with the model's version; use estimator: hgb meanwhile")
        return self.a * (float(base[0]) if len(base) else 0.0) + self.b, self.a * shap[:, :-1]

    def log_odds(self, X: np.ndarray) -> np.ndarray:
        """The calibrated log-odds (straight from the booster, not through the contributions)."""
        return self.a * self.booster.predict(X, raw_score=True) + self.b

    def to_json(self) -> dict[str, Any]:
        """LightGBM's text model, the calibration and the bin edges of the reason codes."""
        return {"lightgbm": self.booster.model_to_string(), "platt": {"a": self.a, "b": self.b},
                "edges": dict(zip(self.spec.features, self.edges, strict=True))}

    @classmethod
    def from_json(cls, spec: ModelSpec, data: dict[str, Any]) -> LightGBMChurn:
        """The model back from :meth:`to_json`."""
        booster = _lightgbm().Booster(model_str=data["lightgbm"])
        return cls(spec, booster, data["platt"]["a"], data["platt"]["b"], [data["edges"][f] for f in spec.features])


ESTIMATORS: dict[str, type[BoostedChurn]] = {"lightgbm": LightGBMChurn}
