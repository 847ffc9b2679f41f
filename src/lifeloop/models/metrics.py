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


def auc(y: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve (ties count half)."""
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, score))


def pr_auc(y: np.ndarray, score: np.ndarray) -> float:
    """Average precision (area under the precision-recall curve)."""
    from sklearn.metrics import average_precision_score

    return float(average_precision_score(y, score))


def top_decile_lift(y: np.ndarray, score: np.ndarray) -> float:
    """Positive rate of the top 10% by score over the overall positive rate (ties broken by order)."""
    import numpy as np

    n = max(1, int(np.ceil(len(y) / 10)))
    top = np.argsort(-score, kind="stable")[:n]
    return float(y[top].mean() / y.mean())


def evaluate(y: np.ndarray, score: np.ndarray, reps: int = 200, seed: int = 0) -> dict[str, Any]:
    """AUC, PR-AUC and top-decile lift with 95% bootstrap intervals, and the counts they rest on."""
    import numpy as np

    y = np.asarray(y, int)
    score = np.asarray(score, float)
    stats = {"auc": auc, "pr_auc": pr_auc, "top_decile_lift": top_decile_lift}
    out: dict[str, Any] = {"customers": int(len(y)), "positives": int(y.sum()), "base_rate": float(y.mean())}
    rng = np.random.default_rng(seed)
    draws: dict[str, list[float]] = {k: [] for k in stats}
    for _ in range(reps):
        i = rng.integers(0, len(y), len(y))
        if 0 < y[i].sum() < len(i):
            for k, f in stats.items():
                draws[k].append(f(y[i], score[i]))
    for k, f in stats.items():
        lo, hi = np.percentile(draws[k], [2.5, 97.5]) if draws[k] else (float("nan"), float("nan"))
        out[k] = {"value": round(f(y, score), 4), "ci95": [round(float(lo), 4), round(float(hi), 4)]}
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
