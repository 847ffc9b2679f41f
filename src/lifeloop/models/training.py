"""Fitting a model as of D: validate out of time, then refit on the newest honest window.

Time-based validation (a model-risk reviewer's first question): a model fitted on the window before the
newest one is scored on the newest one, whose outcomes it never saw, next to the rule it should beat
(the lifecycle's ``declining`` stage, 衰退期/流失预警). The model kept is then refitted on the newest
window with the same settings, so it uses the freshest behaviour; the manifest records both windows.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from lifeloop.errors import DataError
from lifeloop.models import labels, metrics, registry
from lifeloop.models.churn import ESTIMATORS
from lifeloop.models.contract import Model, ModelSpec
from lifeloop.store.lake import Lake

RULE_STAGE = "declining"


def fit_window(spec: ModelSpec, w: labels.Window) -> tuple[Model, Any, Any, Any]:
    """A model fitted on one window, with that window's (X, y, stages)."""
    _, X, y, stages = labels.examples(w, spec.label, spec.features)
    return ESTIMATORS[spec.estimator](spec).fit(X, y), X, y, stages


def validate(spec: ModelSpec, train: labels.Window, test: labels.Window) -> dict[str, Any]:
    """Out-of-time figures of the model and of the ``declining`` rule on the test window."""
    import numpy as np

    model, *_ = fit_window(spec, train)
    _, X, y, stages = labels.examples(test, spec.label, spec.features)
    rule = np.asarray([s == RULE_STAGE for s in stages["stage"].to_pylist()], float)
    return {"train": train.describe(), "test": test.describe(),
            "model": metrics.evaluate(y, model.predict(X), seed=spec.seed),
            "rule_declining": metrics.evaluate(y, rule, seed=spec.seed)}


def fit(lake: Lake, spec: ModelSpec, as_of: dt.date) -> tuple[Model, dict[str, Any]]:
    """The model fitted on the newest window ending by ``as_of``, and its manifest fields (not saved)."""
    newest = labels.window(lake, spec.label, as_of)
    try:
        earlier = labels.window(lake, spec.label, newest.start)
        validation: dict[str, Any] = validate(spec, earlier, newest)
    except DataError as exc:
        validation = {"not_measured": exc.message}
    model, _, y, _ = fit_window(spec, newest)
    return model, {
        "as_of": as_of.isoformat(), "kind": spec.kind, "label": spec.label.describe(),
        "features": list(spec.features), "training_window": newest.describe(), "seed": spec.seed,
        "data_hash": newest.data_hash(lake), "training_rows": int(len(y)), "training_positives": int(y.sum()),
        "validation": validation,
    }


def fit_and_save(lake: Lake, spec: ModelSpec, as_of: dt.date, actor: str) -> tuple[str, dict[str, Any]]:
    """Fit, then save as the model's next version; return the version and its manifest."""
    model, fields = fit(lake, spec, as_of)
    version = registry.save(lake, model, fields, actor)
    return version, registry.manifest(lake, spec.name, version)
