"""Gradient-boosted trees as plain JSON: export a fitted scikit-learn HistGradientBoosting model, score it
again with numpy alone, and explain each score exactly.

Why not pickle: a pickle runs code when it is loaded and is tied to the library's private classes, so a
model kept for years (SR 11-7) could neither be read by a reviewer nor trusted. The export keeps, per
tree, each node's split feature, threshold, where a missing value goes and each leaf's value; scoring
follows sklearn's own rule (``x <= threshold`` goes left, a missing value goes where ``missing_go_left``
says) and reproduces ``_raw_predict`` to the last bit (tested). Categorical splits are not exported:
Lifeloop passes every feature as a float (booleans 0/1).

**Exact contributions (Saabas, 2014, "Interpreting random forests").** Each node's expected value is the
training-count-weighted mean of the leaves below it. Walking one customer's path from the root to its
leaf, every split moves the expectation from the parent's to the child's; that step is credited to the
split's feature. So per tree ``leaf = E[root] + sum of steps``, and over the ensemble

    raw(x) = baseline + sum_trees E[root] + sum_features c_f(x)

exactly (to floating-point rounding), which is what reason codes need. (Saabas contributions are
path-dependent, unlike SHAP values; they are exact in the sense that they add up.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lifeloop.errors import DataError

if TYPE_CHECKING:
    import numpy as np

FORMAT = 1


def export(model: Any) -> dict[str, Any]:
    """A fitted ``HistGradientBoostingClassifier`` (binary) or ``...Regressor`` as JSON-able data."""
    import numpy as np

    predictors = model._predictors
    if len(predictors[0]) != 1:
        raise DataError("only a binary classifier or a regressor can be exported (one tree per iteration)",
                        hint="fit a yes/no target")
    trees = []
    for [tree] in predictors:
        n = tree.nodes
        if n["is_categorical"].any():
            raise DataError("a tree with a categorical split cannot be exported",
                            hint="pass categories as numbers (Lifeloop's feature matrices are floats)")
        leaf = n["is_leaf"].astype(bool)
        trees.append({"feature": [int(v) if not lf else -1 for v, lf in zip(n["feature_idx"], leaf, strict=True)],
                      "threshold": [float(v) for v in n["num_threshold"]],
                      "missing_left": [bool(v) for v in n["missing_go_to_left"]],
                      "left": [int(v) for v in n["left"]], "right": [int(v) for v in n["right"]],
                      "value": [float(v) if lf else 0.0 for v, lf in zip(n["value"], leaf, strict=True)],
                      "count": [int(v) for v in n["count"]]})
    baseline = float(np.asarray(model._baseline_prediction).ravel()[0])
    return {"format": FORMAT, "baseline": baseline, "n_features": int(model.n_features_in_), "trees": trees}


class Forest:
    """An exported ensemble: raw scores (log-odds for a classifier) and their exact contributions."""

    def __init__(self, data: dict[str, Any]):
        import numpy as np

        if data.get("format") != FORMAT:
            raise DataError(f"tree format version {data.get('format')}; this Lifeloop reads version {FORMAT}",
                            hint="refit the model with this Lifeloop")
        self.data = data
        self.baseline = float(data["baseline"])
        self.n_features = int(data["n_features"])
        self.trees = [{k: np.asarray(v) for k, v in t.items()} for t in data["trees"]]
        for t in self.trees:
            t["expected"] = _expectations(t)

    def _leaves(self, t: dict[str, np.ndarray], X: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """The leaf each row ends in, and the node visited at each depth (for the contributions)."""
        import numpy as np

        node = np.zeros(len(X), int)
        path = [node]
        while True:
            feat = t["feature"][node]
            inner = feat >= 0
            if not inner.any():
                return node, path
            x = X[np.arange(len(X)), np.where(inner, feat, 0)]
            go_left = np.where(np.isnan(x), t["missing_left"][node], x <= t["threshold"][node])
            node = np.where(inner, np.where(go_left, t["left"][node], t["right"][node]), node)
            path.append(node)

    def raw(self, X: np.ndarray) -> np.ndarray:
        """The ensemble's raw output: the baseline plus every tree's leaf value."""
        import numpy as np

        self._check(X)
        out = np.full(len(X), self.baseline)
        for t in self.trees:
            out += t["value"][self._leaves(t, X)[0]]
        return out

    def contributions(self, X: np.ndarray) -> tuple[float, np.ndarray]:
        """(base, contributions): base + the row sums equal :meth:`raw` exactly (Saabas path steps)."""
        import numpy as np

        self._check(X)
        base = self.baseline + float(sum(t["expected"][0] for t in self.trees))
        out = np.zeros(X.shape, float)
        rows = np.arange(len(X))
        for t in self.trees:
            _, path = self._leaves(t, X)
            for parent, child in zip(path, path[1:], strict=False):
                moved = parent != child
                f = t["feature"][parent]
                # each row appears once per step, so plain fancy-index addition is exact (no np.add.at needed)
                out[rows[moved], f[moved]] += (t["expected"][child] - t["expected"][parent])[moved]
        return base, out

    def _check(self, X: np.ndarray) -> None:
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise DataError(f"{X.shape[-1]} feature columns given, the trees were fitted on {self.n_features}",
                            hint="score with the features the model was fitted on, in the same order")


def _expectations(t: dict[str, np.ndarray]) -> np.ndarray:
    """Every node's training-count-weighted mean leaf value (children before parents: they have larger ids)."""
    import numpy as np

    e = np.asarray(t["value"], float).copy()
    for i in range(len(e) - 1, -1, -1):
        if t["feature"][i] >= 0:
            left, right = t["left"][i], t["right"][i]
            n_left, n_right = t["count"][left], t["count"][right]
            total = n_left + n_right
            e[i] = (n_left * e[left] + n_right * e[right]) / total if total else 0.5 * (e[left] + e[right])
    return e
