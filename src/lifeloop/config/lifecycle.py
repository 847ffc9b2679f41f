"""``config/lifecycle.yaml``: lifecycle stages (客户生命周期) and the ordered rules that assign them.

A customer's stage on an as-of date is decided by the first rule (in file order) whose condition is
true; the last rule must be a catch-all (``when: "true"``) so every customer gets exactly one stage.
Thresholds are named numbers that rules use like columns, so a bank changes "180 days" in one place.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field, field_validator

from lifeloop.config.models import Strict

NAME = re.compile(r"^[a-z][a-z0-9_]*$")
# names a rule may use besides feature columns and thresholds (from the previous lifecycle snapshot)
HISTORY_COLUMNS = {"previous_stage": "VARCHAR", "days_in_stage": "INTEGER"}


def check_name(value: str, what: str) -> str:
    """A lower_snake_case identifier (it becomes a column value or a column name)."""
    if not NAME.match(value):
        raise ValueError(f"{what} {value!r} must be lower_snake_case (letters, digits, _), starting with a letter")
    return value


def rule_text(value: Any) -> Any:
    """YAML ``true`` (unquoted) means the catch-all; keep every rule as text."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, (int, float)):
        return str(value)
    return value


class Stage(Strict):
    """One lifecycle stage as people see it (name in English and Chinese, what it means)."""

    name: str
    zh: str = ""
    label: str = ""
    description: str = ""

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return check_name(v, "stage name")


class StageRule(Strict):
    """One ordered rule: when ``when`` is true (and no earlier rule was), the customer is in ``stage``."""

    rule: str
    stage: str
    when: str
    description: str = ""

    @field_validator("rule")
    @classmethod
    def _rule(cls, v: str) -> str:
        return check_name(v, "rule name")

    @field_validator("when", mode="before")
    @classmethod
    def _when(cls, v: Any) -> Any:
        return rule_text(v)


class LifecycleConfig(Strict):
    """The whole ``lifecycle.yaml``: thresholds, stages (display order) and rules (decision order)."""

    version: int = 1
    thresholds: dict[str, float] = Field(default_factory=dict)
    stages: list[Stage] = Field(min_length=1)
    rules: list[StageRule] = Field(min_length=1)

    @field_validator("thresholds")
    @classmethod
    def _thresholds(cls, v: dict[str, float]) -> dict[str, float]:
        for name in v:
            check_name(name, "threshold name")
            if name in HISTORY_COLUMNS:
                raise ValueError(f"threshold name {name!r} is reserved for the stage history")
        return v

    def stage(self, name: str) -> Stage | None:
        """The stage called ``name``, if defined."""
        return next((s for s in self.stages if s.name == name), None)
