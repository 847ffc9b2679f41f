"""Scripts (话术): sandboxed Jinja2 templates over a whitelist of customer variables.

A script may only name the variables in :data:`SCRIPT_VARIABLES`; the
check runs when the map is loaded, so a typo fails before anything is sent. Rendering uses a
``SandboxedEnvironment`` with ``StrictUndefined`` (no attribute tricks, no silent blanks), and every
personal value is masked before it reaches the template.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

# Variables a script (话术) may use. Personal ones (C2) are masked when rendered, so a script cannot
# put a full name or an amount in an SMS by accident. name -> (personal?, what it is)
SCRIPT_VARIABLES: dict[str, tuple[bool, str]] = {
    "customer_name": (True, "customer's name, masked (王**)"),
    "title": (False, "先生 / 女士 (Mr / Ms) from gender"),
    "rm_name": (False, "the relationship manager's name (staff, not personal)"),
    "branch_name": (False, "the home branch"),
    "product_name": (False, "the offered product's name"),
    "offer_code": (False, "the offer code"),
    "days_to_maturity": (False, "days until the next maturity"),
    "maturing_amount": (True, "amount maturing within 30 days, rounded to 10,000s (约 5 万)"),
    "holiday_name": (False, "today's holiday, if any"),
    "bank_name": (False, "the bank's name (lifeloop.yaml)"),
}
LANGUAGES = ("zh", "en")


@lru_cache(maxsize=1)
def environment():
    """The one sandboxed Jinja2 environment (no autoescape: scripts are plain text)."""
    from jinja2 import StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    return SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)


def template_problems(text: str) -> list[str]:
    """What is wrong with a script template: syntax errors and variables outside the whitelist."""
    from jinja2 import TemplateSyntaxError, meta

    env = environment()
    try:
        ast = env.parse(text)
    except TemplateSyntaxError as exc:
        return [f"template syntax error on its line {exc.lineno}: {exc.message}"]
    out = []
    for name in sorted(meta.find_undeclared_variables(ast)):
        if name not in SCRIPT_VARIABLES:
            close = difflib.get_close_matches(name, list(SCRIPT_VARIABLES), n=1)
            out.append(f"variable {name!r} is not allowed in scripts"
                       + (f"; did you mean {close[0]!r}?" if close else ""))
    return out


def template_variables(text: str) -> set[str]:
    """The variables a script template names (empty when it does not parse; template_problems says why)."""
    from jinja2 import TemplateSyntaxError, meta

    try:
        return set(meta.find_undeclared_variables(environment().parse(text)))
    except TemplateSyntaxError:
        return set()


def script_id(strategy_id: str, channel: str, cell: str | None = None) -> str:
    """The id of a strategy's script for a channel (``honeymoon_welcome.sms``; a cell's own: ``s.cell_b.sms``)."""
    return f"{strategy_id}.{cell}.{channel}" if cell else f"{strategy_id}.{channel}"


def mask_name(name: str | None) -> str:
    """王小明 -> 王**; Alice Smith -> A****; empty stays empty (C2: never show a full name in a message)."""
    if not name:
        return ""
    return name[0] + "*" * max(1, len(name) - 1) if len(name) > 1 else name + "*"


def round_amount(value: Any) -> str:
    """An amount rounded to 10,000s as people say it (约 5 万 / about 50,000): never the exact balance."""
    if value is None:
        return ""
    wan = round(float(value) / 10000)
    return f"{max(wan, 1)}万"


def customer_variables(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The whitelisted, masked variables for one customer from raw values (name, gender, amounts ...)."""
    gender = raw.get("gender")
    out = {
        "customer_name": mask_name(raw.get("customer_name")),
        "title": {"M": "先生", "F": "女士"}.get(gender or "", ""),
        "maturing_amount": round_amount(raw.get("maturing_amount")),
    }
    for name in SCRIPT_VARIABLES:
        if name not in out:
            value = raw.get(name)
            out[name] = "" if value is None else value
    return out


def render(text: str, variables: Mapping[str, Any]) -> str:
    """Render a script with already-masked variables (only whitelisted names are passed in)."""
    safe = {k: v for k, v in variables.items() if k in SCRIPT_VARIABLES}
    return _compiled(text).render(**safe)


@lru_cache(maxsize=1024)
def _compiled(text: str):
    """A script compiled once (compiling costs milliseconds; a day's contacts share a few scripts)."""
    return environment().from_string(text)
