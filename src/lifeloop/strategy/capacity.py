"""Capacity (产能) for one day: strategy limits, relationship-manager tasks, outbound seats, budgets.

A pure ledger: ``check`` says which limit a contact would break (or None), ``take`` books it. The
plan walks candidates in arbitration order, so the most valuable contacts get the scarce slots.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

from lifeloop.config.contact_policy import ContactPolicy
from lifeloop.config.strategies import Strategy
from lifeloop.data.schema import CONTACT_CHANNELS


class DailyCapacity:
    """What is left today, per strategy, per RM, per channel, and of each strategy's budget."""

    def __init__(self, policy: ContactPolicy, strategies: Mapping[str, Strategy],
                 rm_capacity: Mapping[str, int] | None = None, spent: Mapping[str, float] | None = None):
        self.policy = policy
        self.strategies = strategies
        self.rm_capacity = dict(rm_capacity or {})
        self.spent: dict[str, float] = defaultdict(float, spent or {})
        self.by_strategy: dict[str, int] = defaultdict(int)
        self.by_strategy_rm: dict[tuple[str, str], int] = defaultdict(int)
        self.by_channel: dict[str, int] = defaultdict(int)
        self.by_rm: dict[str, int] = defaultdict(int)
        channels = CONTACT_CHANNELS
        self._limits = {ch: self.policy.channel(ch).daily_limit() for ch in channels}
        self._cost = {ch: self.policy.channel(ch).cost for ch in channels}
        self._rm_default = self.policy.channel("rm").per_rm_per_day

    def rm_limit(self, rm_id: str) -> int | None:
        """Tasks an RM can take today: their own capacity from the bank's data, else the channel default."""
        if rm_id in self.rm_capacity and self.rm_capacity[rm_id] is not None:
            return int(self.rm_capacity[rm_id])
        return self._rm_default

    def unlimited(self, strategy: str, channel: str) -> bool:
        """No limit of this ledger can ever refuse a contact of ``strategy`` through ``channel``."""
        s = self.strategies.get(strategy)
        return (s is not None and s.capacity.per_day is None and s.budget is None and channel != "rm"
                and self._limits.get(channel) is None)

    def check(self, strategy: str, channel: str, rm_id: str | None) -> str | None:
        """The limit this contact would exceed, or None when it fits."""
        s = self.strategies[strategy]
        if s.capacity.per_day is not None and self.by_strategy[strategy] >= s.capacity.per_day:
            return "capacity_strategy"
        limit = self._limits.get(channel)
        if limit is not None and self.by_channel[channel] >= limit:
            return "capacity_channel"
        if channel == "rm":
            if not rm_id:
                return "no_rm"   # an RM task needs the customer's own relationship manager
            if (s.capacity.per_rm_per_day is not None
                    and self.by_strategy_rm[(strategy, rm_id)] >= s.capacity.per_rm_per_day):
                return "capacity_strategy_rm"
            rm_limit = self.rm_limit(rm_id)
            if rm_limit is not None and self.by_rm[rm_id] >= rm_limit:
                return "capacity_rm"
        if s.budget is not None and self.spent[strategy] + self._cost[channel] > s.budget + 1e-9:
            return "budget"
        return None

    def take(self, strategy: str, channel: str, rm_id: str | None) -> None:
        """Book one contact."""
        self.by_strategy[strategy] += 1
        self.by_channel[channel] += 1
        if channel == "rm" and rm_id:
            self.by_strategy_rm[(strategy, rm_id)] += 1
            self.by_rm[rm_id] += 1
        self.spent[strategy] += self._cost[channel]
