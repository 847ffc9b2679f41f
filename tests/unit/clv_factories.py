"""Simulated customers for the CLV tests, drawn from the BG/NBD and Gamma-Gamma models at known parameters."""

from __future__ import annotations

import numpy as np


def simulate_bgnbd(n: int, r: float, alpha: float, a: float, b: float, *, t_min: float, t_max: float,
                   seed: int) -> dict[str, np.ndarray]:
    """(frequency, recency, T) of n customers from the BG/NBD story (FHL 2005, section 2), drawn exactly.

    lambda ~ Gamma(r, alpha), p ~ Beta(a, b); ages T uniform in [t_min, t_max]. A customer dies after the
    N-th repeat purchase, N ~ Geometric(p); K ~ Poisson(lambda T) purchases would fall in (0, T] while
    alive, so x = min(N, K), and given K the x-th purchase time is T times the x-th of K uniform order
    statistics, a Beta(x, K - x + 1) draw.
    """
    rng = np.random.default_rng(seed)
    lam = rng.gamma(r, 1 / alpha, n)
    p = rng.beta(a, b, n)
    age = rng.uniform(t_min, t_max, n)
    dies_after = rng.geometric(p)
    would_buy = rng.poisson(lam * age)
    x = np.minimum(dies_after, would_buy)
    recency = np.where(x > 0, age * rng.beta(np.maximum(x, 1), would_buy - x + 1), 0.0)
    return {"frequency": x.astype(float), "recency": recency, "T": age}


def simulate_gamma_gamma(n: int, p: float, q: float, gamma: float, *, mean_repeats: float,
                         seed: int) -> dict[str, np.ndarray]:
    """(frequency, monetary_value) of n repeat buyers: nu ~ Gamma(q, gamma), z ~ Gamma(p, nu) (FHL 2005b).

    Repeats x ~ Geometric(1 / mean_repeats) (many one-repeat customers, some frequent: the spread of x is
    what identifies p). The sum of x Gamma(p, nu) values is Gamma(p x, nu), so the mean is drawn in one go.
    """
    rng = np.random.default_rng(seed)
    x = rng.geometric(1 / mean_repeats, n)
    nu = rng.gamma(q, 1 / gamma, n)
    mean = rng.gamma(p * x, 1 / nu) / x
    return {"frequency": x.astype(float), "monetary_value": mean}
