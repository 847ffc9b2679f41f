"""Response (响应) and uplift (增量) models for one offer, over scikit-learn's HistGradientBoosting trees.

* **Response** — P(convert | contacted, x): a boosted classifier fitted on the treated entries only. It
  finds who buys when asked, including those who would have bought anyway.
* **Uplift** — tau(x) = P(convert | contacted, x) - P(convert | not contacted, x), learnt from a
  randomised treated and control group (Lifeloop's holdout):

  - **T-learner** (two models; Künzel et al., 2019, "Metalearners for estimating heterogeneous treatment
    effects using machine learning", *PNAS* 116(10)): mu1 on the treated, mu0 on the control group,
    tau = mu1 - mu0.
  - **X-learner** (the same paper): mu0, mu1 as above; the imputed effects D1 = y - mu0(x) of the
    treated and D0 = mu1(x) - y of the control group are regressed on x (tau1, tau0), and combined as
    tau = g tau0 + (1 - g) tau1 with g the propensity — here the share treated, a constant, because
    Lifeloop's holdout assigns by a hash independent of x. It borrows strength from the larger arm,
    which suits a small control group.

Every fitted tree is exported to JSON (:mod:`lifeloop.models.trees`) — no pickle. Features are floats
with NaN for missing; the trees route missing values as they learnt to.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lifeloop.config.shelf import ModelSpec
from lifeloop.errors import DataError
from lifeloop.models.contract import Model
from lifeloop.models.trees import Forest, export

if TYPE_CHECKING:
    import numpy as np


def _sigmoid(v: np.ndarray) -> np.ndarray:
    import numpy as np

    return 1.0 / (1.0 + np.exp(-v))


def classifier(spec: ModelSpec) -> Any:
    """An unfitted HistGradientBoostingClassifier with the spec's settings (deterministic: no early stopping)."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    b = spec.boosting
    return HistGradientBoostingClassifier(max_iter=b.max_iter, learning_rate=b.learning_rate, max_depth=b.max_depth,
                                          min_samples_leaf=b.min_samples_leaf, l2_regularization=b.l2_regularization,
                                          early_stopping=False, random_state=spec.seed)


def regressor(spec: ModelSpec) -> Any:
    """An unfitted HistGradientBoostingRegressor (squared error) with the spec's settings."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    b = spec.boosting
    return HistGradientBoostingRegressor(max_iter=b.max_iter, learning_rate=b.learning_rate, max_depth=b.max_depth,
                                         min_samples_leaf=b.min_samples_leaf, l2_regularization=b.l2_regularization,
                                         early_stopping=False, random_state=spec.seed)


def fitted(spec: ModelSpec, estimator: Any, X: np.ndarray, y: np.ndarray) -> Any:
    """``estimator.fit(X, y)`` within the spec's thread limit (on a busy machine one thread is much faster)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=spec.boosting.threads, user_api="openmp"):
        return estimator.fit(X, y)


def _both_labels(spec: ModelSpec, y: np.ndarray, who: str) -> None:
    import numpy as np

    if len(y) == 0 or len(np.unique(y)) < 2:
        raise DataError(f"model {spec.name}: every {who} entry has the same outcome "
                        f"({int(y[0]) if len(y) else 'no entries'}); there is nothing to learn",
                        hint=f"wait for more {spec.outcome} outcomes of offer {spec.offer}, or train on a longer "
                             "history")


class ResponseModel(Model):
    """P(convert | contacted, x) for one offer: a boosted classifier on the treated entries."""

    estimator = "response_hgb"
    output = "probability"
    requires = ("numpy",)

    def __init__(self, spec: ModelSpec, forest: Forest | None = None):
        super().__init__(spec)
        self.forest = forest

    def fit(self, X: np.ndarray, y: np.ndarray, treated: np.ndarray | None = None) -> ResponseModel:
        """Fit on the treated rows (all rows when ``treated`` is None)."""
        import numpy as np

        if treated is not None:
            keep = np.asarray(treated, bool)
            X, y = X[keep], y[keep]
        _both_labels(self.spec, y, "treated")
        self.forest = Forest(export(fitted(self.spec, classifier(self.spec), X, y)))
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """The probability of converting if contacted."""
        return _sigmoid(self.forest.raw(X))

    def to_json(self) -> dict[str, Any]:
        return {"response": self.forest.data}

    @classmethod
    def from_json(cls, spec: ModelSpec, data: dict[str, Any]) -> ResponseModel:
        return cls(spec, Forest(data["response"]))


class UpliftModel(Model):
    """The shared base of the meta-learners: ``fit(X, y, treated)``, ``predict`` gives tau(x)."""

    output = "uplift"
    requires = ("numpy",)

    def fit(self, X: np.ndarray, y: np.ndarray, treated: np.ndarray | None = None) -> UpliftModel:
        raise NotImplementedError

    @staticmethod
    def _split(spec: ModelSpec, X: np.ndarray, y: np.ndarray, treated: np.ndarray | None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        import numpy as np

        if treated is None:
            raise DataError(f"model {spec.name}: an uplift model needs who was treated and who was in control")
        t = np.asarray(treated, bool)
        if t.all() or not t.any():
            raise DataError(f"model {spec.name}: the entries of offer {spec.offer} are all "
                            f"{'treated' if t.all() else 'control'}; uplift needs both",
                            hint="keep a holdout (control group) in the strategies that make this offer")
        _both_labels(spec, y[t], "treated")
        _both_labels(spec, y[~t], "control")
        return X[t], y[t], X[~t], y[~t]


class TLearner(UpliftModel):
    """tau = mu1(x) - mu0(x): one classifier per arm."""

    estimator = "t_learner"

    def __init__(self, spec: ModelSpec, mu1: Forest | None = None, mu0: Forest | None = None):
        super().__init__(spec)
        self.mu1, self.mu0 = mu1, mu0

    def fit(self, X: np.ndarray, y: np.ndarray, treated: np.ndarray | None = None) -> TLearner:
        X1, y1, X0, y0 = self._split(self.spec, X, y, treated)
        self.mu1 = Forest(export(fitted(self.spec, classifier(self.spec), X1, y1)))
        self.mu0 = Forest(export(fitted(self.spec, classifier(self.spec), X0, y0)))
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predicted uplift: P(convert | contacted) - P(convert | not contacted)."""
        return _sigmoid(self.mu1.raw(X)) - _sigmoid(self.mu0.raw(X))

    def to_json(self) -> dict[str, Any]:
        return {"mu1": self.mu1.data, "mu0": self.mu0.data}

    @classmethod
    def from_json(cls, spec: ModelSpec, data: dict[str, Any]) -> TLearner:
        return cls(spec, Forest(data["mu1"]), Forest(data["mu0"]))


class XLearner(UpliftModel):
    """tau = g tau0(x) + (1 - g) tau1(x) over imputed effects (g: the share treated)."""

    estimator = "x_learner"

    def __init__(self, spec: ModelSpec, tau1: Forest | None = None, tau0: Forest | None = None,
                 propensity: float = 0.5):
        super().__init__(spec)
        self.tau1, self.tau0, self.propensity = tau1, tau0, propensity

    def fit(self, X: np.ndarray, y: np.ndarray, treated: np.ndarray | None = None) -> XLearner:
        X1, y1, X0, y0 = self._split(self.spec, X, y, treated)
        mu1 = fitted(self.spec, classifier(self.spec), X1, y1)
        mu0 = fitted(self.spec, classifier(self.spec), X0, y0)
        d1 = y1 - mu0.predict_proba(X1)[:, 1]          # the treated: what they did minus what they would have
        d0 = mu1.predict_proba(X0)[:, 1] - y0          # the control: what they would have done minus what they did
        self.tau1 = Forest(export(fitted(self.spec, regressor(self.spec), X1, d1)))
        self.tau0 = Forest(export(fitted(self.spec, regressor(self.spec), X0, d0)))
        self.propensity = float(len(y1) / (len(y1) + len(y0)))
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predicted uplift (a difference of probabilities)."""
        g = self.propensity
        return g * self.tau0.raw(X) + (1 - g) * self.tau1.raw(X)

    def to_json(self) -> dict[str, Any]:
        return {"tau1": self.tau1.data, "tau0": self.tau0.data, "propensity": self.propensity}

    @classmethod
    def from_json(cls, spec: ModelSpec, data: dict[str, Any]) -> XLearner:
        return cls(spec, Forest(data["tau1"]), Forest(data["tau0"]), float(data["propensity"]))


ESTIMATORS: dict[str, type[Model]] = {"response_hgb": ResponseModel, "t_learner": TLearner, "x_learner": XLearner}
