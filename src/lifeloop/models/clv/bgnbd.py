"""BG/NBD: how many purchases a customer will make, and whether the customer is still active (P(alive)).

Fader, Hardie & Lee (2005), "Counting Your Customers the Easy Way: An Alternative to the Pareto/NBD
Model", Marketing Science 24(2): 275-284 (FHL 2005). While active, a customer buys at Poisson rate
lambda ~ Gamma(r, alpha); after each repeat purchase the customer drops out with probability
p ~ Beta(a, b). Inputs per customer: x = frequency (repeat purchases), t_x = recency (time of the last
repeat purchase since the first purchase), T = age (time since the first purchase), all in one time
unit (weeks for CDNOW).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from lifeloop.models.clv.base import ClvModel, check, columns

if TYPE_CHECKING:
    import numpy as np


class BetaGeoModel(ClvModel):
    """BG/NBD (FHL 2005): expected repeat purchases in the next t periods and P(alive) per customer."""

    name = "bg_nbd"
    param_names = ("r", "alpha", "a", "b")
    inputs = ("frequency", "recency", "T")

    @staticmethod
    def _log_likelihood_terms(params: Sequence[float], *, frequency: np.ndarray, recency: np.ndarray,
                              T: np.ndarray) -> np.ndarray:
        """FHL 2005 eq. (6) in logs: ln L = A1 + ln(exp(A2) + delta(x>0) exp(A3)), added with logaddexp.

        A1 = ln G(r+x) - ln G(r) + r ln alpha
        A2 = ln B(a, b+x) - ln B(a, b) - (r+x) ln(alpha+T)
        A3 = ln B(a+1, b+x-1) - ln B(a, b) - (r+x) ln(alpha+t_x)      (only when x > 0)
        (the same split as FHL's note "Implementing the BG/NBD Model for Customer Base Analysis in Excel").
        """
        import numpy as np
        from scipy.special import betaln, gammaln

        r, alpha, a, b = params
        x, t_x = frequency, recency
        a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
        a2 = betaln(a, b + x) - betaln(a, b) - (r + x) * np.log(alpha + T)
        repeat = x > 0
        a3 = np.full_like(x, -np.inf)
        xr = x[repeat]
        a3[repeat] = betaln(a + 1, b + xr - 1) - betaln(a, b) - (r + xr) * np.log(alpha + t_x[repeat])
        return a1 + np.logaddexp(a2, a3)

    @classmethod
    def _validate(cls, cols: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import numpy as np

        x, t_x, T = cols["frequency"], cols["recency"], cols["T"]
        check((x < 0) | (x != np.floor(x)), "are not a whole number of repeat purchases >= 0", "frequency")
        check(t_x < 0, "are negative", "recency")
        check(t_x > T + 1e-9, "are later than the customer's age T", "recency",
              hint="recency is the time of the last repeat purchase since the first purchase, so at most T")
        check((x == 0) & (t_x != 0), "have recency > 0 without a repeat purchase", "recency",
              hint="a customer with frequency 0 has recency 0 (rfm_summary's convention)")
        return cols

    # -- predictions (FHL 2005) --------------------------------------------------------------------------
    def expected_transactions(self, t: float, frequency: Any, recency: Any, T: Any) -> np.ndarray:
        """Expected repeat purchases in the next ``t`` periods given (x, t_x, T): FHL 2005 eq. (10).

        E[Y(t) | x, t_x, T] = (a+b+x-1)/(a-1) * [1 - ((alpha+T)/(alpha+T+t))^(r+x)
                                                 * 2F1(r+x, b+x; a+b+x-1; t/(alpha+T+t))]
                              / (1 + delta(x>0) * a/(b+x-1) * ((alpha+T)/(alpha+t_x))^(r+x))
        Valid for a != 1 (at a < 1 both the ratio and the bracket are negative).
        """
        import numpy as np
        from scipy.special import hyp2f1

        r, alpha, a, b = (self.params[p] for p in self.param_names)
        x, t_x, T = (np.asarray(v, dtype=float) for v in (frequency, recency, T))
        head = (a + b + x - 1) / (a - 1)
        z = t / (alpha + T + t)
        bracket = 1 - np.exp((r + x) * np.log((alpha + T) / (alpha + T + t))) * hyp2f1(r + x, b + x, a + b + x - 1, z)
        return head * bracket * self.p_alive(x, t_x, T)

    def p_alive(self, frequency: Any, recency: Any, T: Any) -> np.ndarray:
        """P(still active at T | x, t_x, T): Fader, Hardie & Lee (2008), "Computing P(alive) Using the BG/NBD Model".

        It is the reciprocal of the denominator of FHL 2005 eq. (10):
        P(alive) = 1 / (1 + delta(x>0) * a/(b+x-1) * ((alpha+T)/(alpha+t_x))^(r+x)); exactly 1 when x = 0,
        since in the BG/NBD a customer can only drop out right after a repeat purchase.
        """
        import numpy as np

        r, alpha, a, b = (self.params[p] for p in self.param_names)
        x, t_x, T = (np.asarray(v, dtype=float) for v in (frequency, recency, T))
        repeat = x > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            log_odds = np.log(a) - np.log(b + x - 1) + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x))
        # 1 / (1 + exp(log_odds)) without overflow for a long-lapsed frequent buyer
        return np.where(repeat, np.exp(-np.logaddexp(0.0, np.where(repeat, log_odds, 0.0))), 1.0)

    def expected_transactions_new(self, t: Any) -> np.ndarray:
        """Expected repeat purchases of a new customer in (0, t]: FHL 2005 eq. (9).

        E[X(t)] = (a+b-1)/(a-1) * [1 - (alpha/(alpha+t))^r * 2F1(r, b; a+b-1; t/(alpha+t))]
        """
        import numpy as np
        from scipy.special import hyp2f1

        r, alpha, a, b = (self.params[p] for p in self.param_names)
        t = np.asarray(t, dtype=float)
        return (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * hyp2f1(r, b, a + b - 1, t / (alpha + t)))

    def predict(self, summary: Any, *, t: float = 1.0) -> dict[str, np.ndarray]:
        """Per customer: expected repeat purchases in the next ``t`` periods and P(alive)."""
        cols = self._validate(columns(summary, self.inputs))
        x, t_x, T = cols["frequency"], cols["recency"], cols["T"]
        return {"expected_transactions": self.expected_transactions(t, x, t_x, T), "p_alive": self.p_alive(x, t_x, T)}
