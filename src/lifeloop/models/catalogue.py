"""The estimators Lifeloop can fit and load, by the name kept in a model's manifest: built in, or plugged in.

**Plug-ins** (hot-plug): a package adds an estimator without any change to Lifeloop by declaring an entry
point in group ``lifeloop.models`` — ``my_logit = my_package.models:MyLogit`` — whose class subclasses
:class:`lifeloop.models.contract.Model`, sets ``estimator = "my_logit"`` and implements ``fit(X, y)``,
``predict(X)`` (calibrated probabilities), ``to_json()`` and ``from_json(spec, data)``; ``contributions``
and ``reason_codes``/``bin_text`` are optional (without them its scores carry no reason codes). A model
declared with ``estimator: my_logit`` in config/models.yaml is then fitted on honest labels, validated,
saved as JSON, promoted and scored by the daily ``scores`` step like a built-in classifier.
"""

from __future__ import annotations

from lifeloop.config.shelf import PLUGIN_GROUP, ModelSpec
from lifeloop.errors import DataError
from lifeloop.models import boosted, churn, lightgbm, uplift
from lifeloop.models.clv import shelf
from lifeloop.models.contract import Model

BUILT_IN: dict[str, type[Model]] = {**churn.ESTIMATORS, **boosted.ESTIMATORS, **lightgbm.ESTIMATORS,
                                    **uplift.ESTIMATORS, **shelf.ESTIMATORS}
ESTIMATORS = BUILT_IN   # the built-in ones; :func:`estimators` adds the plug-ins

# a spec's (kind, estimator) -> the class that fits it
BY_SPEC: dict[tuple[str, str], str] = {("classifier", "scorecard"): "scorecard", ("classifier", "hgb"): "hgb",
                                       ("classifier", "lightgbm"): "lightgbm",
                                       ("response", "hgb"): "response_hgb",
                                       ("uplift", "t_learner"): "t_learner", ("uplift", "x_learner"): "x_learner",
                                       ("clv", "bg_nbd_gamma_gamma"): "bg_nbd_gamma_gamma"}


def plugins() -> dict[str, type[Model]]:
    """Estimators installed by other packages (entry point group ``lifeloop.models``), loaded and checked."""
    from importlib.metadata import entry_points

    found: dict[str, type[Model]] = {}
    for ep in entry_points(group=PLUGIN_GROUP):
        where = f"plug-in {ep.name!r} ({ep.value}" + (f", package {ep.dist.name}" if ep.dist else "") + ")"
        try:
            cls = ep.load()
        except Exception as exc:  # noqa: BLE001 - any import failure of foreign code is reported the same way
            raise DataError(f"{where} cannot be loaded: {type(exc).__name__}: {exc}",
                            hint="fix or uninstall the package that declares it") from None
        if not (isinstance(cls, type) and issubclass(cls, Model)):
            raise DataError(f"{where} is not a subclass of lifeloop.models.contract.Model",
                            hint="point the entry point at the model class")
        if getattr(cls, "estimator", None) != ep.name:
            raise DataError(f"{where}: its class says estimator = {getattr(cls, 'estimator', None)!r}, the entry "
                            f"point is named {ep.name!r}", hint="use the same name in both places")
        if ep.name in BUILT_IN:
            raise DataError(f"{where} takes the name of a built-in estimator", hint="rename the entry point")
        found[ep.name] = cls
    return found


def plugin_origin(estimator: str) -> dict[str, str] | None:
    """The package (and its version) that provides a plugged-in estimator; None for a built-in one."""
    from importlib.metadata import entry_points

    if estimator in BUILT_IN:
        return None
    for ep in entry_points(group=PLUGIN_GROUP, name=estimator):
        return {"entry_point": ep.value, "package": ep.dist.name if ep.dist else "unknown",
                "package_version": ep.dist.version if ep.dist else "unknown"}
    return None


def estimators() -> dict[str, type[Model]]:
    """Built-in and plugged-in estimators by name."""
    return {**BUILT_IN, **plugins()}


def for_spec(spec: ModelSpec) -> type[Model]:
    """The estimator class of a declared model."""
    key = BY_SPEC.get((spec.kind, spec.estimator))
    if key is not None:
        return BUILT_IN[key]
    found = plugins()
    if spec.estimator not in found:
        raise DataError(f"model {spec.name}: estimator {spec.estimator!r} is not installed",
                        hint=f"install the package that provides it (entry point group {PLUGIN_GROUP!r})")
    return found[spec.estimator]
