"""Gamma-Gamma: a customer's expected spend per transaction, shrinking the observed mean toward the population's.

Fader, Hardie & Lee (2005b), "RFM and CLV: Using Iso-Value Curves for Customer Base Analysis", Journal of
Marketing Research 42(4): 415-430, section "Adding Monetary Value"; the likelihood as written in Fader &
Hardie (2013), "The Gamma-Gamma Model of Monetary Value" (FH 2013). Each transaction's value
z_i ~ Gamma(p, nu); across customers nu ~ Gamma(q, gamma). Inputs per customer: x = frequency (repeat
purchases) and m_x = monetary_value (their mean value). Fitted on customers with x > 0 only: the first
purchase is excluded from m_x, so a customer without repeats carries no spend information (FH 2013).
The model assumes spend is independent of frequency; the fit records their correlation for review.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from lifeloop.models.clv.base import ClvModel, check, columns

if TYPE_CHECKING:
    import numpy as np


class GammaGammaModel(ClvModel):
    """Gamma-Gamma (FHL 2005b, FH 2013): expected average spend per transaction per customer."""

    name = "gamma_gamma"
    param_names = ("p", "q", "gamma")
    inputs = ("frequency", "monetary_value")

    @staticmethod
    def _log_likelihood_terms(params: Sequence[float], *, frequency: np.ndarray,
                              monetary_value: np.ndarray) -> np.ndarray:
        """The FH 2013 likelihood in logs, for a customer with x transactions of mean m_x:

        ln L = ln G(px+q) - ln G(px) - ln G(q) + q ln gamma + (px-1) ln m_x + px ln x - (px+q) ln(gamma + m_x x)
        """
        import numpy as np
        from scipy.special import gammaln

        p, q, gamma = params
        x, m = frequency, monetary_value
        px = p * x
        return (gammaln(px + q) - gammaln(px) - gammaln(q) + q * np.log(gamma) + (px - 1) * np.log(m)
                + px * np.log(x) - (px + q) * np.log(gamma + m * x))

    @classmethod
    def _validate(cls, cols: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import numpy as np

        x, m = cols["frequency"], cols["monetary_value"]
        check((x < 0) | (x != np.floor(x)), "are not a whole number of repeat purchases >= 0", "frequency")
        check((x > 0) & (m <= 0), "have a repeat purchase but a mean spend <= 0", "monetary_value",
              hint="the Gamma-Gamma model needs positive spend: drop zero-value or net-refund customers first")
        keep = x > 0
        return {k: v[keep] for k, v in cols.items()}

    @classmethod
    def _diagnostics(cls, cols: dict[str, np.ndarray]) -> dict[str, Any]:
        import numpy as np

        x, m = cols["frequency"], cols["monetary_value"]
        corr = float(np.corrcoef(x, m)[0, 1]) if len(x) > 2 and x.std() > 0 and m.std() > 0 else float("nan")
        return {"fitted_on": "customers with frequency > 0", "corr_frequency_monetary": corr}

    def mean_spend(self) -> float:
        """The population mean spend per transaction, E(Z) = p gamma / (q - 1) (FHL 2005b; finite for q > 1)."""
        p, q, gamma = (self.params[k] for k in self.param_names)
        return p * gamma / (q - 1) if q > 1 else float("inf")

    def expected_spend(self, frequency: Any, monetary_value: Any) -> np.ndarray:
        """E(M | p, q, gamma, m_x, x) = p (gamma + m_x x) / (p x + q - 1): the conditional expectation of FHL 2005b
        and FH 2013.

        A weighted mean of the population mean p gamma / (q-1) and the customer's observed m_x, weighted
        toward m_x as x grows; a customer with x = 0 gets the population mean.
        """
        import numpy as np

        p, q, gamma = (self.params[k] for k in self.param_names)
        x = np.asarray(frequency, dtype=float)
        m = np.where(x > 0, np.asarray(monetary_value, dtype=float), 0.0)
        return p * (gamma + m * x) / (p * x + q - 1)

    def predict(self, summary: Any, **options: Any) -> dict[str, np.ndarray]:
        """Per customer (every row, including those without repeats): expected spend per transaction."""
        cols = columns(summary, self.inputs)
        return {"expected_spend": self.expected_spend(cols["frequency"], cols["monetary_value"])}
