"""``config/segments.yaml``: value tiers (价值分层), featured groups (特色客群) and micro-segments (微细分).

Tiers partition the tier measure (AUM by default) into ranges ``[min, max)``: every customer is in
exactly one tier. Groups and micro-segments are rules over feature columns; a customer may be in
several. Each group becomes a boolean column ``seg_<name>`` and each micro-segment ``micro_<name>``
in ``lake/segments/``, so a strategy's audience rule can say ``seg_payroll AND tier = 'wealth'``.
"""

from __future__ import annotations

from pydantic import Field

from lifeloop.config.models import Strict
from lifeloop.config.types import Name, RuleText, Thresholds


class Tier(Strict):
    """One value tier: customers whose measure is in ``[min, max)`` (``max`` empty = no upper bound)."""

    name: Name("tier name")
    zh: str = ""
    label: str = ""
    min: float
    max: float | None = None


class SegmentRule(Strict):
    """A featured group or micro-segment: the customers for whom ``when`` is true."""

    name: Name("segment name")
    zh: str = ""
    label: str = ""
    when: RuleText
    description: str = ""


class SegmentsConfig(Strict):
    """The whole ``segments.yaml``."""

    version: int = 1
    tier_measure: str = "aum"
    thresholds: Thresholds = Field(default_factory=dict)
    tiers: list[Tier] = Field(min_length=1)
    groups: list[SegmentRule] = Field(default_factory=list)
    micro_segments: list[SegmentRule] = Field(default_factory=list)
