"""Outcomes (效果归因) on hand-made lists and a hand-made bank: every number below is worked out by hand.

Entries: one strategy ``wm`` (offer: the wealth product WM; waves w1 on D+0 and w2 on D+3 after w1;
window 30 days; re-entry after 60 days) and a care strategy ``care`` (offer code, no product).
Measuring: five customers of ``wm`` entering on 2024-03-01 (window (03-01, 03-31], closed) or
2024-05-01 (window still open on 2024-05-15), over holdings, transactions and products written below.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from lifeloop.data.schema import arrow_schema
from lifeloop.engine.adapters.base import write_arrow
from lifeloop.engine.adapters.duckdb import DuckDBAdapter
from lifeloop.review import outcomes
from lifeloop.store.lake import Lake
from lifeloop.strategy.plan import output_schema as lists_schema
from tests.unit.strategy_factories import config, strategy


def d(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


AS_OF = d("2024-05-15")
WAVES = [{"id": "w1", "day": 0}, {"id": "w2", "day": 3, "depends_on": {"wave": "w1"}}]


def wm_strategy(channels=("sms", "call"), **extra):
    return strategy("wm", channels=channels, holdout=0.5, waves=WAVES, offer={"product_id": "WM"},
                    objective={"kind": "customers", "metric": "purchase_rate", "window_days": 30}, reentry_days=60,
                    **extra)


def care_strategy():
    return strategy("care", channels=("sms",), holdout=0.5, offer={"code": "CARE"},
                    objective={"kind": "customers", "metric": "retention_rate", "window_days": 30})


def lists_row(day, cid, *, sid="wm", wave="w1", group="treated", status="contact", channel="sms", dropped_by=None,
              cost=None, offer="WM"):
    """One row of a day's lists, as the plan writes it (only the columns entries() reads matter)."""
    if cost is None:
        cost = {"sms": 0.05, "call": 2.0}.get(channel, 0.0) if status == "contact" else 0.0
    return {"as_of": d(day), "customer_id": cid, "strategy": sid, "wave": wave, "group": group, "status": status,
            "channel": channel if status != "dropped" else None, "offer": offer, "cost": cost,
            "dropped_by": dropped_by, "rm_id": "RM1"}


def lists(rows):
    return pa.Table.from_pylist(rows, schema=lists_schema())


# ------------------------------------------------------------------------------------------ entries
LISTS = [
    # c1: treated, stopped by the RM's capacity on day 1, contacted on day 2, then wave 2 by call on day 4
    lists_row("2024-03-01", "c1", status="dropped", dropped_by="capacity_rm"),
    lists_row("2024-03-02", "c1"),
    lists_row("2024-03-04", "c1", wave="w2", channel="call"),
    lists_row("2024-04-01", "c1", wave="w2", channel="call"),             # after the window (ends 03-31): not its cost
    # c2: control, back after 19 days (same journey) and after 60 days (a new entry, window still open)
    lists_row("2024-03-01", "c2", group="control", status="control"),
    lists_row("2024-03-20", "c2", group="control", status="control"),
    lists_row("2024-04-30", "c2", group="control", status="control"),
    # customer-level checks stop these before the holdout matters: in neither arm
    lists_row("2024-03-01", "c3", status="dropped", dropped_by="consent"),
    lists_row("2024-03-01", "c4", status="dropped", dropped_by="dnd"),
    lists_row("2024-03-01", "c5", group="control", status="dropped", dropped_by="refusal_memory"),
    lists_row("2024-03-01", "c6", status="dropped", dropped_by="quiet_hours"),
    lists_row("2024-03-01", "c7", group="control", status="dropped", dropped_by="suitability"),
    # c8: only ever in the later wave: never an entry
    lists_row("2024-03-05", "c8", wave="w2"),
    # c9: treated, capped on day 1 and never reached: still treated (intention to treat), not contacted
    lists_row("2024-03-01", "c9", status="dropped", dropped_by="cap_overall_day"),
    # c1 in the care strategy the same day: a separate journey
    lists_row("2024-03-01", "c1", sid="care", offer="CARE"),
    # a day after the as-of date is not read
    lists_row("2024-05-20", "c10"),
]


@pytest.fixture(scope="module")
def found():
    table = outcomes.entries(lists(LISTS), config(wm_strategy(), care_strategy()), AS_OF)
    return {(r["strategy"], r["customer_id"], r["entry_date"]): r for r in table.to_pylist()}


def test_a_treated_candidate_stopped_by_capacity_then_contacted_is_one_entry_dated_the_first_day(found):
    c1 = found[("wm", "c1", d("2024-03-01"))]
    assert (c1["arm"], c1["wave"], c1["contacted"]) == ("treated", "w1", True)
    # contacts inside [03-01, 03-31] of every wave: sms on 03-02 (0.05) and the call of wave 2 on 03-04 (2.00)
    assert c1["contacts"] == 2
    assert c1["cost"] == pytest.approx(2.05)
    assert ("wm", "c1", d("2024-03-02")) not in found


def test_a_treated_candidate_never_reached_stays_in_the_treated_arm_uncontacted(found):
    c9 = found[("wm", "c9", d("2024-03-01"))]
    assert (c9["arm"], c9["contacted"], c9["contacts"], c9["cost"]) == ("treated", False, 0, 0.0)
    assert c9["channel"] == "none"


def test_candidates_stopped_by_customer_level_checks_are_in_neither_arm(found):
    customers = {cid for _, cid, _ in found}
    for stopped in ("c3", "c4", "c5", "c6", "c7"):  # consent, dnd, refusal memory, quiet hours, suitability
        assert stopped not in customers


def test_a_later_wave_never_starts_an_entry_and_days_after_the_as_of_date_are_not_read(found):
    customers = {cid for _, cid, _ in found}
    assert "c8" not in customers and "c10" not in customers


def test_a_customer_re_enters_only_after_reentry_days(found):
    c2 = sorted(day for sid, cid, day in found if (sid, cid) == ("wm", "c2"))
    assert c2 == [d("2024-03-01"), d("2024-04-30")]  # 03-20 is 19 days in: the same journey; 04-30 is day 60
    first, again = found[("wm", "c2", d("2024-03-01"))], found[("wm", "c2", d("2024-04-30"))]
    assert (first["arm"], first["contacted"], first["cost"], first["channel"]) == ("control", False, 0.0, "sms")
    assert again["arm"] == "control"


def test_when_re_entry_comes_before_the_window_ends_each_contact_is_costed_to_one_entry_only():
    # re-entry after 20 days but a 30-day window: the day-25 contact belongs to the second entry, not both
    short = strategy("wm", channels=("sms", "call"), holdout=0.5, waves=WAVES, offer={"product_id": "WM"},
                     objective={"kind": "customers", "metric": "purchase_rate", "window_days": 30}, reentry_days=20)
    rows = [lists_row("2024-03-01", "c1", channel="call"), lists_row("2024-03-05", "c1", wave="w2", channel="call"),
            lists_row("2024-03-21", "c1", channel="sms"), lists_row("2024-03-25", "c1", wave="w2", channel="call")]
    table = outcomes.entries(lists(rows), config(short), AS_OF)
    costs = {r["entry_date"]: (r["contacts"], r["cost"]) for r in table.to_pylist()}
    assert costs == {d("2024-03-01"): (2, 4.0), d("2024-03-21"): (2, 2.05)}


def test_a_window_is_complete_at_its_end_and_an_open_one_is_observed_through_the_as_of_date(found):
    closed, running = found[("wm", "c2", d("2024-03-01"))], found[("wm", "c2", d("2024-04-30"))]
    assert (closed["window_days"], closed["window_end"], closed["observed_through"], closed["complete"]) == (
        30, d("2024-03-31"), d("2024-03-31"), True)
    assert (running["window_end"], running["observed_through"], running["complete"]) == (
        d("2024-05-30"), AS_OF, False)
    # on the last day of the window itself the entry is complete
    on_the_day = outcomes.entries(lists(LISTS), config(wm_strategy(), care_strategy()), d("2024-03-31"))
    c1 = [r for r in on_the_day.to_pylist() if (r["strategy"], r["customer_id"]) == ("wm", "c1")][0]
    assert (c1["complete"], c1["observed_through"]) == (True, d("2024-03-31"))


def test_each_strategy_is_its_own_journey_with_its_own_offer_kind(found):
    care = found[("care", "c1", d("2024-03-01"))]
    assert (care["arm"], care["contacted"], care["cost"], care["product_offer"]) == ("treated", True, 0.05, False)
    assert found[("wm", "c1", d("2024-03-01"))]["product_offer"] is True
    assert sorted(found) == [("care", "c1", d("2024-03-01")), ("wm", "c1", d("2024-03-01")),
                             ("wm", "c2", d("2024-03-01")), ("wm", "c2", d("2024-04-30")),
                             ("wm", "c9", d("2024-03-01"))]


# ------------------------------------------------------------------------------------------ measuring
PRODUCTS = [
    {"product_id": "CUR", "name": "Current", "product_type": "demand_deposit", "term_days": None, "fee_rate": None},
    {"product_id": "WM", "name": "Wealth 180d", "product_type": "wealth", "term_days": 180,
     "fee_rate": Decimal("0.010000")},
    {"product_id": "TD", "name": "Time deposit 2y", "product_type": "time_deposit", "term_days": 730,
     "fee_rate": Decimal("0.004000")},
    {"product_id": "FUND", "name": "Fund", "product_type": "fund", "term_days": None, "fee_rate": Decimal("0.015000")},
    {"product_id": "LOAN", "name": "Loan", "product_type": "loan", "term_days": None, "fee_rate": None},
    {"product_id": "CARD", "name": "Card", "product_type": "credit_card", "term_days": None, "fee_rate": None},
]


def holding(acc, cid, product, snap, balance, opened, status="open"):
    return {"account_id": acc, "customer_id": cid, "product_id": product, "snapshot_date": d(snap),
            "balance": Decimal(balance), "open_date": d(opened), "status": status}


HOLDINGS = [
    # m1 (treated): current account 20,000 then 5,000; buys WM on 03-10 (100,000, later 100,500) and a 2-year
    # time deposit on 03-20; a loan is not an asset
    holding("CUR1", "m1", "CUR", "2024-02-28", "20000.00", "2020-01-01"),
    holding("CUR1", "m1", "CUR", "2024-03-15", "5000.00", "2020-01-01"),
    holding("WM1", "m1", "WM", "2024-03-10", "100000.00", "2024-03-10"),
    holding("WM1", "m1", "WM", "2024-03-31", "100500.00", "2024-03-10"),
    holding("TD1", "m1", "TD", "2024-03-20", "50000.00", "2024-03-20"),
    holding("LOAN1", "m1", "LOAN", "2024-02-01", "300000.00", "2024-02-01"),
    # m2 (control): WM bought on the entry day itself and again after the window: no purchase;
    # a deposit closed on 03-20 counts 0 at the end
    holding("DEP2", "m2", "CUR", "2024-02-15", "8000.00", "2019-05-01"),
    holding("DEP2", "m2", "CUR", "2024-03-20", "0.00", "2019-05-01", status="closed"),
    holding("WM2A", "m2", "WM", "2024-03-01", "10000.00", "2024-03-01"),
    holding("WM2A", "m2", "WM", "2024-03-31", "10000.00", "2024-03-01"),
    holding("WM2B", "m2", "WM", "2024-04-05", "7000.00", "2024-04-05"),
    # m3 (treated, dormant): a credit card (not an asset, no fee rate) and a fund without a term
    holding("CARD3", "m3", "CARD", "2024-03-05", "500.00", "2024-03-05"),
    holding("FUND3", "m3", "FUND", "2024-03-12", "20000.00", "2024-03-12"),
    # m4 (control): closes its only deposit
    holding("DEP4", "m4", "CUR", "2024-02-01", "5000.00", "2018-01-01"),
    holding("DEP4", "m4", "CUR", "2024-03-25", "0.00", "2018-01-01", status="closed"),
    # m5 (treated, window still open on 05-15): buys WM on 05-10
    holding("WM5", "m5", "WM", "2024-05-10", "30000.00", "2024-05-10"),
]


def txn(tid, cid, day, amount, direction, txn_type, initiated):
    return {"transaction_id": tid, "account_id": "x", "customer_id": cid, "txn_date": d(day),
            "amount": Decimal(amount), "direction": direction, "txn_type": txn_type, "channel": "mobile",
            "customer_initiated": initiated}


TRANSACTIONS = [
    txn("T1", "m1", "2024-03-05", "3000.00", "credit", "transfer", True),     # money in
    txn("T2", "m1", "2024-03-06", "10000.00", "credit", "salary", False),     # salary: not the customer's doing
    txn("T3", "m1", "2024-03-07", "200.00", "debit", "card_payment", True),   # own, but money out
    txn("T4", "m1", "2024-03-01", "999.00", "credit", "cash", True),          # the entry day: not in the window
    txn("T5", "m1", "2024-04-02", "777.00", "credit", "cash", True),          # after the window
    txn("T6", "m2", "2024-03-10", "5.00", "credit", "interest", False),       # interest: not activity
    txn("T7", "m3", "2024-03-20", "100.00", "debit", "transfer", True),       # the dormant customer acts
    txn("T8", "m5", "2024-05-12", "400.00", "credit", "cash", True),
    txn("T9", "m5", "2024-05-20", "600.00", "credit", "transfer", True),      # after the observed day (05-15)
]

MEASURE_LISTS = [
    lists_row("2024-03-01", "m1"),
    lists_row("2024-03-01", "m2", group="control", status="control"),
    lists_row("2024-03-01", "m3"),
    lists_row("2024-03-01", "m4", group="control", status="control"),
    lists_row("2024-05-01", "m5"),
    lists_row("2024-03-01", "m1", sid="care", offer="CARE"),
]
STAGES = {"m1": "growing", "m2": "dormant", "m3": "dormant", "m4": "mature", "m5": "growing"}

WM_FEE = 0.01 * 180 / 365   # WM: 1% a year for its 180-day term
TD_FEE = 0.004              # TD: 0.4% a year, a 2-year term counts one year
FUND_FEE = 0.015            # FUND: no term: one year


BANK_DAY = d("2024-05-31")


def hand_made_bank(root):
    """The hand-made bank published in a lake, and the entries to measure (written to a file): (lake, table, path)."""
    lake = Lake(root / "lake")

    def bank(staging):
        for name, rows in (("products", PRODUCTS), ("holdings", HOLDINGS), ("transactions", TRANSACTIONS)):
            pq.write_table(pa.Table.from_pylist(rows, schema=arrow_schema(name)), staging / f"{name}.parquet")
    # the bank's data reaches 05-31 (T9 on 05-20): the window's own end, not the data, must cut it
    lake.publish("bank", BANK_DAY, bank)
    table = outcomes.entries(lists(MEASURE_LISTS), config(wm_strategy(), care_strategy()), AS_OF)
    table = table.append_column("segment", pa.array(["mass"] * table.num_rows, pa.string()))
    table = table.append_column("stage", pa.array([STAGES[c] for c in table["customer_id"].to_pylist()], pa.string()))
    path = root / "entries.parquet"
    write_arrow(table, path)
    return lake, table, path


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    lake, table, path = hand_made_bank(tmp_path_factory.mktemp("outcomes"))
    engine = DuckDBAdapter()
    engine.register_bank(lake, BANK_DAY)
    result = outcomes.measure(engine, table, path)
    engine.close()
    return {(r["strategy"], r["customer_id"]): r for r in result.to_pylist()}, result


def test_the_measured_table_has_the_documented_columns(measured):
    _, table = measured
    assert table.schema == outcomes.output_schema()
    assert table.num_rows == 6


def test_a_purchase_is_the_offered_product_opened_after_the_entry_day_at_its_first_balance(measured):
    rows, _ = measured
    assert (rows[("wm", "m1")]["purchased"], rows[("wm", "m1")]["purchase_amount"]) == (True, 100000.0)
    # m2 bought WM on the entry day itself and after the window: neither counts
    assert (rows[("wm", "m2")]["purchased"], rows[("wm", "m2")]["purchase_amount"]) == (False, 0.0)
    # m3 opened a fund, not the offered product
    assert (rows[("wm", "m3")]["purchased"], rows[("wm", "m3")]["purchase_amount"]) == (False, 0.0)
    # m5's window is still open: measured to date
    assert (rows[("wm", "m5")]["purchased"], rows[("wm", "m5")]["purchase_amount"]) == (True, 30000.0)
    # an offer code has no product to buy
    assert (rows[("care", "m1")]["purchased"], rows[("care", "m1")]["purchase_amount"]) == (None, None)


def test_fee_income_counts_every_holding_opened_in_the_window_for_at_most_a_year(measured):
    rows, _ = measured
    m1 = 100000 * WM_FEE + 50000 * TD_FEE        # 493.150685 + 200 = 693.150685, kept to the cent
    assert rows[("wm", "m1")]["fee_income"] == 693.15 == round(m1, 2)
    assert rows[("care", "m1")]["fee_income"] == 693.15                       # whatever the offer was
    assert rows[("wm", "m2")]["fee_income"] == 0.0                            # entry day and after: nothing
    assert rows[("wm", "m3")]["fee_income"] == pytest.approx(20000 * FUND_FEE)  # 300; the card has no fee rate
    assert rows[("wm", "m5")]["fee_income"] == round(30000 * WM_FEE, 2) == 147.95


def test_inflow_is_customer_initiated_money_in_by_transfer_or_cash_inside_the_window(measured):
    rows, _ = measured
    assert rows[("wm", "m1")]["inflow"] == 3000.0   # not the salary, the payment out, the entry day, or April
    assert rows[("wm", "m2")]["inflow"] == 0.0
    assert rows[("wm", "m3")]["inflow"] == 0.0      # money out only
    assert rows[("wm", "m5")]["inflow"] == 400.0    # the 05-20 transfer is after the observed day


def test_aum_before_and_after_take_each_accounts_newest_snapshot_and_count_closed_accounts_as_zero(measured):
    rows, _ = measured
    expected = {
        # before 03-01: CUR1 20,000 (02-28); the loan is not an asset.
        # after 03-31: CUR1 5,000 (03-15) + WM1 100,500 (03-31) + TD1 50,000 (03-20)
        "m1": (20000.0, 155500.0),
        # before: DEP2 8,000 + WM2A 10,000 (its first snapshot is the entry day); after: DEP2 closed 0 + WM2A 10,000
        "m2": (18000.0, 10000.0),
        "m3": (0.0, 20000.0),          # the card is not an asset; the fund is
        "m4": (5000.0, 0.0),           # closed on 03-25
        "m5": (0.0, 30000.0),          # after = the observed day 05-15
    }
    for cid, (before, after) in expected.items():
        r = rows[("wm", cid)]
        assert (r["aum_before"], r["aum_after"], r["aum_change"]) == (before, after, after - before), cid


def test_active_reactivated_and_retained(measured):
    rows, _ = measured
    got = {cid: (rows[("wm", cid)]["active"], rows[("wm", cid)]["reactivated"], rows[("wm", cid)]["retained"])
           for cid in STAGES}
    assert got == {
        "m1": (True, None, True),     # own transfer and card payment; not dormant: no reactivation to measure
        "m2": (False, False, True),   # dormant, only interest: not reactivated; still holds WM2A
        "m3": (True, True, None),     # dormant and acted on 03-20: reactivated; no asset at entry: retained null
        "m4": (False, None, False),   # closed everything: not retained
        "m5": (True, None, None),     # held nothing at entry (funded on 05-15): nothing to retain, null
    }


def test_summary_counts_entries_per_strategy_and_arm_and_the_open_windows(measured):
    _, table = measured
    assert outcomes.summary(table) == {"entries": 6, "in_window": 1,
                                       "strategies": {"wm": {"treated": 3, "control": 2}, "care": {"treated": 1}}}


# ------------------------------------------------------------------------------------------ with the policy
def test_a_treated_candidate_refused_on_one_channel_and_capped_on_the_next_stays_treated_like_its_control_twin():
    from lifeloop.strategy.history import History
    from lifeloop.strategy.policy import decide
    from tests.unit.strategy_factories import D, candidate, candidates, policy

    # a (treated) and b (control): no SMS consent, push granted. One contact a day, and a higher-priority
    # strategy already takes a's push: a is stopped by the cap, b would have been reachable by push.
    s = wm_strategy(channels=("sms", "push"))
    first = strategy("first", channels=("push",), priority=90)
    hist = History.from_rows(consent=[dict(customer_id=c, purpose="marketing", channel="push", granted=True)
                                      for c in "ab"])
    rows = [candidate("a", first), candidate("a", s), candidate("b", s, control=True)]
    decided = decide(candidates(rows), hist, policy(caps={"day": 1}, arbitration={"rank_by": "priority"}),
                     {x.id: x for x in (s, first)}, D).to_pylist()
    day = D.isoformat()
    table = lists([lists_row(day, r["customer_id"], sid=c["strategy"], group="control" if c["control"] else "treated",
                             status=x["status"], channel=x["channel"], dropped_by=x["dropped_by"])
                   for r, c, x in zip(rows, rows, decided, strict=False)])
    got = {(r["strategy"], r["customer_id"]): r["arm"]
           for r in outcomes.entries(table, config(s, first), D).to_pylist()}
    assert got[("wm", "b")] == "control"
    assert got.get(("wm", "a")) == "treated"  # intention to treat: the cap came after the assignment


# ------------------------------------------------------------------------------------------ the step's core
def test_compute_reads_the_stage_and_tier_at_entry_and_carries_closed_windows_over_unchanged(tmp_path):
    lake = Lake(tmp_path / "lake")

    def bank(staging):
        for name, rows in (("products", PRODUCTS), ("holdings", HOLDINGS), ("transactions", TRANSACTIONS)):
            pq.write_table(pa.Table.from_pylist(rows, schema=arrow_schema(name)), staging / f"{name}.parquet")
    lake.publish("bank", d("2024-02-29"), bank)  # one batch; the views cut every fact at the day computed
    plan = lists(MEASURE_LISTS)
    for day in ("2024-03-01", "2024-05-01"):
        part = plan.filter(pc.equal(plan["as_of"], d(day)))
        lake.publish("lists", d(day), lambda s, t=part: pq.write_table(t, s / "lists.parquet"))
        stages = pa.table({"customer_id": list(STAGES), "stage": list(STAGES.values())})
        lake.publish("lifecycle", d(day), lambda s, t=stages: pq.write_table(t, s / "lifecycle.parquet"))
    tiers = pa.table({"customer_id": ["m1", "m2"], "tier": ["affluent", "mass"]})
    lake.publish("segments", d("2024-03-01"), lambda s: pq.write_table(tiers, s / "segments.parquet"))
    cfg = config(wm_strategy(), care_strategy())

    def compute(day):
        engine = DuckDBAdapter()
        try:
            engine.register_bank(lake, d(day))
            return outcomes.entries_with_outcomes(lake, engine, cfg, d(day), tmp_path)
        finally:
            engine.close()

    april = compute("2024-04-15")
    assert sorted(april["customer_id"].to_pylist()) == ["m1", "m1", "m2", "m3", "m4"]   # m5 enters on 05-01
    got = {(r["strategy"], r["customer_id"]): r for r in april.to_pylist()}
    assert (got[("wm", "m1")]["segment"], got[("wm", "m2")]["segment"], got[("wm", "m3")]["segment"]) == (
        "affluent", "mass", None)                                                        # m3 has no tier that day
    assert (got[("wm", "m2")]["stage"], got[("wm", "m2")]["reactivated"]) == ("dormant", False)
    assert (got[("wm", "m3")]["stage"], got[("wm", "m3")]["reactivated"]) == ("dormant", True)
    assert got[("wm", "m1")]["inflow"] == 3000.0
    assert not (tmp_path / "_entries.parquet").exists()                                  # the staging file is gone
    # publish April with a planted value: a closed window is never measured again
    planted = april.set_column(april.schema.get_field_index("inflow"), "inflow",
                               pa.array([12345.0] * april.num_rows, pa.float64()))
    lake.publish("outcomes", d("2024-04-15"), lambda s: pq.write_table(planted, s / "outcomes.parquet"))
    may = {(r["strategy"], r["customer_id"]): r for r in compute("2024-05-15").to_pylist()}
    assert may[("wm", "m1")]["inflow"] == 12345.0 and may[("care", "m1")]["inflow"] == 12345.0
    assert (may[("wm", "m5")]["inflow"], may[("wm", "m5")]["complete"], may[("wm", "m5")]["stage"]) == (
        400.0, False, "growing")
    assert len(may) == 6


def test_each_entry_keeps_the_control_share_its_strategy_was_planned_with_that_day():
    rows = [lists_row("2024-03-01", "c1"), lists_row("2024-03-02", "c2", group="control", status="control")]
    table = outcomes.entries(lists(rows), config(wm_strategy()), AS_OF, {(d("2024-03-01"), "wm"): 0.2})
    shares = dict(zip(table["customer_id"].to_pylist(), table["planned_holdout"].to_pylist(), strict=False))
    assert shares == {"c1": 0.2, "c2": 0.5}   # 03-02 is not in the stored maps: the current map's 50%
