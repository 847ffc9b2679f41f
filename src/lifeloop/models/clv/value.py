"""Customer lifetime value (客户终身价值) from a fitted BG/NBD and Gamma-Gamma pair, and the per-customer score table.

CLV over a horizon is a discounted sum of expected residual margin, in discrete steps:

    CLV = margin * E(M) * sum_{i=1..n} [E[Y(i s)] - E[Y((i-1) s)]] / (1 + d)^(i s)

with E[Y(t)] the BG/NBD conditional expectation (FHL 2005 eq. 10), E(M) the Gamma-Gamma expected spend
(FHL 2005b), s the step and n s the horizon in model periods (weeks for CDNOW), and d the discount rate
*per period*, each step's purchases discounted at the step's end. It is the standard discounted-sum form
of CLV (Gupta et al. 2006, "Modeling Customer Lifetime Value", J. Service Research 9(2)) evaluated with the
BG/NBD; it approaches the continuous DERT of Fader, Hardie & Lee (2005b) as s -> 0. Spend and purchase
counts are taken as independent, the Gamma-Gamma model's own assumption.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from lifeloop.errors import ConfigError, Problem
from lifeloop.models.clv.base import columns
from lifeloop.models.clv.bgnbd import BetaGeoModel
from lifeloop.models.clv.gamma_gamma import GammaGammaModel

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

PERIODS_PER_YEAR = {"days": 365.25, "weeks": 365.25 / 7}
_RFM = ("frequency", "recency", "T", "monetary_value")


def per_period_rate(annual_rate: float, units: str = "weeks") -> float:
    """The per-period discount rate equivalent to an annual one: (1 + annual)^(1/periods per year) - 1."""
    if units not in PERIODS_PER_YEAR:
        raise ConfigError(f"Unknown time unit {units!r}", hint=f"use one of {', '.join(PERIODS_PER_YEAR)}")
    return (1 + annual_rate) ** (1 / PERIODS_PER_YEAR[units]) - 1


def customer_lifetime_value(transactions: BetaGeoModel, spend: GammaGammaModel, frequency: Any, recency: Any,
                            T: Any, monetary_value: Any, *, horizon: float, discount_rate: float,
                            margin: float = 1.0, step: float = 1.0) -> np.ndarray:
    """Discounted expected value per customer over ``horizon`` periods (see the module's formula)."""
    import numpy as np

    _check_options(horizon=horizon, discount_rate=discount_rate, step=step)
    x, t_x, age = (np.asarray(v, dtype=float) for v in (frequency, recency, T))
    n_steps = math.ceil(horizon / step - 1e-9)
    ends = np.minimum(np.arange(1, n_steps + 1) * step, horizon)
    value = np.zeros_like(x)
    before = np.zeros_like(x)
    for end in ends:
        cumulative = transactions.expected_transactions(float(end), x, t_x, age)
        value += (cumulative - before) / (1 + discount_rate) ** end
        before = cumulative
    return margin * spend.expected_spend(x, monetary_value) * value


def score_customers(summary: Any, transactions: BetaGeoModel, spend: GammaGammaModel, *, t: float,
                    horizon: float, discount_rate: float, margin: float = 1.0, step: float = 1.0) -> pa.Table:
    """One row per customer: expected purchases in the next ``t`` periods, P(alive), expected spend, CLV."""
    import pyarrow as pa

    cols = columns(summary, _RFM)
    x, t_x, age, m = (cols[k] for k in _RFM)
    names = list(summary.column_names) if hasattr(summary, "column_names") else list(summary)
    ids = [c for c in names if c not in _RFM and not c.endswith("_holdout")][:1]
    predicted = transactions.predict(summary, t=t)
    out = {ids[0]: summary[ids[0]]} if ids else {}
    out |= {"expected_transactions": pa.array(predicted["expected_transactions"]),
            "p_alive": pa.array(predicted["p_alive"]),
            "expected_spend": pa.array(spend.expected_spend(x, m)),
            "clv": pa.array(customer_lifetime_value(transactions, spend, x, t_x, age, m, horizon=horizon,
                                                    discount_rate=discount_rate, margin=margin, step=step))}
    return pa.table(out)


def _check_options(*, horizon: float, discount_rate: float, step: float) -> None:
    problems = []
    if not (horizon > 0 and math.isfinite(horizon)):
        problems.append(Problem(f"horizon {horizon} is not a positive number of periods", field="horizon"))
    if not (step > 0 and math.isfinite(step)):
        problems.append(Problem(f"step {step} is not a positive number of periods", field="step"))
    if not (discount_rate > -1 and math.isfinite(discount_rate)):
        problems.append(Problem(f"discount rate {discount_rate} is not above -1", field="discount_rate"))
    if problems:
        raise ConfigError("Invalid CLV options", problems=problems,
                          hint="horizon and step in model periods (weeks for CDNOW); the rate per period, "
                               "e.g. per_period_rate(0.10) for 10% a year")
