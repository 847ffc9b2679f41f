"""``config/masking.yaml`` (optional): who sees which personal data unmasked, as a strict model.

Without the file the built-in roles of :mod:`lifeloop.data.masking` hold. A role named in the file is
defined there in full (what is not said is masked); a role left out keeps its built-in definition::

    version: 1
    roles:
      rm:
        show: [name, mobile, email, birth_date, account]   # kinds shown unmasked
        money: exact                                        # exact | banded (an order of magnitude)
        unmask_on_request: []                               # kinds an unmask grant (with a reason) may lift
      compliance:
        show: []
        money: banded
        unmask_on_request: [name, mobile, id_number, email, birth_date, account, money]

Limits no file can lift, refused with file, line and field: C3 data (PINs, passwords, CVV, tracks) is
shown to no one, and no kind shows a full card number — ``account`` shows at most a card's first 6 and
last 4 digits (PCI DSS 3.3). The roles themselves (and whose customers each reads) are fixed.
"""

from __future__ import annotations

import difflib
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field

from lifeloop.config.models import Strict
from lifeloop.data.masking import KINDS, ROLE_NAMES, ROLES, Policy, Role

FILE = "masking"
SHOWABLE = tuple(k for k in KINDS if k != "money")  # money is said with ``money: exact | banded``

# words that ask for authentication data (C3) or a whole card number: refused with the rule they break
_C3_WORDS = {"c3", "pin", "password", "passcode", "cvv", "cvv2", "cvc", "cvn", "track", "track_data",
             "card_expiry", "expiry", "otp", "biometric", "fingerprint", "密码", "磁道", "校验码"}
_PAN_WORDS = {"pan", "full_pan", "card_number", "card", "full_account", "account_full", "full_card_number",
              "卡号"}


def _kind(allowed: tuple[str, ...]) -> Any:
    def check(value: str) -> str:
        v = value.strip().lower()
        if v in _C3_WORDS:
            raise ValueError(f"{value!r} is authentication data (C3), which is shown to no one, whatever the role "
                             "(JR/T 0171-2020 C3; PCI DSS 3.2); remove it")
        if v in _PAN_WORDS:
            raise ValueError(f"{value!r} would show a full card number (PAN); PCI DSS 3.3 allows at most the first "
                             "6 and last 4 digits, which is what the kind 'account' shows; use 'account'")
        if v == "money" and "money" not in allowed:
            raise ValueError("money is not listed under show: say `money: exact` (or banded) for the role")
        if v not in allowed:
            close = difflib.get_close_matches(v, allowed, n=1)
            raise ValueError(f"unknown kind of personal data {value!r}"
                             + (f"; did you mean {close[0]!r}?" if close else "")
                             + f" (kinds: {', '.join(allowed)})")
        return v

    return Annotated[str, AfterValidator(check)]


def _role_name(value: str) -> str:
    if value not in ROLE_NAMES:
        close = difflib.get_close_matches(value, ROLE_NAMES, n=1)
        raise ValueError(f"unknown role {value!r}" + (f"; did you mean {close[0]!r}?" if close else "")
                         + f" (roles: {', '.join(ROLE_NAMES)})")
    return value


class RoleSettings(Strict):
    """One role: what it is shown unmasked, money exact or banded, what it may unmask on request."""

    show: list[_kind(SHOWABLE)] = []                       # type: ignore[valid-type]
    money: Literal["exact", "banded"] = "banded"
    unmask_on_request: list[_kind(KINDS)] = []             # type: ignore[valid-type]
    description: str | None = None


class MaskingConfig(Strict):
    """``config/masking.yaml``: roles redefined over the built-in ones."""

    version: Literal[1] = 1
    roles: dict[Annotated[str, AfterValidator(_role_name)], RoleSettings] = Field(default_factory=dict)

    def policy(self, source: str = "config/masking.yaml") -> Policy:
        """The policy in force: the built-in roles, each one named here replaced by its definition."""
        roles: dict[str, Role] = dict(ROLES)
        for name, s in self.roles.items():
            base = ROLES[name]
            shown = frozenset(s.show) | ({"money"} if s.money == "exact" else frozenset())
            roles[name] = Role(name, shown, scope=base.scope, on_request=frozenset(s.unmask_on_request) - shown,
                               description=s.description or base.description)
        return Policy(roles, source)


def masking_policy(configs: Any) -> Policy:
    """The workspace's policy from its config folder (:class:`lifeloop.config.loader.ConfigFolder`); the
    built-in one when it has no ``masking.yaml``."""
    if not configs.exists(FILE):
        return Policy(dict(ROLES))
    config, doc = configs.load(FILE, MaskingConfig)
    return config.policy(doc.file)
