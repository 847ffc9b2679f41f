"""The estimators Lifeloop can fit and load, by the name kept in a model's manifest."""

from __future__ import annotations

from lifeloop.models import boosted, churn, uplift
from lifeloop.models.contract import Model, ModelSpec

ESTIMATORS: dict[str, type[Model]] = {**churn.ESTIMATORS, **boosted.ESTIMATORS, **uplift.ESTIMATORS}

# a spec's (kind, estimator) -> the class that fits it
BY_SPEC: dict[tuple[str, str], str] = {("classifier", "scorecard"): "scorecard", ("classifier", "hgb"): "hgb",
                                       ("response", "hgb"): "response_hgb",
                                       ("uplift", "t_learner"): "t_learner", ("uplift", "x_learner"): "x_learner"}


def for_spec(spec: ModelSpec) -> type[Model]:
    """The estimator class of a declared model."""
    return ESTIMATORS[BY_SPEC[(spec.kind, spec.estimator)]]
