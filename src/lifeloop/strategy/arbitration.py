"""Arbitration (策略仲裁): when a customer qualifies for several strategies, who goes first.

``contact_policy.yaml`` ``arbitration.rank_by``:

* ``value`` (default): priority *class* first (``priority // class_size``: with 100, the default
  map's priorities 30..90 are one class and a regulatory or service strategy at 900 stays ahead),
  then expected incremental value, best channel first;
* ``priority``: priority, then expected value (the ordering before value-based arbitration).

Then a stable hash (never the customer number, which would favour old customers) and ids. Expected
value of a contact through a channel = expected uplift x value of a success - the channel's cost;
the uplift is the configured prior moved toward review's evidence (see learning.py). The plan walks
candidates in this order across the whole book, so scarce capacity (relationship managers' daily
tasks, outbound seats, budgets) goes to the most valuable contacts first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lifeloop.config.contact_policy import Arbitration, ContactPolicy
from lifeloop.config.strategies import Strategy

if TYPE_CHECKING:
    import pyarrow as pa


def expected_value(strategy: Strategy, channel: str, policy: ContactPolicy) -> float:
    """Prior uplift x value of a success - the channel's unit cost (RMB)."""
    return round(strategy.expected.uplift_for(channel) * strategy.expected.value - policy.channel(channel).cost, 6)


def priority_class(priority: int, settings: Arbitration) -> int:
    """The class a priority falls in (``rank_by: priority``: the priority itself)."""
    return priority // settings.class_size if settings.rank_by == "value" else priority


def order(candidates: pa.Table, settings: Arbitration | None = None) -> list[int]:
    """Row indices in arbitration order: class (or priority) desc, best expected value desc, draw, ids."""
    import pyarrow as pa
    import pyarrow.compute as pc

    settings = settings or Arbitration()
    rank = pc.cast(candidates["priority"], pa.int64())
    if settings.rank_by == "value" and settings.class_size > 1:
        # integer division (priorities are 0..1000, never negative)
        rank = pc.divide(rank, pa.scalar(settings.class_size, pa.int64()))
    keyed = pa.table({"rank": rank, "best_value": candidates["best_value"], "tie": candidates["tie"],
                      "customer_id": candidates["customer_id"], "strategy": candidates["strategy"],
                      "wave": candidates["wave"]})
    idx = pc.sort_indices(keyed, sort_keys=[("rank", "descending"), ("best_value", "descending"),
                                            ("tie", "ascending"), ("customer_id", "ascending"),
                                            ("strategy", "ascending"), ("wave", "ascending")])
    return idx.to_pylist()
