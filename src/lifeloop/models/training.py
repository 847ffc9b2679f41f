"""Fitting a model as of D: validate out of time, then refit on the newest honest window.

Time-based validation (a model-risk reviewer's first question): a model fitted on the window before the
newest one is scored on the newest one, whose outcomes it never saw, next to the rule it should beat
(the lifecycle's ``declining`` stage, 衰退期/流失预警). The model kept is then refitted on the newest
window with the same settings, so it uses the freshest behaviour; the manifest records both windows.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from lifeloop.config.shelf import ModelSpec
from lifeloop.errors import DataError
from lifeloop.models import catalogue, entries, labels, metrics, qini, registry
from lifeloop.models.clv import shelf
from lifeloop.models.contract import Model
from lifeloop.store.lake import Lake

RULE_STAGE = "declining"


def fit_window(spec: ModelSpec, w: labels.Window) -> tuple[Model, Any, Any, Any]:
    """A model fitted on one window, with that window's (X, y, stages)."""
    _, X, y, stages = labels.examples(w, spec.label, spec.features)
    return catalogue.for_spec(spec)(spec).fit(X, y), X, y, stages


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
    if spec.kind == "clv":
        return shelf.fit(lake, spec, as_of)
    if spec.kind != "classifier":
        return fit_offer_model(lake, spec, as_of)
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


# ------------------------------------------------------------------------- response and uplift models
TEST_SHARE = 0.3   # the latest 30% of entries (by entry date) validate a model fitted on the earlier ones


def describe_offer_label(spec: ModelSpec) -> str:
    """What a response or uplift model predicts, in words (kept in the manifest)."""
    what = {"purchased": "buys the offered product", "active": "transacts", "reactivated": "is reactivated",
            "retained": "still holds assets"}[spec.outcome]
    if spec.kind == "response":
        return f"a contacted customer {what} within the strategy's window (offer {spec.offer})"
    return (f"how much a contact raises the chance that the customer {what} within the strategy's window "
            f"(offer {spec.offer}; treated minus control)")


def split_for_validation(ex: entries.Examples) -> tuple[Any, Any, str]:
    """(train rows, test rows, how): the latest ``TEST_SHARE`` of entries by entry date when entries span
    several days and the later part has both arms; otherwise a random ``TEST_SHARE`` of customers (by a
    hash of the customer id, so the split is reproducible), said so in the manifest."""
    import hashlib

    import numpy as np

    order = np.argsort(ex.entry_date, kind="stable")
    cut = ex.entry_date[order[int(len(order) * (1 - TEST_SHARE))]]
    train, test = np.flatnonzero(ex.entry_date < cut), np.flatnonzero(ex.entry_date >= cut)
    if len(train) >= len(ex) // 2 and ex.treated[test].any() and (~ex.treated[test]).any():
        return train, test, f"out of time: entries from {cut} on"
    bucket = np.asarray([int(hashlib.sha256(c.encode()).hexdigest()[:8], 16) % 100 for c in ex.customer_id])
    held = bucket < int(TEST_SHARE * 100)
    return np.flatnonzero(~held), np.flatnonzero(held), \
        "random customers (the entries span too few days for an out-of-time test)"


def validate_offer_model(spec: ModelSpec, ex: entries.Examples) -> dict[str, Any]:
    """Fitted on the earlier entries, measured on the latest ``TEST_SHARE`` (see :func:`split_for_validation`)."""
    import numpy as np

    train, test, how = split_for_validation(ex)
    early, late = ex.take(train), ex.take(test)
    model = catalogue.for_spec(spec)(spec).fit(early.X, early.y, early.treated)
    found: dict[str, Any] = {"method": how, "train": early.describe(), "test": late.describe()}
    if spec.kind == "response":
        t = late.treated
        if len(np.unique(late.y[t])) < 2:
            raise DataError("the treated entries held out for validation all have the same outcome")
        found["model"] = metrics.evaluate(late.y[t], model.predict(late.X[t]), seed=spec.seed)
    else:
        found["model"] = qini.evaluate(late.y, late.treated, model.predict(late.X), seed=spec.seed)
    return found


def fit_offer_model(lake: Lake, spec: ModelSpec, as_of: dt.date) -> tuple[Model, dict[str, Any]]:
    """A response or uplift model fitted on every complete entry of its offer by ``as_of``, validated first."""
    ex = entries.examples(lake, spec, as_of)
    try:
        validation: dict[str, Any] = validate_offer_model(spec, ex)
    except DataError as exc:
        validation = {"not_measured": exc.message}
    model = catalogue.for_spec(spec)(spec).fit(ex.X, ex.y, ex.treated)
    rows = ex.treated if spec.kind == "response" else slice(None)
    return model, {
        "as_of": as_of.isoformat(), "kind": spec.kind, "label": describe_offer_label(spec), "offer": spec.offer,
        "features": list(spec.features), "training_window": ex.describe(), "seed": spec.seed,
        "data_hash": ex.data_hash, "training_rows": int(len(ex.y[rows])), "training_positives": int(ex.y[rows].sum()),
        "validation": validation,
    }
