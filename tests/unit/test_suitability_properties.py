"""Property tests: whatever the strategy map, policy and customers, the plan never lets an unsuitable offer out.

The oracle below is written independently of suitability.py: a customer's level counts only if it
has a level and an expiry (or assessment date + 1 year) after D; then Cn covers Rn and below;
otherwise R1 only. Every row of the lists with status contact or control must pass it.
"""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lifeloop.strategy.history import History
from lifeloop.strategy.plan import make_lists
from tests.unit.strategy_factories import D, config, consent_all, policy, strategy

CUSTOMERS = ("a", "b", "c", "d", "e")
PRODUCTS = {"P1": "R1", "P2": "R2", "P3": "R3", "P4": "R4", "P5": "R5"}
CHANNELS = ("sms", "push", "rm")
day = st.integers(-800, 400).map(lambda k: D + dt.timedelta(days=k))


def oracle_covers(c: dict) -> int:
    """Highest product level the customer may be offered on D (independent re-statement of the rule)."""
    lv = c["risk_level"]
    ends = c["risk_expires_on"]
    made = c["risk_assessed_on"]
    if ends is None and made is not None:   # one year after the assessment (29 February: 28 February)
        ends = dt.date(made.year + 1, 2, 28) if (made.month, made.day) == (2, 29) else made.replace(year=made.year + 1)
    if lv is None or ends is None or ends <= D:
        return 1
    return int(lv[1])


@st.composite
def worlds(draw):
    custs = []
    for c in CUSTOMERS:
        custs.append(dict(customer_id=c,
                          risk_level=draw(st.one_of(st.none(), st.sampled_from(["C1", "C2", "C3", "C4", "C5"]))),
                          risk_assessed_on=draw(st.one_of(st.none(), day)),
                          risk_expires_on=draw(st.one_of(st.none(), day)),
                          birth_date=draw(st.one_of(st.none(), st.integers(18, 95).map(
                              lambda y: D - dt.timedelta(days=365 * y + 30))))))
    strategies, rows = [], []
    for k in range(draw(st.integers(1, 5))):
        offer = draw(st.one_of(st.sampled_from(sorted(PRODUCTS)).map(lambda p: {"product_id": p}),
                               st.just({"code": "CARE"})))
        chans = draw(st.lists(st.sampled_from(CHANNELS), min_size=1, max_size=2, unique=True))
        s = strategy(f"s{k}", channels=tuple(chans), priority=draw(st.integers(0, 100)), offer=offer,
                     holdout=draw(st.sampled_from([0.0, 0.5])))
        strategies.append(s)
        for c in draw(st.lists(st.sampled_from(CUSTOMERS), unique=True)):
            rows.append((c, s.id))
    pol = policy(caps={"day": draw(st.one_of(st.none(), st.integers(0, 3)))},
                 consent={"missing": {"marketing": True}})
    return custs, strategies, rows, pol


def tables(custs):
    customers = pa.Table.from_pylist(custs, schema=pa.schema([
        ("customer_id", pa.string()), ("risk_level", pa.string()), ("risk_assessed_on", pa.date32()),
        ("risk_expires_on", pa.date32()), ("birth_date", pa.date32())]))
    products = pa.table({"product_id": list(PRODUCTS), "product_type": ["fund"] * 5,
                         "risk_level": list(PRODUCTS.values())})
    return customers, products


def plan(world):
    custs, strategies, rows, pol = world
    audiences = pa.table({"customer_id": [c for c, _ in rows], "strategy": [s for _, s in rows],
                          "wave": ["w1"] * len(rows), "rm_id": ["RM1"] * len(rows), "reason": ["t"] * len(rows)},
                         schema=pa.schema([("customer_id", pa.string()), ("strategy", pa.string()),
                                           ("wave", pa.string()),
                                           ("rm_id", pa.string()), ("reason", pa.string())]))
    customers, products = tables(custs)
    history = History.from_rows(consent=consent_all(list(CUSTOMERS)))
    return make_lists(audiences, config(*strategies), pol, history, D, None, customers, products).to_pylist()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(worlds())
def test_no_unsuitable_offer_is_ever_planned_whatever_the_map_and_the_customers(world):
    custs = {c["customer_id"]: c for c in world[0]}
    for r in plan(world):
        if r["offer"] in PRODUCTS and r["status"] in ("contact", "control"):
            assert int(PRODUCTS[r["offer"]][1]) <= oracle_covers(custs[r["customer_id"]]), r
        if r["offer"] in PRODUCTS and int(PRODUCTS[r["offer"]][1]) > oracle_covers(custs[r["customer_id"]]):
            assert r["dropped_by"] == "suitability" and r["status"] == "dropped", r
        if r["offer"] == "CARE":
            assert r["dropped_by"] != "suitability" and r["suitability"] is None


@settings(max_examples=150, deadline=None)
@given(worlds(), st.integers(0, 700))
def test_an_expired_assessment_never_lets_an_r3_or_riskier_offer_through(world, ago):
    custs, strategies, rows, pol = world
    # every customer holds a high level that expired ``ago`` days before D (0: expires on D itself)
    expired = [dict(c, risk_level="C5", risk_assessed_on=D - dt.timedelta(days=ago + 365),
                    risk_expires_on=D - dt.timedelta(days=ago)) for c in custs]
    for r in plan((expired, strategies, rows, pol)):
        if r["offer"] in PRODUCTS and int(PRODUCTS[r["offer"]][1]) >= 3:
            assert r["status"] == "dropped" and r["dropped_by"] == "suitability" and r["suitability"] == "reassess", r


@settings(max_examples=200, deadline=None)
@given(worlds(),
       st.lists(st.tuples(st.sampled_from(CUSTOMERS + ("zz",)),
                          st.sampled_from(sorted(PRODUCTS) + ["CARE", "UNR", "GONE"]),
                                    st.booleans()), max_size=30))
def test_the_vectorised_check_gives_each_row_the_answer_of_the_one_row_rule(world, offers):
    from lifeloop.strategy import suitability

    customers, _ = tables(world[0])
    products = pa.table({"product_id": [*PRODUCTS, "UNR"], "product_type": ["fund"] * 5 + ["wealth"],
                         "risk_level": [*PRODUCTS.values(), None]})
    table = pa.table({"customer_id": pa.array([o[0] for o in offers], pa.string()),
                      "offer": pa.array([o[1] for o in offers], pa.string()),
                      "product_offer": pa.array([o[2] for o in offers], pa.bool_())})
    from lifeloop.config.contact_policy import ExtraRule

    rules = [ExtraRule(name="over_70_no_r3", min_age=70, min_product_level="R3", action="drop"),
             *suitability.default_rules(), ExtraRule(name="over_50_r5", min_age=50, min_product_level="R5")]
    v = suitability.check(customers, products, table, D, rules)
    cust = {c["customer_id"]: c for c in world[0]}
    prod = {r["product_id"]: r for r in products.to_pylist()}
    for i, (c, o, flag) in enumerate(offers):
        outcome, detail = suitability.decide_one(cust.get(c), prod.get(o), flag, D, rules)
        assert v.outcome[i] == outcome and v.allowed[i] == (outcome in suitability.ALLOWED)
        if outcome not in (suitability.NOT_SUBJECT, suitability.SUITABLE):
            assert v.detail[i] == detail
