"""Churn warning (流失预警) as a calibrated logistic scorecard over binned features.

Method (a credit-scoring scorecard, Siddiqi, *Credit Risk Scorecards*, 2006, ch. 6): each feature is cut
into quantile bins of the training data, plus a bin of its own for a missing value; a ridge-penalised
logistic regression over the bins' indicators gives a weight per bin. Probabilities are calibrated by
Platt scaling (Platt, 1999) fitted on out-of-fold log-odds, which multiplies every weight by one number,
so the scorecard stays additive. A customer's log-odds are

    logit(p) = base + sum_f c_f,   c_f = w_f[bin_f(x)] - mean over training customers of w_f[bin_f]

so each contribution says how far the feature moves this customer from the average training customer,
and the contributions add up exactly to the score's log-odds (the reason codes' arithmetic is checked in
tests). Every bin edge and weight is plain JSON, so the score is also expressible as a SQL ``CASE``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lifeloop.config.shelf import ModelSpec
from lifeloop.errors import DataError
from lifeloop.models.contract import Model

if TYPE_CHECKING:
    import numpy as np

MISSING = "missing"


def cut(x: np.ndarray, edges: list[float]) -> np.ndarray:
    """The bin of each value: 0..len(edges) by the edges (right-open), len(edges)+1 for a missing value."""
    import numpy as np

    out = np.searchsorted(np.asarray(edges, float), x, side="right")
    out[np.isnan(x)] = len(edges) + 1
    return out


def quantile_edges(x: np.ndarray, bins: int) -> list[float]:
    """Distinct inner quantile edges of the non-missing values (fewer bins for a feature with few values)."""
    import numpy as np

    seen = x[~np.isnan(x)]
    if seen.size == 0:
        return []
    inner = np.quantile(seen, np.linspace(0, 1, bins + 1)[1:-1], method="lower")
    return [float(e) for e in np.unique(inner) if e > seen.min()]


def bin_label(edges: list[float], level: int) -> str:
    """A bin's range in words: ``< 3``, ``3 to 10``, ``>= 10`` or ``missing``."""
    if level == len(edges) + 1:
        return MISSING
    if not edges:
        return "any"
    if level == 0:
        return f"< {edges[0]:.4g}"
    if level == len(edges):
        return f">= {edges[-1]:.4g}"
    return f"{edges[level - 1]:.4g} to < {edges[level]:.4g}"


class ChurnScorecard(Model):
    """A calibrated logistic scorecard; weights on the log-odds scale, one per feature bin."""

    estimator = "scorecard"
    requires = ("numpy", "scikit-learn")

    def __init__(self, spec: ModelSpec, edges: list[list[float]] | None = None,
                 weights: list[list[float]] | None = None, means: list[float] | None = None,
                 intercept: float = 0.0):
        super().__init__(spec)
        self.edges = edges or []
        self.weights = weights or []
        self.means = means or []
        self.intercept = intercept

    # ------------------------------------------------------------------ fitting
    def _design(self, X: np.ndarray) -> np.ndarray:
        import numpy as np

        blocks = []
        for j, edges in enumerate(self.edges):
            levels = cut(X[:, j], edges)
            block = np.zeros((len(X), len(edges) + 2))
            block[np.arange(len(X)), levels] = 1.0
            blocks.append(block)
        return np.hstack(blocks)

    def _logistic(self, D: np.ndarray, y: np.ndarray) -> Any:
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(C=self.spec.regularisation, max_iter=5000, tol=1e-10).fit(D, y)

    def fit(self, X: np.ndarray, y: np.ndarray) -> ChurnScorecard:
        """Bins from the training data, a ridge logistic fit, then Platt scaling on out-of-fold log-odds."""
        from threadpoolctl import threadpool_limits

        # one BLAS thread for the whole fit: the design is small (customers x bins) and OpenBLAS's threads spin
        # against DuckDB's and other processes' on a busy machine (5x slower measured at load 8; same coefficients)
        with threadpool_limits(limits=1, user_api="blas"):
            return self._fit(X, y)

    def _fit(self, X: np.ndarray, y: np.ndarray) -> ChurnScorecard:
        import numpy as np
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import StratifiedKFold

        if len(np.unique(y)) < 2:
            raise DataError(f"model {self.spec.name}: every training customer has the same label ({int(y[0])}); "
                            "there is nothing to learn", hint="train on a longer history or a wider window")
        self.edges = [quantile_edges(X[:, j], self.spec.bins) for j in range(X.shape[1])]
        D = self._design(X)
        oof = np.zeros(len(y))
        folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=self.spec.seed)
        for train, test in folds.split(D, y):
            oof[test] = self._logistic(D[train], y[train]).decision_function(D[test])
        platt = LogisticRegression(C=1e6, max_iter=1000).fit(oof.reshape(-1, 1), y)
        a, b = float(platt.coef_[0, 0]), float(platt.intercept_[0])
        raw = self._logistic(D, y)
        w = a * raw.coef_[0]
        self.weights, start = [], 0
        for edges in self.edges:
            n = len(edges) + 2
            self.weights.append([float(v) for v in w[start:start + n]])
            start += n
        self.intercept = a * float(raw.intercept_[0]) + b
        self.means = [float(np.mean(np.asarray(wf)[cut(X[:, j], self.edges[j])]))
                      for j, wf in enumerate(self.weights)]
        return self

    # ------------------------------------------------------------------ scoring and explaining
    def contributions(self, X: np.ndarray) -> tuple[float, np.ndarray]:
        """(base, contributions): base + the row sum is each customer's calibrated log-odds."""
        import numpy as np

        self._check_width(X)
        out = np.empty(X.shape, float)
        for j, (edges, wf) in enumerate(zip(self.edges, self.weights, strict=True)):
            out[:, j] = np.asarray(wf)[cut(X[:, j], edges)] - self.means[j]
        return self.intercept + float(sum(self.means)), out

    def log_odds(self, X: np.ndarray) -> np.ndarray:
        """The calibrated log-odds, as base plus the contributions."""
        base, contrib = self.contributions(X)
        return base + contrib.sum(axis=1)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Calibrated probabilities of the label."""
        import numpy as np

        return 1.0 / (1.0 + np.exp(-self.log_odds(X)))

    def reason_codes(self, X: np.ndarray) -> list[list[str]]:
        """``feature:bin`` codes per customer and feature."""
        self._check_width(X)
        names = self.spec.features
        levels = [cut(X[:, j], e) for j, e in enumerate(self.edges)]
        return [[f"{names[j]}:{int(levels[j][i])}" for j in range(len(names))] for i in range(len(X))]

    def bin_text(self, feature: str, level: int) -> str:
        """The range of one bin of a feature in words."""
        return bin_label(self.edges[self.spec.features.index(feature)], level)

    def _check_width(self, X: np.ndarray) -> None:
        if X.shape[1] != len(self.edges):
            raise DataError(f"model {self.spec.name}: {X.shape[1]} feature columns given, the scorecard has "
                            f"{len(self.edges)}")

    # ------------------------------------------------------------------ the artefact
    def to_json(self) -> dict[str, Any]:
        """Bin edges, weights per bin, training means and the intercept."""
        return {"intercept": self.intercept, "features": {
            f: {"edges": e, "weights": w, "mean": m}
            for f, e, w, m in zip(self.spec.features, self.edges, self.weights, self.means, strict=True)}}

    @classmethod
    def from_json(cls, spec: ModelSpec, data: dict[str, Any]) -> ChurnScorecard:
        """The scorecard back from :meth:`to_json` (features in the spec's order)."""
        f = data["features"]
        return cls(spec, [f[n]["edges"] for n in spec.features], [f[n]["weights"] for n in spec.features],
                   [f[n]["mean"] for n in spec.features], data["intercept"])


ESTIMATORS: dict[str, type[Model]] = {"scorecard": ChurnScorecard}
