"""Masking personal data on display (脱敏), by role.

Every ``C2`` column of :mod:`lifeloop.data.schema` is masked unless the viewer's role may see it:

=============  ======================  ==========================
kind           example                 masked
=============  ======================  ==========================
name           张小明 / Zhang Wei      张*明 / Z*******i
mobile         13812341234             138****1234
id_number      110101199001011234      110***********1234
email          alice@example.com       a***@example.com
birth_date     1990-05-01              1990 (the year only)
account        6222020012345678        ****5678
money          123,456.78              100k-1m (an order of magnitude)
other C2       anything                ****
=============  ======================  ==========================

``C3`` data (passwords, PINs) is never shown to anyone. Roles: **analyst** sees everything masked;
**rm** (客户经理) sees their own customers unmasked except the ID number; **compliance** and
**admin** see everything but must give a reason, which is recorded with the access.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from lifeloop.data.schema import TABLES
from lifeloop.errors import LifeloopError

KINDS = ("name", "mobile", "id_number", "email", "birth_date", "account", "money", "other")

# canonical (table, column) -> masking kind; any other C2 column is "other" (fully hidden)
COLUMN_KINDS: dict[tuple[str, str], str] = {
    ("customers", "name"): "name",
    ("customers", "mobile"): "mobile",
    ("customers", "id_number"): "id_number",
    ("customers", "email"): "email",
    ("customers", "birth_date"): "birth_date",
    ("holdings", "account_id"): "account",
    ("holdings", "balance"): "money",
    ("transactions", "account_id"): "account",
    ("transactions", "amount"): "money",
    ("transactions", "balance_after"): "money",
}


@dataclass(frozen=True)
class Role:
    """What a viewer may see: which kinds come unmasked, whether only their own book, whether a reason is due."""

    name: str
    unmasked: frozenset[str]
    own_customers_only: bool = False
    needs_reason: bool = False
    description: str = ""


ROLES: dict[str, Role] = {
    "analyst": Role("analyst", frozenset(), description="HQ analyst: every personal field masked"),
    "rm": Role("rm", frozenset(KINDS) - {"id_number"}, own_customers_only=True,
               description="relationship manager: own customers only, unmasked except the ID number"),
    "compliance": Role("compliance", frozenset(KINDS), needs_reason=True,
                       description="compliance: unmasked, a reason is required and recorded"),
    "admin": Role("admin", frozenset(KINDS), needs_reason=True,
                  description="administrator: unmasked, a reason is required and recorded"),
}


class AccessError(LifeloopError):
    """A viewer asked for something their role does not allow (or did not say why)."""


def role(name: str) -> Role:
    """The role called ``name``; unknown names get a 'did you mean'."""
    if name in ROLES:
        return ROLES[name]
    import difflib

    close = difflib.get_close_matches(name, ROLES, n=1)
    raise AccessError(f"unknown role {name!r}" + (f"; did you mean {close[0]!r}?" if close else ""),
                      hint=f"roles are: {', '.join(ROLES)}")


# (table, column) -> personal-data class, looked up once per cell of every export and worklist row
PII = {(t.name, c.name): c.pii for t in TABLES.values() for c in t.columns}


def column_kind(table: str, column: str) -> str | None:
    """The masking kind of a canonical column (None: not personal data, shown as is)."""
    if (table, column) in COLUMN_KINDS:
        return COLUMN_KINDS[(table, column)]
    if PII.get((table, column)) in ("C2", "C3"):
        return "other"
    return None


def _keep(text: str, head: int, tail: int) -> str:
    if len(text) <= head + tail:
        # too short to show both ends without revealing it all: show the last character at most
        return "*" * (len(text) - 1) + text[-1:] if len(text) > 1 else "*"
    return text[:head] + "*" * (len(text) - head - tail) + text[len(text) - tail:]


def money_band(value: Any) -> str:
    """An amount as its order of magnitude (<1k, 1k-10k, ..., >=10m)."""
    v = abs(float(value))
    for top, label in ((1e3, "<1k"), (1e4, "1k-10k"), (1e5, "10k-100k"), (1e6, "100k-1m"), (1e7, "1m-10m")):
        if v < top:
            return label
    return ">=10m"


def mask_value(kind: str, value: Any) -> Any:
    """The masked form of one value (None stays None)."""
    if value is None:
        return None
    if kind == "birth_date":
        return value.year if isinstance(value, (dt.date, dt.datetime)) else str(value)[:4]
    if kind == "money":
        return money_band(value)
    text = str(value)
    if not text:
        return text
    if kind == "name":
        if len(text) == 2:
            return text[0] + "*"
        return _keep(text, 1, 1)
    if kind == "mobile":
        return _keep(text, 3, 4)
    if kind == "id_number":
        return _keep(text, 3, 4)
    if kind == "email":
        local, at, domain = text.partition("@")
        return (local[:1] + "***" + at + domain) if at else _keep(text, 1, 0)
    if kind == "account":
        return "****" + text[-4:] if len(text) > 4 else "*" * len(text)
    return "****"


def mask_row(table: str, row: dict[str, Any], viewer: Role) -> tuple[dict[str, Any], list[str]]:
    """A row with the columns the role may not see masked; also the names of the masked columns."""
    out, masked = {}, []
    for column, value in row.items():
        kind = column_kind(table, column)
        if PII.get((table, column)) == "C3":
            continue  # authentication data is never shown
        if kind is not None and kind not in viewer.unmasked:
            out[column] = mask_value(kind, value)
            masked.append(column)
        else:
            out[column] = value
    return out, masked


def mask_money(value: Any, viewer: Role) -> Any:
    """A money value outside the canonical tables (a feature such as AUM), masked like a balance."""
    if value is None or "money" in viewer.unmasked:
        return float(value) if isinstance(value, Decimal) else value
    return money_band(value)
