"""Models on a shelf (模型货架): a contract, a registry in the lake, built-in models and the scores step.

* :mod:`lifeloop.models.contract` — what a model declares (name, kind, label, features, seed) and the
  shared base every model family implements (``fit`` / ``predict`` / ``contributions`` / ``to_json``).
* :mod:`lifeloop.models.labels`   — honest labels: features as of T, outcomes over (T, T+H] from the
  bank's own lifecycle snapshots.
* :mod:`lifeloop.models.churn`    — churn warning (流失预警): a calibrated logistic scorecard over binned
  features whose per-customer contributions add up exactly to the score's log-odds.
* :mod:`lifeloop.models.reasons`  — top reason codes and a banker's words for them.
* :mod:`lifeloop.models.metrics`  — AUC, PR-AUC and top-decile lift with bootstrap intervals.
* :mod:`lifeloop.models.registry` — artefacts under ``lake/models/<name>/<version>/`` and an
  append-only history of fits, promotions and retirements.
* :mod:`lifeloop.models.training` — fit a named model as of D (train on an earlier window, validate out
  of time, refit on the latest window).
* :mod:`lifeloop.models.scores`   — the ``scores`` step: one row per customer per active model.
* :mod:`lifeloop.models.clv`      — customer lifetime value (客户终身价值): BG/NBD and Gamma-Gamma.
"""
