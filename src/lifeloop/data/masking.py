"""Masking personal data on display (脱敏), by role: the one policy every output obeys.

Every ``C2`` column of :mod:`lifeloop.data.schema`, and every money-valued feature, is masked unless the
viewer's role may see it:

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

Two limits hold for every role, whatever ``config/masking.yaml`` says:

* ``C3`` data (passwords, PINs, CVV) is never shown to anyone (JR/T 0171-2020: C3 is not even stored);
* an account number is never shown beyond the first 6 and last 4 digits of a card number (PCI DSS 3.3):
  a role that sees accounts "unmasked" sees ``622202******5678`` for a card and ``****5678`` for any
  other account number; a role that does not sees ``****5678``. A card number found in any other
  shown text is cut to the same 6 + 4.

The built-in roles (:data:`ROLES`, :data:`DEFAULT_POLICY`): **analyst** and **approver** see every
personal field masked and money banded; **rm** (客户经理) and **branch_manager** (支行行长) see their
customers' names, mobiles, e-mails, birth dates and exact money, never the ID number; **compliance** and
**admin** see everything masked unless they hold an unmask grant (given with a reason, audited), which
:func:`viewer_role` lifts. ``config/masking.yaml`` (:mod:`lifeloop.config.masking`) may redefine a role.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from lifeloop.data.schema import TABLES
from lifeloop.errors import LifeloopError

KINDS = ("name", "mobile", "id_number", "email", "birth_date", "account", "money", "other")
ROLE_NAMES = ("analyst", "approver", "rm", "branch_manager", "compliance", "admin")
SCOPES = ("all", "branch", "own")

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
    """What a viewer may see: which kinds come unmasked, which may be lifted on request, whose customers.

    ``unmasked`` holds the kinds shown as stored (``money``: exact amounts; ``account``: at most the
    first 6 and last 4 of a card number); ``on_request`` the kinds an unmask grant with a reason may
    lift (:func:`viewer_role`); ``scope`` whose customers the role reads (all, its branch, its own book).
    """

    name: str
    unmasked: frozenset[str]
    scope: str = "all"
    on_request: frozenset[str] = frozenset()
    description: str = ""
    granted: frozenset[str] = field(default=frozenset(), compare=False)  # kinds lifted by an unmask grant

    @property
    def own_customers_only(self) -> bool:
        """An RM's book only."""
        return self.scope == "own"

    @property
    def needs_reason(self) -> bool:
        """Whether the role can see more on request, which takes a reason (and is audited)."""
        return bool(self.on_request)

    @property
    def money_exact(self) -> bool:
        """Whether amounts are shown exactly (else as a band such as ``100k-1m``)."""
        return "money" in self.unmasked


_ALL = frozenset(KINDS)
ROLES: dict[str, Role] = {
    "analyst": Role("analyst", frozenset(), description="HQ analyst: every personal field masked, money banded"),
    "approver": Role("approver", frozenset(),
                     description="approver of sends (双人复核): every personal field masked, money banded"),
    "rm": Role("rm", _ALL - {"id_number", "other"}, scope="own",
               description="relationship manager: own customers only; names, mobiles and exact money shown, "
                           "the ID number masked"),
    "branch_manager": Role("branch_manager", _ALL - {"id_number", "other"}, scope="branch",
                           description="branch manager: the branch's customers; names, mobiles and exact money "
                                       "shown, the ID number masked"),
    "compliance": Role("compliance", frozenset(), on_request=_ALL,
                       description="compliance: everything masked unless unmasked on request, with a reason"),
    "admin": Role("admin", frozenset(), on_request=_ALL,
                  description="administrator: everything masked unless unmasked on request, with a reason"),
}


class AccessError(LifeloopError):
    """A viewer asked for something their role does not allow (or did not say why)."""


@dataclass(frozen=True)
class Policy:
    """The roles in force: the built-in ones, or those of ``config/masking.yaml`` over them."""

    roles: Mapping[str, Role]
    source: str = "built-in defaults"

    def role(self, name: str) -> Role:
        """The role called ``name``; unknown names get a 'did you mean'."""
        if name in self.roles:
            return self.roles[name]
        close = difflib.get_close_matches(name, list(self.roles), n=1)
        raise AccessError(f"unknown role {name!r}" + (f"; did you mean {close[0]!r}?" if close else ""),
                          hint=f"roles are: {', '.join(self.roles)} ({self.source})")

    def viewer(self, role_name: str, unmasked_fields: Iterable[str] = frozenset()) -> Role:
        """The effective role of a viewer holding an unmask grant for ``unmasked_fields`` (kinds)."""
        base = self.role(role_name)
        wanted = frozenset(unmasked_fields)
        if not wanted:
            return base
        unknown = sorted(wanted - _ALL)
        if unknown:
            close = difflib.get_close_matches(unknown[0], KINDS, n=1)
            raise AccessError(f"cannot unmask {unknown[0]!r}: not a kind of personal data"
                              + (f"; did you mean {close[0]!r}?" if close else ""),
                              hint=f"kinds are: {', '.join(KINDS)}")
        refused = sorted(wanted - base.on_request - base.unmasked)
        if refused:
            may = ", ".join(sorted(base.on_request)) or "nothing"
            raise AccessError(f"role {base.name} may not unmask {', '.join(refused)}",
                              hint=f"role {base.name} may unmask on request: {may} ({self.source})")
        lifted = wanted - base.unmasked
        return replace(base, unmasked=base.unmasked | wanted, granted=frozenset(lifted))


DEFAULT_POLICY = Policy(ROLES)


def role(name: str, policy: Policy | None = None) -> Role:
    """The role called ``name`` (of ``policy``, default the built-in one); unknown names get a 'did you mean'."""
    return (policy or DEFAULT_POLICY).role(name)


def viewer_role(role_name: str, unmasked_fields: Iterable[str] = frozenset(), policy: Policy | None = None) -> Role:
    """The effective role of a viewer: ``role_name`` with the kinds of an unmask grant lifted.

    Only kinds the role may unmask on request can be lifted (else :class:`AccessError`); whatever is
    lifted, C3 stays hidden and an account number shows at most the first 6 and last 4 of a card.
    """
    return (policy or DEFAULT_POLICY).viewer(role_name, unmasked_fields)


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


# a card number (PAN): 13-19 digits, contiguous or grouped by spaces or dashes
_PAN_SHAPE = re.compile(r"[0-9]{4}(?:[ -]?[0-9]){9,15}")
_PAN_IN_TEXT = re.compile(r"(?<![0-9])[0-9](?:[ -]?[0-9]){12,18}(?![0-9])")


def _pan_digits(text: str) -> str | None:
    """The digits of ``text`` when it looks like a card number (13-19 digits, spaces or dashes allowed)."""
    if not _PAN_SHAPE.fullmatch(text.strip()):
        return None
    digits = re.sub(r"[ -]", "", text)
    return digits if 13 <= len(digits) <= 19 else None


def _first6_last4(digits: str) -> str:
    return digits[:6] + "*" * (len(digits) - 10) + digits[-4:]


def cap_card_numbers(text: str) -> str:
    """``text`` with every card number in it cut to its first 6 and last 4 digits (PCI DSS 3.3)."""
    return _PAN_IN_TEXT.sub(lambda m: _first6_last4(re.sub(r"[ -]", "", m.group(0))), text)


def _last4(text: str) -> str:
    digits = _pan_digits(text)
    text = digits or text
    return "****" + text[-4:] if len(text) > 4 else "*" * len(text)


def account_display(value: Any) -> Any:
    """An account number as shown to a role that sees accounts: a card's first 6 and last 4, else the last 4."""
    if value is None:
        return None
    text = str(value)
    digits = _pan_digits(text)
    return _first6_last4(digits) if digits else _last4(text)


def money_band(value: Any) -> str:
    """An amount as its order of magnitude (<1k, 1k-10k, ..., >=10m); a negative one as ``-(band)``."""
    v = float(value)
    size = abs(v)
    label = ">=10m"
    for top, name in ((1e3, "<1k"), (1e4, "1k-10k"), (1e5, "10k-100k"), (1e6, "100k-1m"), (1e7, "1m-10m")):
        if size < top:
            label = name
            break
    return f"-({label})" if v < 0 else label


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
        return _last4(text)
    return "****"


def show_value(kind: str | None, value: Any, viewer: Role) -> Any:
    """One value as ``viewer`` sees it: masked, or shown within the limits that hold for every role."""
    if kind is not None and kind not in viewer.unmasked:
        return mask_value(kind, value)
    if kind == "account":
        return account_display(value)
    if kind == "money" and isinstance(value, Decimal):
        return value
    if isinstance(value, str) and kind not in (None, "id_number"):
        return cap_card_numbers(value)  # a card number never shows in full, whatever column it sits in
    return value


def mask_row(table: str, row: dict[str, Any], viewer: Role) -> tuple[dict[str, Any], list[str]]:
    """A row with the columns the role may not see masked; also the names of the masked columns.

    C3 columns are dropped; account numbers never show more than a card's first 6 and last 4 digits.
    """
    out, masked = {}, []
    for column, value in row.items():
        if PII.get((table, column)) == "C3":
            continue  # authentication data is never shown
        kind = column_kind(table, column)
        out[column] = show_value(kind, value, viewer)
        if kind is not None and kind not in viewer.unmasked:
            masked.append(column)
    return out, masked


def mask_money(value: Any, viewer: Role) -> Any:
    """A money value outside the canonical tables (a feature such as AUM): exact or banded for the viewer."""
    if value is None or viewer.money_exact:
        return float(value) if isinstance(value, Decimal) else value
    return money_band(value)


def mask_money_values(values: Mapping[str, Any], money: Iterable[str], viewer: Role) -> dict[str, Any]:
    """``values`` with each money-valued entry (names in ``money``) exact or banded for the viewer."""
    money = frozenset(money)
    return {k: (mask_money(v, viewer) if k in money and isinstance(v, (int, float, Decimal)) and
                not isinstance(v, bool) else v) for k, v in values.items()}


_NUMBER = r"-?[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?"


def mask_money_text(text: Any, money: Iterable[str], viewer: Role) -> Any:
    """A ``name=value, ...`` text (an audience's reason) with each money-valued ``name=`` banded for the viewer."""
    names = sorted(frozenset(money), key=len, reverse=True)
    if not isinstance(text, str) or viewer.money_exact or not names:
        return text
    pattern = re.compile(r"(?<![A-Za-z0-9_])(" + "|".join(map(re.escape, names)) + r")=(" + _NUMBER + r")")
    return pattern.sub(lambda m: f"{m.group(1)}={money_band(m.group(2))}", text)


WITHHELD = "<personal data withheld>"


def quotable(table: str, column: str | None, value: Any) -> Any:
    """A value an error message or a warning may quote: the value of a column that identifies a person (name,
    mobile, ID number, e-mail, birth date, other C2) is withheld — the message names file, row and column,
    which is enough to find it. Amounts and account ids are quoted (a card number in them is cut by
    :func:`lifeloop.data.cards.redact_cards`), so a malformed ``30,50`` can still be seen and fixed."""
    if column is None or column_kind(table, column) in (None, "money", "account"):
        return value
    return WITHHELD
