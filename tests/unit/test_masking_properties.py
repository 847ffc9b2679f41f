"""Properties of the one masking policy: whatever the role and its unmask grant, a card number never shows
more than its first 6 and last 4 digits (PCI DSS 3.3), and roles that see money banded never see an amount."""

from __future__ import annotations

import re
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from lifeloop.config.masking import SHOWABLE, MaskingConfig, RoleSettings
from lifeloop.data.masking import (
    DEFAULT_POLICY,
    KINDS,
    ROLE_NAMES,
    ROLES,
    mask_money,
    mask_money_text,
    mask_money_values,
    mask_row,
    money_band,
    viewer_role,
)

BANDS = {"<1k", "1k-10k", "10k-100k", "100k-1m", "1m-10m", ">=10m"}
BANDS |= {f"-({b})" for b in BANDS}


@st.composite
def pans(draw):
    """A card-number-like text: 13-19 digits, contiguous or grouped by spaces or dashes."""
    digits = draw(st.text("0123456789", min_size=13, max_size=19))
    sep = draw(st.sampled_from(["", " ", "-"]))
    if sep:
        digits_grouped = sep.join(digits[i:i + 4] for i in range(0, len(digits), 4))
        return digits, digits_grouped
    return digits, digits


@st.composite
def policies(draw):
    """The built-in policy, or a random config/masking.yaml over it (any kinds shown, money either way)."""
    if draw(st.booleans()):
        return DEFAULT_POLICY
    roles = draw(st.dictionaries(st.sampled_from(ROLE_NAMES), st.builds(
        RoleSettings, show=st.lists(st.sampled_from(SHOWABLE), unique=True),
        money=st.sampled_from(["exact", "banded"]), unmask_on_request=st.lists(st.sampled_from(KINDS), unique=True))))
    return MaskingConfig(roles=roles).policy()


@st.composite
def viewers(draw):
    """A role of a random policy with a random unmask grant of what it may unmask on request."""
    policy = draw(policies())
    name = draw(st.sampled_from(ROLE_NAMES))
    may = sorted(policy.role(name).on_request)
    grant = draw(st.sets(st.sampled_from(may)) if may else st.just(set()))
    return viewer_role(name, grant, policy)


def visible_digits(value) -> str:
    return re.sub(r"[^0-9]", "", str(value))


@given(pans(), viewers(), st.sampled_from(["holdings", "transactions"]))
def test_an_account_number_never_shows_more_than_the_first_6_and_last_4_digits(pan, viewer, table):
    digits, text = pan
    out, _ = mask_row(table, {"account_id": text}, viewer)
    shown = visible_digits(out["account_id"])
    assert shown in (digits[:6] + digits[-4:], digits[-4:])
    assert len(shown) <= 10


@given(pans(), viewers(), st.sampled_from(["name", "email", "mobile", "birth_date"]))
def test_a_card_number_in_any_personal_text_never_shows_more_than_6_and_4(pan, viewer, column):
    digits, text = pan
    out, _ = mask_row("customers", {column: f"Li Na {text}"}, viewer)
    shown = visible_digits(out[column])
    assert len(shown) <= 10
    if len(shown) == 10:
        assert shown == digits[:6] + digits[-4:]


@st.composite
def banded_viewers(draw):
    """A role that sees money banded, with a grant that does not lift money."""
    names = sorted(n for n, r in ROLES.items() if not r.money_exact)
    name = draw(st.sampled_from(names))
    grant = draw(st.sets(st.sampled_from(sorted(ROLES[name].on_request - {"money"}))) if ROLES[name].on_request
                 else st.just(set()))
    return viewer_role(name, grant)


amounts = st.decimals(min_value=Decimal("-1e9"), max_value=Decimal("1e9"), places=2, allow_nan=False,
                      allow_infinity=False)


@given(amounts, banded_viewers())
def test_roles_that_see_money_banded_never_see_an_amount(amount, viewer):
    assert mask_money(amount, viewer) in BANDS
    assert mask_money(float(amount), viewer) in BANDS
    out, _ = mask_row("transactions", {"amount": amount, "balance_after": amount}, viewer)
    assert out["amount"] in BANDS and out["balance_after"] in BANDS
    assert mask_money_values({"aum": amount, "stage": "dormant"}, {"aum"}, viewer)["aum"] in BANDS
    text = mask_money_text(f"stage=dormant, aum={amount}, n=3", {"aum"}, viewer)
    assert text == f"stage=dormant, aum={money_band(amount)}, n=3"


@given(amounts)
def test_a_money_grant_or_an_exact_role_sees_the_amount(amount):
    assert mask_money(amount, viewer_role("compliance", {"money"})) == float(amount)
    assert mask_money(amount, ROLES["rm"]) == float(amount)
