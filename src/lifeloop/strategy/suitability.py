"""Suitability (投资者适当性): a product may be offered only to a customer whose valid risk level covers it.

Pure rules, checked on every candidate inside the plan step before arbitration, and again by
dispatch through :func:`check` (same inputs, same answer). No strategy or policy setting turns them
off; ``contact_policy.yaml`` may only add stricter rules (``suitability.extra_rules``).

* A customer's assessment (风险测评) is **valid** on D when it has a level C1..C5 and expires after D
  (``risk_expires_on > D``; with no expiry date, one year after ``risk_assessed_on``; with neither,
  it is treated as missing).
* Level Cn covers products R1..Rn (C1 covers R1, C3 covers R1-R3, C5 covers everything).
* A missing or expired assessment covers R1 only, like the most conservative level C1: R2+ offers
  are dropped (``reassess``) and the customer gets a re-assessment task instead (reassessments.parquet).
* An offer that is not a product of the catalogue (a care message, an activation gift code) is not
  subject to suitability. A strategy offer naming a product missing from the catalogue is dropped
  (``unknown_product``). A product without a risk rating is not subject if it is a deposit, card or
  loan; an unrated investment product (wealth, fund, insurance, other) is dropped (``unrated_product``).
* Extra rules flag (``enhanced_sales``: the bank's 双录 / enhanced sales process) or drop customers of
  an age offered a product of a level or more; a flag keeps the offer in the plan.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lifeloop.config.contact_policy import ExtraRule, default_rules
from lifeloop.data.schema import PRODUCT_RISK_LEVELS, RISK_LEVELS

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

# product types that carry no investment risk for the customer: no rating needed to offer them
NOT_INVESTMENT = ("demand_deposit", "time_deposit", "credit_card", "loan")
UNASSESSED_COVERS = 1   # a missing or expired assessment covers R1 only (as C1 would)

# outcomes of one (customer, offer); the first three let the offer through
NOT_SUBJECT, SUITABLE, ENHANCED = "not_subject", "suitable", "enhanced_sales"
UNSUITABLE, REASSESS, UNRATED, UNKNOWN, EXTRA = ("unsuitable", "reassess", "unrated_product", "unknown_product",
                                                 "extra_rule")
ALLOWED = (NOT_SUBJECT, SUITABLE, ENHANCED)
# the order matters to :func:`check`: codes up to ENHANCED are allowed, from ENHANCED on get a detail
OUTCOMES = (NOT_SUBJECT, SUITABLE, ENHANCED, UNSUITABLE, REASSESS, UNRATED, UNKNOWN, EXTRA)


@dataclass
class Verdict:
    """Per offer row: allowed or not, the outcome, a detail naming the levels, and a re-assessment flag."""

    allowed: list[bool]
    outcome: list[str]
    detail: list[str | None]
    reassess: list[bool] = field(default_factory=list)


def level(text: str | None, levels: Sequence[str]) -> int | None:
    """1..5 for a level code (C3 -> 3, R4 -> 4), None if missing or not a known code."""
    return levels.index(text) + 1 if text in levels else None


def age_on(birth: dt.date | None, day: dt.date) -> int | None:
    """Whole years of age on ``day``."""
    if birth is None:
        return None
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def expiry(assessed_on: dt.date | None, expires_on: dt.date | None) -> dt.date | None:
    """When an assessment stops being valid: its expiry date, else one year after it was made."""
    if expires_on is not None:
        return expires_on
    if assessed_on is not None:
        try:
            return assessed_on.replace(year=assessed_on.year + 1)
        except ValueError:  # 29 February: expires on 28 February next year
            return assessed_on + dt.timedelta(days=365)
    return None


def decide_one(customer: dict | None, product: dict | None, product_offer: bool, as_of: dt.date,
               rules: Sequence[ExtraRule]) -> tuple[str, str | None]:
    """The outcome and detail for one customer and one offer (product row or None): the rule, one row at a time."""
    if product is None:
        return (UNKNOWN, "product not in the catalogue") if product_offer else (NOT_SUBJECT, None)
    p_code = product.get("risk_level")
    p_level = level(p_code, PRODUCT_RISK_LEVELS)
    pid = product.get("product_id")
    if p_level is None:
        if product.get("product_type") in NOT_INVESTMENT:
            return NOT_SUBJECT, None
        return UNRATED, f"product {pid} has no risk rating"
    customer = customer or {}
    c_code = customer.get("risk_level")
    c_level = level(c_code, RISK_LEVELS)
    ends = expiry(customer.get("risk_assessed_on"), customer.get("risk_expires_on"))
    valid = c_level is not None and ends is not None and ends > as_of
    if valid:
        covers, state = c_level, f"{c_code} valid until {ends.isoformat()}"  # type: ignore[union-attr]
    elif c_level is None or ends is None:
        covers, state = UNASSESSED_COVERS, "no risk assessment"
    else:
        covers, state = UNASSESSED_COVERS, f"assessment {c_code} expired {ends.isoformat()}"
    if p_level > covers:  # type: ignore[operator]
        return (UNSUITABLE if valid else REASSESS), f"{state}; product {pid} is {p_code}"
    age = age_on(customer.get("birth_date"), as_of)
    flagged = None
    for r in rules:
        if (age is not None and age >= r.min_age
                and p_level >= level(r.min_product_level, PRODUCT_RISK_LEVELS)):  # type: ignore[operator]
            why = f"{r.name}: age {age} >= {r.min_age}, product {pid} is {p_code}"
            if r.action == "drop":
                return EXTRA, why
            flagged = flagged or why
    return (ENHANCED, flagged) if flagged else (SUITABLE, f"{state}; product {pid} is {p_code}")


def _rows(table: pa.Table | None, key: str) -> dict[str, dict]:
    if table is None:
        return {}
    return {r[key]: r for r in table.to_pylist()}


def _codes(values: pa.ChunkedArray | pa.Array, levels: Sequence[str]) -> np.ndarray:
    """Level numbers 1..5 of level codes (0: missing or unknown)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    idx = pc.index_in(values, value_set=pa.array(list(levels), pa.string()))
    return np.asarray(pc.fill_null(pc.add(idx, 1), 0).to_numpy(zero_copy_only=False), dtype=np.int64)


def _assessments(customers: pa.Table, as_of: dt.date) -> tuple[np.ndarray, np.ndarray, np.ndarray, pa.Array]:
    """Per customer row: level (0 none), valid on ``as_of``, age (-1 unknown), and the expiry dates."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    lv = _codes(customers["risk_level"], RISK_LEVELS)
    ends = customers["risk_expires_on"]
    made = customers["risk_assessed_on"]
    patch = pc.indices_nonzero(pc.and_(pc.is_null(ends), pc.is_valid(made))).to_pylist()
    if patch:   # rare: no expiry date recorded, so one year after the assessment
        filled = ends.to_pylist()
        for i in patch:
            filled[i] = expiry(made[i].as_py(), None)
        ends = pa.array(filled, pa.date32())
    valid = np.asarray(pc.fill_null(pc.greater(ends, pa.scalar(as_of, pa.date32())), False)
                       .to_numpy(zero_copy_only=False), dtype=bool) & (lv > 0)
    age = np.full(customers.num_rows, -1, dtype=np.int64)
    if "birth_date" in customers.column_names:
        b = customers["birth_date"]
        y = pc.fill_null(pc.year(b), -1).to_numpy(zero_copy_only=False)
        m = pc.fill_null(pc.month(b), 0).to_numpy(zero_copy_only=False)
        d = pc.fill_null(pc.day(b), 0).to_numpy(zero_copy_only=False)
        later = (m > as_of.month) | ((m == as_of.month) & (d > as_of.day))   # birthday not reached yet this year
        age = np.where(y >= 0, as_of.year - y - later.astype(np.int64), -1)
    return lv, valid, age, ends


def check(customers: pa.Table | None, products: pa.Table | None, offers: pa.Table, as_of: dt.date,
          rules: Sequence[ExtraRule] | None = None) -> Verdict:
    """Suitability of each offer row (columns customer_id, offer; optional product_offer) on ``as_of``.

    ``customers``: customer_id, risk_level, risk_assessed_on, risk_expires_on (birth_date for the
    extra rules); ``products``: product_id, risk_level (product_type for unrated products). An
    offer is a product when it is in the catalogue; with ``product_offer`` true and not in the
    catalogue it is refused (the strategy names a product the bank does not have). Missing tables
    mean no customer is assessed and no product known (nothing risky gets through). Vectorised;
    :func:`decide_one` states the same rule for one row, and ``detail`` is filled for every outcome
    but ``not_subject`` and ``suitable``.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    rules = default_rules() if rules is None else rules
    n = offers.num_rows
    if customers is None:
        customers = pa.table({"customer_id": pa.array([], pa.string()), "risk_level": pa.array([], pa.string()),
                              "risk_assessed_on": pa.array([], pa.date32()),
                              "risk_expires_on": pa.array([], pa.date32())})
    if products is None:
        products = pa.table({"product_id": pa.array([], pa.string()), "product_type": pa.array([], pa.string()),
                             "risk_level": pa.array([], pa.string())})
    # only the customers the offers name (a big bank has many more than one day's candidates)
    customers = customers.filter(pc.is_in(customers["customer_id"], value_set=pc.unique(offers["customer_id"])))
    c_lv, c_valid, c_age, c_ends = _assessments(customers, as_of)
    p_lv = _codes(products["risk_level"], PRODUCT_RISK_LEVELS)
    p_invest = ~np.asarray(pc.fill_null(pc.is_in(products["product_type"], value_set=pa.array(NOT_INVESTMENT)), False)
                           .to_numpy(zero_copy_only=False), dtype=bool)
    ci = np.asarray(pc.fill_null(pc.index_in(offers["customer_id"], value_set=customers["customer_id"]), -1)
                    .to_numpy(zero_copy_only=False), dtype=np.int64)
    pi = np.asarray(pc.fill_null(pc.index_in(offers["offer"], value_set=products["product_id"]), -1)
                    .to_numpy(zero_copy_only=False), dtype=np.int64)
    pflag = (np.asarray(pc.fill_null(offers["product_offer"], False).to_numpy(zero_copy_only=False), dtype=bool)
             if "product_offer" in offers.column_names else np.zeros(n, dtype=bool))
    known_c, known_p = ci >= 0, pi >= 0
    level = np.where(known_p, p_lv[np.maximum(pi, 0)] if len(p_lv) else 0, 0)
    invest = np.where(known_p, p_invest[np.maximum(pi, 0)] if len(p_invest) else False, False)
    valid = np.where(known_c, c_valid[np.maximum(ci, 0)] if len(c_valid) else False, False)
    covers = np.where(valid, c_lv[np.maximum(ci, 0)] if len(c_lv) else 0, UNASSESSED_COVERS)
    age = np.where(known_c, c_age[np.maximum(ci, 0)] if len(c_age) else -1, -1)
    code = np.full(n, OUTCOMES.index(SUITABLE), dtype=np.int64)
    rule_of = np.full(n, -1, dtype=np.int64)
    rated = known_p & (level > 0)
    ok = rated & (level <= covers)
    for k, r in reversed(list(enumerate(rules))):   # enhanced flags first, then drops; earlier rules win
        hit = ok & (age >= r.min_age) & (level >= PRODUCT_RISK_LEVELS.index(r.min_product_level) + 1)
        if r.action == "enhanced_sales":
            code[hit & (code != OUTCOMES.index(EXTRA))] = OUTCOMES.index(ENHANCED)
            rule_of[hit & (code == OUTCOMES.index(ENHANCED))] = k
    for k, r in reversed(list(enumerate(rules))):
        if r.action == "drop":
            hit = ok & (age >= r.min_age) & (level >= PRODUCT_RISK_LEVELS.index(r.min_product_level) + 1)
            code[hit] = OUTCOMES.index(EXTRA)
            rule_of[hit] = k
    code[rated & (level > covers)] = np.where(valid, OUTCOMES.index(UNSUITABLE),
                                              OUTCOMES.index(REASSESS))[rated & (level > covers)]
    code[known_p & (level == 0)] = np.where(invest, OUTCOMES.index(UNRATED),
                                            OUTCOMES.index(NOT_SUBJECT))[known_p & (level == 0)]
    code[~known_p] = np.where(pflag, OUTCOMES.index(UNKNOWN), OUTCOMES.index(NOT_SUBJECT))[~known_p]
    outcome = np.asarray(OUTCOMES, dtype=object)[code].tolist()
    detail: list[str | None] = [None] * n
    explain = np.nonzero(code >= OUTCOMES.index(ENHANCED))[0].tolist()
    offer = offers["offer"].to_pylist() if explain else []
    c_codes = customers["risk_level"].to_pylist() if explain else []
    c_ends = c_ends.to_pylist() if explain else []
    age_l, level_l, valid_l, ci_l, rule_l = age.tolist(), level.tolist(), valid.tolist(), ci.tolist(), rule_of.tolist()
    for i in explain:
        o = outcome[i]
        pid = offer[i]
        if o == UNKNOWN:
            detail[i] = "product not in the catalogue"
        elif o == UNRATED:
            detail[i] = f"product {pid} has no risk rating"
        elif o in (ENHANCED, EXTRA):
            r = rules[rule_l[i]]
            detail[i] = f"{r.name}: age {age_l[i]} >= {r.min_age}, product {pid} is R{level_l[i]}"
        else:
            c = ci_l[i]
            c_code = c_codes[c] if c >= 0 else None
            ends = c_ends[c] if c >= 0 else None
            if valid_l[i]:
                state = f"{c_code} valid until {ends.isoformat()}"
            elif c_code is None or ends is None:
                state = "no risk assessment"
            else:
                state = f"assessment {c_code} expired {ends.isoformat()}"
            detail[i] = f"{state}; product {pid} is R{level_l[i]}"
    return Verdict(allowed=(code <= OUTCOMES.index(ENHANCED)).tolist(), outcome=outcome, detail=detail,
                   reassess=(code == OUTCOMES.index(REASSESS)).tolist())


def reassessment_schema() -> pa.Schema:
    """Columns of ``lake/lists/as_of=D/reassessments.parquet``: one re-assessment task per customer."""
    import pyarrow as pa

    s = pa.string()
    return pa.schema([("as_of", pa.date32()), ("customer_id", s), ("rm_id", s), ("risk_level", s),
                      ("expired_on", pa.date32()), ("status", s), ("blocked_offers", s), ("strategies", s)])


def reassessments(lists: pa.Table, customers: pa.Table | None, as_of: dt.date) -> pa.Table:
    """Re-assessment tasks (重新风险测评): customers whose missing or expired assessment blocked an offer today."""
    import pyarrow as pa
    import pyarrow.compute as pc

    blocked: dict[str, tuple[set[str], set[str], str | None]] = {}
    for r in lists.select(["customer_id", "strategy", "offer", "suitability", "rm_id"]).to_pylist():
        if r["suitability"] == REASSESS:
            offers, strategies, _ = blocked.setdefault(r["customer_id"], (set(), set(), r["rm_id"]))
            offers.add(r["offer"])
            strategies.add(r["strategy"])
    # only the blocked customers' assessments (not the whole book as Python dicts on every plan)
    mine = customers.filter(pc.is_in(customers["customer_id"], value_set=pa.array(list(blocked), pa.string()))) \
        if customers is not None and blocked else None
    cust = _rows(mine, "customer_id")
    rows = []
    for c in sorted(blocked):
        offers, strategies, rm = blocked[c]
        info = cust.get(c, {})
        ends = expiry(info.get("risk_assessed_on"), info.get("risk_expires_on"))
        assessed = level(info.get("risk_level"), RISK_LEVELS) is not None and ends is not None
        rows.append({"as_of": as_of, "customer_id": c, "rm_id": rm, "risk_level": info.get("risk_level"),
                     "expired_on": ends if assessed else None, "status": "expired" if assessed else "missing",
                     "blocked_offers": ",".join(sorted(offers)), "strategies": ",".join(sorted(strategies))})
    return pa.Table.from_pylist(rows, schema=reassessment_schema())
