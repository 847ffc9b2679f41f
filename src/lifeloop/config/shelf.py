"""The model shelf's configuration (``config/models.yaml``): the models declared and the words for their reasons.

Config like every other file, so any layer may read which models exist and of what kind (segments measure
tiers by ``score('clv')``, audiences select by ``score('churn')``); fitting and scoring live in
``lifeloop.models``, whose contract (``models/contract.py``) re-exports these names.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from lifeloop.config.models import Strict
from lifeloop.errors import ConfigError

# the features the churn warning reads by default (names of config/tags.yaml's default catalogue)
CHURN_FEATURES = (
    "days_since_last_txn", "frequency_30d", "frequency_90d", "monetary_90d", "aum", "aum_change_pct_90d",
    "net_flow_30d", "salary_months_3m", "payroll_flag", "products_held", "product_lines",
    "app_logins_30d", "days_since_last_login", "tenure_days", "age",
)


class LabelSpec(Strict):
    """The label as a rule over a future window of the bank's own data.

    ``positive`` when the customer's lifecycle stage becomes one of ``stages`` on any lifecycle snapshot
    dated in (T, T + horizon_days]; customers already in one of ``stages`` or ``exclude`` at T are not
    scored in training (they cannot *become* churned).
    """

    source: Literal["lifecycle"] = "lifecycle"
    stages: tuple[str, ...] = ("dormant", "churned")
    horizon_days: int = Field(90, ge=7, le=730)
    exclude: tuple[str, ...] = ("prospect",)

    def describe(self) -> str:
        """The label in words (kept in the manifest)."""
        return f"stage becomes {' or '.join(self.stages)} within {self.horizon_days} days"


class ReasonWords(Strict):
    """A banker's words for one feature's reason code, in Chinese and English."""

    zh: str
    en: str


class BoostingSpec(Strict):
    """Settings of scikit-learn's HistGradientBoosting estimators (small, regularised trees by default)."""

    max_iter: int = Field(100, ge=1, le=2000)
    learning_rate: float = Field(0.05, gt=0, le=1)
    max_depth: int = Field(3, ge=1, le=12)
    min_samples_leaf: int = Field(40, ge=1)
    l2_regularization: float = Field(1.0, ge=0)
    threads: int | None = Field(None, ge=1)      # OpenMP threads while fitting (default: every core)


class ClvSpec(Strict):
    """A CLV model's settings (``kind: clv``): what is counted, over which horizon, and what it is worth.

    The bank's measured quantity is its customers' **customer-initiated debit transactions** (money the
    customer moves out through the bank: card payments, transfers, purchases; ``txn_types`` narrows them;
    interest, fees and other system postings are never counted). BG/NBD counts them (one per customer and
    day), Gamma-Gamma models their amount, and ``clv`` is the expected debit volume over the next
    ``horizon_days``, discounted at ``discount_rate`` a year, times ``margin`` (the bank's income per RMB
    of that volume; with the default 1 the value is discounted volume in RMB, not profit).
    """

    horizon_days: int = Field(365, ge=28, le=3650)
    discount_rate: float = Field(0.10, ge=0, lt=1)   # a year
    margin: float = Field(1.0, gt=0)                  # income per RMB of debit volume (1: volume itself)
    txn_types: tuple[str, ...] = ()                   # empty: every customer-initiated debit


PLUGIN_GROUP = "lifeloop.models"


def plugin_names() -> list[str]:
    """Estimators installed by other packages: the names in entry point group ``lifeloop.models``."""
    from importlib.metadata import entry_points

    return sorted({ep.name for ep in entry_points(group=PLUGIN_GROUP)})


# which estimators each kind of model can use
ESTIMATORS_OF_KIND = {"classifier": ("scorecard", "hgb", "lightgbm"), "response": ("hgb",),
                      "uplift": ("t_learner", "x_learner"), "clv": ("bg_nbd_gamma_gamma",)}
OUTCOMES = ("purchased", "active", "reactivated", "retained")


class ModelSpec(Strict):
    """One model on the shelf: which built-in estimator, what it predicts, from which features.

    ``kind``: ``classifier`` (a label read from lifecycle snapshots, e.g. churn), ``response`` (the
    probability that a contacted customer converts to ``offer``) or ``uplift`` (how much a contact raises
    that probability, learnt from treated and control entries); these two read ``lake/outcomes``;
    ``clv`` (BG/NBD and Gamma-Gamma on the bank's transactions, settings in ``clv``; no features).
    """

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    kind: Literal["classifier", "response", "uplift", "clv"] = "classifier"
    estimator: str = "scorecard"                 # built in (ESTIMATORS_OF_KIND) or a plug-in's entry point
    label: LabelSpec = LabelSpec()
    offer: str | None = None                     # response and uplift: the offer (product id or code)
    outcome: Literal[OUTCOMES] = "purchased"     # type: ignore[valid-type]  # response and uplift
    features: tuple[str, ...] = CHURN_FEATURES
    bins: int = Field(5, ge=2, le=20)
    regularisation: float = Field(1.0, gt=0)       # inverse L2 strength of the logistic fit (sklearn's C)
    boosting: BoostingSpec = BoostingSpec()
    clv: ClvSpec = ClvSpec()                     # kind clv only
    seed: int = 7
    description: str = ""

    @model_validator(mode="before")
    @classmethod
    def _default_estimator_of_kind(cls, data: Any) -> Any:
        if isinstance(data, dict) and "estimator" not in data and data.get("kind") in ESTIMATORS_OF_KIND:
            data = {**data, "estimator": ESTIMATORS_OF_KIND[data["kind"]][0]}
        if isinstance(data, dict) and data.get("kind") == "clv" and "features" not in data:
            data = {**data, "features": ()}     # a CLV model reads transactions, not the features snapshot
        return data

    @model_validator(mode="after")
    def _estimator_fits_kind(self) -> ModelSpec:
        allowed = ESTIMATORS_OF_KIND[self.kind]
        if self.estimator not in allowed:
            plugins = plugin_names()
            if self.kind == "classifier" and self.estimator in plugins:
                return self
            built_in = {e for kind in ESTIMATORS_OF_KIND.values() for e in kind}
            if self.estimator in built_in:
                raise ValueError(f"a {self.kind} model cannot use estimator {self.estimator!r}; "
                                 f"use one of: {', '.join(allowed)}")
            raise ValueError(f"unknown estimator {self.estimator!r}; built in for a {self.kind} model: "
                             f"{', '.join(allowed)}; plug-ins installed (entry point group {PLUGIN_GROUP!r}): "
                             f"{', '.join(sorted(plugins)) or 'none'}")
        if self.kind in ("response", "uplift") and not self.offer:
            raise ValueError(f"a {self.kind} model needs the offer it is about (offer: PRODUCT_ID or CODE)")
        return self


class ModelsConfig(Strict):
    """``config/models.yaml``: the models of the shelf and the words for their reason codes."""

    version: int = 1
    models: tuple[ModelSpec, ...] = (ModelSpec(name="churn", description="churn warning (流失预警)"),)
    reasons: dict[str, ReasonWords] = Field(default_factory=dict)

    def spec(self, name: str) -> ModelSpec:
        """The declared model called ``name`` (a ConfigError naming the known ones otherwise)."""
        for m in self.models:
            if m.name == name:
                return m
        known = ", ".join(m.name for m in self.models) or "none"
        raise ConfigError(f"no model called {name!r} in config/models.yaml", hint=f"declared models: {known}")
