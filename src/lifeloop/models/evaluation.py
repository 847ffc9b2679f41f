"""``lifeloop models evaluate NAME`` (模型评估): a fitted version measured on the newest closed outcome window.

A churn-type classifier is scored on the features of the newest window whose label horizon has closed by
D (:func:`lifeloop.models.labels.window`), against the outcomes the bank's lifecycle snapshots recorded
after it: AUC and PR-AUC with 95% bootstrap intervals, top-decile lift, and a lift table by tenth of
customers (:mod:`lifeloop.models.metrics`), next to the ``declining`` rule on the same customers. When that
window is the one the version was trained on, or an earlier one, the figures are in-sample and are
labelled so: an honest out-of-time reading needs outcomes the version never saw.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from lifeloop.errors import DataError
from lifeloop.models import labels, metrics, registry
from lifeloop.store.lake import Lake

RULE_STAGE = "declining"


def evaluate(lake: Lake, name: str, version: str | None, as_of: dt.date | None) -> dict[str, Any]:
    """The report (a dict): window, whether in sample, the model's and the rule's metrics, the lift table."""
    import numpy as np

    known = registry.versions(lake, name)
    if not known:
        raise DataError(f"model {name} has no fitted version", hint=f"fit it: `lifeloop models fit {name}`")
    version = version or registry.champion(lake, name) or known[-1]
    model, manifest = registry.load(lake, name, version)
    spec = model.spec
    if spec.kind != "classifier":
        raise DataError(f"model {name} is a {spec.kind} model: `models evaluate` measures classifiers against "
                        "lifecycle outcomes", hint=f"its validation on held-out entries: `lifeloop models show {name} "
                        f"{version}`")
    dates = lake.dates(labels.FEATURES)
    if as_of is None:
        if not dates:
            raise DataError("no features snapshot in the lake", hint="run the daily steps first")
        as_of = dates[-1]
    w = labels.window(lake, spec.label, as_of)
    _, X, y, stages = labels.examples(w, spec.label, spec.features)
    if len(y) == 0 or y.min() == y.max():
        raise DataError(f"the window of {w.start} has {len(y)} eligible customers, all with the same outcome",
                        hint="evaluate as of a later date, when more outcomes are known")
    score = model.predict(X)
    rule = np.asarray([s == RULE_STAGE for s in stages["stage"].to_pylist()], float)
    trained = dt.date.fromisoformat(manifest["training_window"]["features_as_of"])
    return {"model": name, "version": version, "label": manifest["label"], "as_of": as_of.isoformat(),
            "window": w.describe(), "trained_on": manifest["training_window"], "in_sample": w.start <= trained,
            "metrics": metrics.evaluate(y, score, seed=spec.seed),
            "rule_declining": metrics.evaluate(y, rule, seed=spec.seed),
            "lift": metrics.lift_table(y, score)}
