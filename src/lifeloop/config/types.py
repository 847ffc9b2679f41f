"""Field types the config models share: names and ids, rule text, named thresholds.

Each is a pydantic ``Annotated`` type, so a model says what a field *is* (``when: RuleText``) instead of
repeating a validator, and every file gives the same message for the same mistake::

    class Stage(Strict):
        name: Name("stage name")          # lower_snake_case, the message says "stage name 'X' must be ..."

    class StageRule(Strict):
        when: RuleText                    # YAML ``true`` (unquoted) is kept as the text "true"

    class LifecycleConfig(Strict):
        thresholds: Thresholds            # {name: number}, every name lower_snake_case
"""

from __future__ import annotations

import re
from functools import partial
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator

NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def check_name(value: str, what: str) -> str:
    """A lower_snake_case identifier (it becomes a column value or a column name)."""
    if not NAME.match(value):
        raise ValueError(f"{what} {value!r} must be lower_snake_case (letters, digits, _), starting with a letter")
    return value


def Name(what: str) -> Any:  # a capitalised function: it is used as a type, like pydantic's constr()
    """A lower_snake_case name or id; ``what`` ("stage name", "wave id") starts the error message."""
    return Annotated[str, AfterValidator(partial(check_name, what=what))]


def rule_text(value: Any) -> Any:
    """YAML ``true`` (unquoted) means the catch-all; keep every rule as text."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, (int, float)):
        return str(value)
    return value


def check_thresholds(value: dict[str, float]) -> dict[str, float]:
    """Every threshold name is lower_snake_case (rules use it like a column)."""
    for name in value:
        check_name(name, "threshold name")
    return value


# a rule over columns (``aum >= wealth_min AND stage = 'mature'``); checked later, against the columns it may use
RuleText = Annotated[str, BeforeValidator(rule_text)]
# named numbers rules use like columns, so a bank changes "180 days" in one place
Thresholds = Annotated[dict[str, float], AfterValidator(check_thresholds)]
