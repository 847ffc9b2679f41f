"""Field types the config models share: names and ids, rule text, named thresholds, times of day.

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
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, ValidationInfo

NAME = re.compile(r"^[a-z][a-z0-9_]*$")
TIME = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
# validation context key: accept badly spelt names, so a file whose only schema errors are names can still
# be cross-checked (``lifeloop check`` reports the name errors from the strict pass; nothing else uses it)
LENIENT_NAMES = "lenient_names"


def _lenient(info: ValidationInfo) -> bool:
    return bool(info.context and info.context.get(LENIENT_NAMES))


def check_name(value: str, what: str) -> str:
    """A lower_snake_case identifier (it becomes a column value or a column name)."""
    if not NAME.match(value):
        raise ValueError(f"{what} {value!r} must be lower_snake_case (letters, digits, _), starting with a letter")
    return value


def Name(what: str) -> Any:  # a capitalised function: it is used as a type, like pydantic's constr()
    """A lower_snake_case name or id; ``what`` ("stage name", "wave id") starts the error message."""

    def valid(value: str, info: ValidationInfo) -> str:
        return value if _lenient(info) else check_name(value, what)

    return Annotated[str, AfterValidator(valid)]


def rule_text(value: Any) -> Any:
    """YAML ``true`` (unquoted) means the catch-all; keep every rule as text."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, (int, float)):
        return str(value)
    return value


def check_thresholds(value: dict[str, float], info: ValidationInfo) -> dict[str, float]:
    """Every threshold name is lower_snake_case (rules use it like a column)."""
    for name in value if not _lenient(info) else ():
        check_name(name, "threshold name")
    return value


# a rule over columns (``aum >= wealth_min AND stage = 'mature'``); checked later, against the columns it may use
RuleText = Annotated[str, BeforeValidator(rule_text)]
# named numbers rules use like columns, so a bank changes "180 days" in one place
Thresholds = Annotated[dict[str, float], AfterValidator(check_thresholds)]


def TimeOfDay(example: str, what: str | None = None) -> Any:  # used as a type, like Name()
    """A local time of day, HH:MM on a 24-hour clock (send times, quiet hours, replay time)."""

    def check(value: str) -> str:
        if not TIME.match(value):
            raise ValueError(f"{what + ' ' if what else ''}{value!r} must be a time HH:MM, e.g. {example}")
        return value

    return Annotated[str, AfterValidator(check)]
