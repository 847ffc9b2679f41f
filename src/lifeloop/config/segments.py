"""``config/segments.yaml``: value tiers (价值分层), featured groups (特色客群) and micro-segments (微细分).

Tiers partition the tier measure (AUM by default) into ranges ``[min, max)``: every customer is in
exactly one tier. Groups and micro-segments are rules over feature columns; a customer may be in
several. Each group becomes a boolean column ``seg_<name>`` and each micro-segment ``micro_<name>``
in ``lake/segments/``, so a strategy's audience rule can say ``seg_payroll AND tier = 'wealth'``.
"""

from __future__ import annotations

from pydantic import Field, field_validator

from lifeloop.config.lifecycle import check_name, rule_text
from lifeloop.config.models import Strict


class Tier(Strict):
    """One value tier: customers whose measure is in ``[min, max)`` (``max`` empty = no upper bound)."""

    name: str
    zh: str = ""
    label: str = ""
    min: float
    max: float | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return check_name(v, "tier name")


class SegmentRule(Strict):
    """A featured group or micro-segment: the customers for whom ``when`` is true."""

    name: str
    zh: str = ""
    label: str = ""
    when: str
    description: str = ""

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return check_name(v, "segment name")

    @field_validator("when", mode="before")
    @classmethod
    def _when(cls, v: object) -> object:
        return rule_text(v)


class SegmentsConfig(Strict):
    """The whole ``segments.yaml``."""

    version: int = 1
    tier_measure: str = "aum"
    thresholds: dict[str, float] = Field(default_factory=dict)
    tiers: list[Tier] = Field(min_length=1)
    groups: list[SegmentRule] = Field(default_factory=list)
    micro_segments: list[SegmentRule] = Field(default_factory=list)

    @field_validator("thresholds")
    @classmethod
    def _thresholds(cls, v: dict[str, float]) -> dict[str, float]:
        for name in v:
            check_name(name, "threshold name")
        return v
