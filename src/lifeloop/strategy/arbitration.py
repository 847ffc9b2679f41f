"""Arbitration (策略仲裁): when a customer qualifies for several strategies, who goes first.

Order: higher priority first, then higher expected value, then a stable hash (never the customer
number, which would favour old customers). Expected value of a contact through a channel is, until
review learns it from the evidence, the configured prior: uplift(channel) x value - channel cost.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lifeloop.config.contact_policy import ContactPolicy
from lifeloop.config.strategies import Strategy

if TYPE_CHECKING:
    import pyarrow as pa


def expected_value(strategy: Strategy, channel: str, policy: ContactPolicy) -> float:
    """Prior uplift x value of a success - the channel's unit cost (RMB)."""
    return round(strategy.expected.uplift_for(channel) * strategy.expected.value - policy.channel(channel).cost, 6)


def order(candidates: "pa.Table") -> list[int]:
    """Row indices in arbitration order: priority desc, best expected value desc, draw, ids."""
    import pyarrow.compute as pc

    idx = pc.sort_indices(candidates, sort_keys=[("priority", "descending"), ("best_value", "descending"),
                                                 ("tie", "ascending"), ("customer_id", "ascending"),
                                                 ("strategy", "ascending"), ("wave", "ascending")])
    return idx.to_pylist()
