"""``config/lifecycle.yaml``: lifecycle stages (客户生命周期) and the ordered rules that assign them.

A customer's stage on an as-of date is decided by the first rule (in file order) whose condition is
true; the last rule must be a catch-all (``when: "true"``) so every customer gets exactly one stage.
Thresholds are named numbers that rules use like columns, so a bank changes "180 days" in one place.
"""

from __future__ import annotations

from pydantic import Field, field_validator

from lifeloop.config.models import Strict
from lifeloop.config.types import Name, RuleText, Thresholds

# names a rule may use besides feature columns and thresholds (from the previous lifecycle snapshot)
HISTORY_COLUMNS = {"previous_stage": "VARCHAR", "days_in_stage": "INTEGER"}


class Stage(Strict):
    """One lifecycle stage as people see it (name in English and Chinese, what it means)."""

    name: Name("stage name")
    zh: str = ""
    label: str = ""
    description: str = ""


class StageRule(Strict):
    """One ordered rule: when ``when`` is true (and no earlier rule was), the customer is in ``stage``."""

    rule: Name("rule name")
    stage: str
    when: RuleText
    description: str = ""


class LifecycleConfig(Strict):
    """The whole ``lifecycle.yaml``: thresholds, stages (display order) and rules (decision order)."""

    version: int = 1
    thresholds: Thresholds = Field(default_factory=dict)
    stages: list[Stage] = Field(min_length=1)
    rules: list[StageRule] = Field(min_length=1)

    @field_validator("thresholds")
    @classmethod
    def _not_history(cls, v: dict[str, float]) -> dict[str, float]:
        for name in v:
            if name in HISTORY_COLUMNS:
                raise ValueError(f"threshold name {name!r} is reserved for the stage history")
        return v

    def stage(self, name: str) -> Stage | None:
        """The stage called ``name``, if defined."""
        return next((s for s in self.stages if s.name == name), None)
