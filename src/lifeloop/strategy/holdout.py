"""Holdout (对照组): a customer is in a strategy's control group by a hash, not by a random draw.

draw(customer, strategy, salt) = the first 8 bytes of SHA-256("customer|strategy|salt") read as a
big-endian unsigned 64-bit integer, divided by 2^64: a number in [0, 1). The customer is control when
draw < holdout share. It is computed in Python over Arrow (after the engine has found the audience),
so DuckDB and Spark runs give identical groups by construction, re-runs give identical groups, and
anyone can recompute "why was this customer in control?" with three lines of any language.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

TWO_64 = float(1 << 64)


def draw(customer_id: str, strategy_id: str, salt: str) -> float:
    """The customer's stable position in [0, 1) for this strategy and salt."""
    digest = hashlib.sha256(f"{customer_id}|{strategy_id}|{salt}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / TWO_64


def draws(customer_ids: Iterable[str], strategy_ids: Iterable[str] | str, salt: str) -> list[float]:
    """Draws for many (customer, strategy) pairs (one strategy for all, or one per customer)."""
    sha, frm = hashlib.sha256, int.from_bytes
    if isinstance(strategy_ids, str):
        tail = f"|{strategy_ids}|{salt}".encode()
        return [frm(sha(c.encode() + tail).digest()[:8], "big") / TWO_64 for c in customer_ids]
    return [frm(sha(f"{c}|{s}|{salt}".encode()).digest()[:8], "big") / TWO_64
            for c, s in zip(customer_ids, strategy_ids, strict=True)]


def is_control(customer_id: str, strategy_id: str, salt: str, share: float) -> bool:
    """True when the customer is held out of this strategy (control group)."""
    return draw(customer_id, strategy_id, salt) < share


def control_mask(values: Sequence[float], share: float) -> list[bool]:
    """Control flags for precomputed draws."""
    return [v < share for v in values]
