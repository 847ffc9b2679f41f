"""How well a score ranks an outcome: AUC, PR-AUC and top-decile lift, with bootstrap intervals.

AUC is the Mann-Whitney probability that a positive outranks a negative (ties count half; Hanley &
McNeil, 1982); PR-AUC is average precision; top-decile lift is the positive rate among the top 10% by
score over the overall rate. Intervals are percentile bootstraps over customers (Efron & Tibshirani,
1993, ch. 13) with a fixed seed, so a manifest's figures are reproducible.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np


def _ranked(score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The order of descending scores, and where each run of tied scores ends in it (its last position)."""
    import numpy as np

    score = np.asarray(score, float)
    order = np.argsort(-score, kind="stable")
    return order, np.r_[np.flatnonzero(np.diff(score[order])), len(score) - 1]


def _counts(y: np.ndarray, weight: np.ndarray | None, order: np.ndarray, ends: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray]:
    """Positives and negatives at or above each distinct score (customers counted ``weight`` times)."""
    import numpy as np

    y = np.asarray(y, float)[order]
    w = np.ones(len(y)) if weight is None else np.asarray(weight, float)[order]
    return np.cumsum(w * y)[ends], np.cumsum(w * (1.0 - y))[ends]


def _auc(tps: np.ndarray, fps: np.ndarray) -> float:
    import numpy as np

    n1, n0 = tps[-1], fps[-1]
    if n1 == 0 or n0 == 0:
        raise ValueError("AUC needs both positives and negatives")
    d_tp, d_fp = np.diff(np.r_[0.0, tps]), np.diff(np.r_[0.0, fps])
    # each run of tied scores: its positives beat every negative ranked below it, and half of its own negatives
    return float(np.sum(d_tp * ((n0 - fps) + d_fp / 2.0)) / (n1 * n0))


def _average_precision(tps: np.ndarray, fps: np.ndarray) -> float:
    import numpy as np

    if tps[-1] == 0:
        return 0.0
    seen = tps + fps                 # 0 above the first drawn customer of a bootstrap sample: no recall gained there
    precision = np.divide(tps, seen, out=np.zeros_like(tps), where=seen > 0)
    return float(np.sum(np.diff(np.r_[0.0, tps / tps[-1]]) * precision))


def auc(y: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve (ties count half): the Mann-Whitney U of the positives over n1 x n0 — the same
    figure as scikit-learn's ``roc_auc_score`` (tested), from one sort."""
    return _auc(*_counts(y, None, *_ranked(score)))


def pr_auc(y: np.ndarray, score: np.ndarray) -> float:
    """Average precision: over distinct scores, highest first, the recall gained x the precision there — the same
    figure as scikit-learn's ``average_precision_score`` (tested), from one sort."""
    return _average_precision(*_counts(y, None, *_ranked(score)))


def top_decile_lift(y: np.ndarray, score: np.ndarray) -> float:
    """Positive rate of the top 10% by score over the overall positive rate (ties broken by order)."""
    import numpy as np

    n = max(1, int(np.ceil(len(y) / 10)))
    top = np.argsort(-score, kind="stable")[:n]
    return float(y[top].mean() / y.mean())


def evaluate(y: np.ndarray, score: np.ndarray, reps: int = 200, seed: int = 0) -> dict[str, Any]:
    """AUC, PR-AUC and top-decile lift with 95% bootstrap intervals, and the counts they rest on.

    A bootstrap sample is the customers drawn with replacement; AUC and PR-AUC of a sample are those of every
    customer counted as often as drawn, so they are computed from the one sort of all scores with the draw's
    counts as weights (the same figures as sorting each sample; the bootstrap is hundreds of samples)."""
    import numpy as np

    y = np.asarray(y, int)
    score = np.asarray(score, float)
    order, ends = _ranked(score)
    out: dict[str, Any] = {"customers": int(len(y)), "positives": int(y.sum()), "base_rate": float(y.mean())}
    rng = np.random.default_rng(seed)
    draws: dict[str, list[float]] = {"auc": [], "pr_auc": [], "top_decile_lift": []}
    for _ in range(reps):
        i = rng.integers(0, len(y), len(y))
        if 0 < y[i].sum() < len(i):
            counts = _counts(y, np.bincount(i, minlength=len(y)), order, ends)
            draws["auc"].append(_auc(*counts))
            draws["pr_auc"].append(_average_precision(*counts))
            draws["top_decile_lift"].append(top_decile_lift(y[i], score[i]))
    whole = _counts(y, None, order, ends)
    values = {"auc": _auc(*whole), "pr_auc": _average_precision(*whole), "top_decile_lift": top_decile_lift(y, score)}
    for k, value in values.items():
        lo, hi = np.percentile(draws[k], [2.5, 97.5]) if draws[k] else (float("nan"), float("nan"))
        out[k] = {"value": round(value, 4), "ci95": [round(float(lo), 4), round(float(hi), 4)]}
    return out


def lift_table(y: np.ndarray, score: np.ndarray, groups: int = 10) -> list[dict[str, Any]]:
    """Per tenth of customers by score (highest first): customers, positives, rate, lift, cumulative capture."""
    import numpy as np

    order = np.argsort(-np.asarray(score, float), kind="stable")
    y = np.asarray(y, int)[order]
    base = y.mean()
    total = y.sum()
    out, captured = [], 0
    for i, part in enumerate(np.array_split(np.arange(len(y)), groups), start=1):
        k = int(y[part].sum())
        captured += k
        rate = k / len(part) if len(part) else float("nan")
        out.append({"decile": i, "customers": int(len(part)), "positives": k, "rate": rate,
                    "lift": rate / base if base else float("nan"),
                    "cumulative_capture": captured / total if total else float("nan")})
    return out
