"""Churn warning (流失预警) as gradient-boosted trees: the option next to the scorecard.

scikit-learn's HistGradientBoostingClassifier (small trees, missing values routed as learnt) gives the
log-odds; Platt scaling (Platt, 1999) fitted on 5-fold out-of-fold log-odds calibrates them, as for the
scorecard. Calibration multiplies the log-odds by one number ``a`` and adds ``b``, so the exact Saabas
path contributions of the trees (:mod:`lifeloop.models.trees`) stay exact after it:

    logit(p) = a (baseline + sum_trees E[root]) + b + sum_f a c_f(x)

The trees are kept as JSON, never pickle. Reason codes name the feature and the quantile bin of its value
(bins of the training data, as the scorecard's), so the words read the same for both estimators.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lifeloop.config.shelf import ModelSpec
from lifeloop.errors import DataError
from lifeloop.models.churn import bin_label, cut, quantile_edges
from lifeloop.models.contract import Model
from lifeloop.models.trees import Forest, export
from lifeloop.models.uplift import classifier, fitted

if TYPE_CHECKING:
    import numpy as np


class BoostedChurn(Model):
    """Calibrated gradient-boosted trees; contributions on the calibrated log-odds scale add up exactly."""

    estimator = "hgb"
    requires = ("numpy",)     # scoring reads JSON trees with numpy alone

    def __init__(self, spec: ModelSpec, forest: Forest | None = None, a: float = 1.0, b: float = 0.0,
                 edges: list[list[float]] | None = None):
        super().__init__(spec)
        self.forest, self.a, self.b = forest, a, b
        self.edges = edges or []

    def fit(self, X: np.ndarray, y: np.ndarray) -> BoostedChurn:
        """Trees on every row, then Platt scaling on 5-fold out-of-fold log-odds."""
        import numpy as np
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import StratifiedKFold

        if len(np.unique(y)) < 2:
            raise DataError(f"model {self.spec.name}: every training customer has the same label ({int(y[0])}); "
                            "there is nothing to learn", hint="train on a longer history or a wider window")
        oof = np.zeros(len(y))
        folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=self.spec.seed)
        for train, test in folds.split(X, y):
            oof[test] = fitted(self.spec, classifier(self.spec), X[train], y[train]).decision_function(X[test])
        platt = LogisticRegression(C=1e6, max_iter=1000).fit(oof.reshape(-1, 1), y)
        self.a, self.b = float(platt.coef_[0, 0]), float(platt.intercept_[0])
        self.forest = Forest(export(fitted(self.spec, classifier(self.spec), X, y)))
        self.edges = [quantile_edges(X[:, j], self.spec.bins) for j in range(X.shape[1])]
        return self

    def contributions(self, X: np.ndarray) -> tuple[float, np.ndarray]:
        """(base, contributions) on the calibrated log-odds scale; base + row sums = the log-odds exactly."""
        base, contrib = self.forest.contributions(X)
        return self.a * base + self.b, self.a * contrib

    def log_odds(self, X: np.ndarray) -> np.ndarray:
        """The calibrated log-odds (straight from the trees, not through the contributions)."""
        return self.a * self.forest.raw(X) + self.b

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Calibrated probabilities of the label."""
        import numpy as np

        return 1.0 / (1.0 + np.exp(-self.log_odds(X)))

    def reason_codes(self, X: np.ndarray) -> list[list[str]]:
        """``feature:bin`` codes per customer and feature (quantile bins of the training data)."""
        names = self.spec.features
        levels = [cut(X[:, j], e) for j, e in enumerate(self.edges)]
        return [[f"{names[j]}:{int(levels[j][i])}" for j in range(len(names))] for i in range(len(X))]

    def bin_text(self, feature: str, level: int) -> str:
        """The range of one bin of a feature in words."""
        return bin_label(self.edges[self.spec.features.index(feature)], level)

    def to_json(self) -> dict[str, Any]:
        """The trees, the calibration and the bin edges of the reason codes."""
        return {"trees": self.forest.data, "platt": {"a": self.a, "b": self.b},
                "edges": dict(zip(self.spec.features, self.edges, strict=True))}

    @classmethod
    def from_json(cls, spec: ModelSpec, data: dict[str, Any]) -> BoostedChurn:
        """The model back from :meth:`to_json`."""
        return cls(spec, Forest(data["trees"]), data["platt"]["a"], data["platt"]["b"],
                   [data["edges"][f] for f in spec.features])


ESTIMATORS: dict[str, type[Model]] = {"hgb": BoostedChurn}
