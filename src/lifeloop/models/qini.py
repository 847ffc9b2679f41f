"""How well a score ranks *uplift* (增量): the Qini curve and coefficient and the area under the uplift curve.

A response score is judged by whom it finds who buys; an uplift score by whom it finds who buys *because*
of the contact. Neither is observed per customer, only per group, so the curves are computed from a
randomised treated and control group (Lifeloop's holdout). Customers are sorted by score, highest first;
customers with the same score are taken together (so the curves do not depend on the order of ties). At
the first k customers, with N_t(k), N_c(k) treated and control customers of whom Y_t(k), Y_c(k) converted:

* **Qini curve** (Radcliffe, 2007, "Using control groups to target on predicted lift"):
  ``Q(k) = Y_t(k) - Y_c(k) * N_t(k) / N_c(k)``, the incremental conversions among the treated targeted so far;
* **uplift curve** (Rzepakowski & Jaroszewicz, 2012; the "uplift curve" of causalml and scikit-uplift):
  ``U(k) = (Y_t(k) / N_t(k) - Y_c(k) / N_c(k)) * k``, the incremental conversions had all k been treated.

An arm with nobody in it yet counts a rate of 0 (scikit-uplift's convention). Both curves are drawn over
the share targeted x = k / N with y divided by N (incremental conversions per customer of the whole base),
and integrated by trapezoids:

* **Qini coefficient** = area under the Qini curve minus the area under random targeting (the straight
  line from 0 to Q(N)); 0 for a score that ranks no better than chance, negative for one that ranks backwards;
* **AUUC** = area under the uplift curve, and ``auuc_vs_random`` the same minus random targeting's area.

Intervals are percentile bootstraps over customers with a fixed seed, like :mod:`lifeloop.models.metrics`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lifeloop.errors import DataError

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class Curves:
    """The cut points (k, with 0 first) and the Qini and uplift curves at each, in conversions."""

    k: np.ndarray
    qini: np.ndarray
    uplift: np.ndarray
    n: int

    @property
    def share(self) -> np.ndarray:
        """x: the share of customers targeted at each cut."""
        return self.k / self.n


def curves(y: np.ndarray, treated: np.ndarray, score: np.ndarray) -> Curves:
    """Qini and uplift curves at every distinct score (ties taken together), starting at (0, 0)."""
    import numpy as np

    y, t, s = _arrays(y, treated, score)
    order = np.argsort(-s, kind="stable")
    y, t, s = y[order], t[order], s[order]
    # the last position of each run of equal scores: the curves are only read at those cuts
    ends = np.flatnonzero(np.r_[s[1:] != s[:-1], True])
    n_t, n_c = np.cumsum(t)[ends], np.cumsum(1 - t)[ends]
    y_t, y_c = np.cumsum(y * t)[ends], np.cumsum(y * (1 - t))[ends]
    rate_t = np.divide(y_t, n_t, out=np.zeros(len(ends)), where=n_t > 0)
    rate_c = np.divide(y_c, n_c, out=np.zeros(len(ends)), where=n_c > 0)
    k = (ends + 1).astype(float)
    qini = y_t - np.divide(y_c * n_t, n_c, out=np.zeros(len(ends)), where=n_c > 0)
    return Curves(np.r_[0.0, k], np.r_[0.0, qini], np.r_[0.0, (rate_t - rate_c) * k], len(y))


def _area(x: np.ndarray, v: np.ndarray) -> float:
    import numpy as np

    return float(np.sum((x[1:] - x[:-1]) * (v[1:] + v[:-1]) / 2))


def qini_coefficient(y: np.ndarray, treated: np.ndarray, score: np.ndarray) -> float:
    """Area between the Qini curve and random targeting, per customer (0 = no better than chance)."""
    c = curves(y, treated, score)
    return _area(c.share, c.qini / c.n) - c.qini[-1] / c.n / 2


def auuc(y: np.ndarray, treated: np.ndarray, score: np.ndarray) -> float:
    """Area under the uplift curve, per customer."""
    c = curves(y, treated, score)
    return _area(c.share, c.uplift / c.n)


def auuc_vs_random(y: np.ndarray, treated: np.ndarray, score: np.ndarray) -> float:
    """AUUC minus the area random targeting would have (half the whole base's uplift)."""
    c = curves(y, treated, score)
    return _area(c.share, c.uplift / c.n) - c.uplift[-1] / c.n / 2


def uplift_at(y: np.ndarray, treated: np.ndarray, score: np.ndarray, share: float) -> float:
    """Measured uplift (treated rate minus control rate) among the top ``share`` of customers by score."""
    import numpy as np

    y, t, s = _arrays(y, treated, score)
    top = np.argsort(-s, kind="stable")[:max(1, int(round(share * len(s))))]
    if t[top].sum() == 0 or (1 - t[top]).sum() == 0:
        return float("nan")
    return float(y[top][t[top] == 1].mean() - y[top][t[top] == 0].mean())


def evaluate(y: np.ndarray, treated: np.ndarray, score: np.ndarray, reps: int = 200, seed: int = 0
             ) -> dict[str, Any]:
    """Qini coefficient, AUUC (vs random) and the top-30% uplift with 95% bootstrap intervals."""
    import numpy as np

    y, t, s = _arrays(y, treated, score)
    stats = {"qini": qini_coefficient, "auuc": auuc, "auuc_vs_random": auuc_vs_random,
             "uplift_top30": lambda a, b, c: uplift_at(a, b, c, 0.3)}
    out: dict[str, Any] = {"customers": int(len(y)), "treated": int(t.sum()), "control": int(len(t) - t.sum()),
                           "treated_rate": float(y[t == 1].mean()) if t.any() else None,
                           "control_rate": float(y[t == 0].mean()) if (t == 0).any() else None}
    rng = np.random.default_rng(seed)
    draws: dict[str, list[float]] = {k: [] for k in stats}
    for _ in range(reps):
        i = rng.integers(0, len(y), len(y))
        for k, f in stats.items():
            draws[k].append(f(y[i], t[i], s[i]))
    for k, f in stats.items():
        d = np.asarray(draws[k])
        d = d[~np.isnan(d)]
        lo, hi = np.percentile(d, [2.5, 97.5]) if d.size else (float("nan"), float("nan"))
        out[k] = {"value": round(f(y, t, s), 6), "ci95": [round(float(lo), 6), round(float(hi), 6)]}
    return out


def _arrays(y: Any, treated: Any, score: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    import numpy as np

    y, t, s = np.asarray(y, float), np.asarray(treated, int), np.asarray(score, float)
    if not len(y) == len(t) == len(s):
        raise DataError(f"outcome, treatment and score have different lengths ({len(y)}, {len(t)}, {len(s)})")
    if len(y) == 0:
        raise DataError("no customers to evaluate", hint="evaluate on a list with treated and control customers")
    if not set(np.unique(t)) <= {0, 1}:
        raise DataError("the treatment column must be 0/1 (1 = treated, 0 = control)")
    if np.isnan(s).any():
        raise DataError(f"{int(np.isnan(s).sum())} scores are missing", hint="score every customer evaluated")
    return y, t, s
