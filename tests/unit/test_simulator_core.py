"""The simulator's pure core: lifecycle clocks and hazards, and the books' running balances."""

import numpy as np
import pytest

from lifeloop.data.simulator import lifecycle as L
from lifeloop.data.simulator import products as P
from lifeloop.data.simulator.ledger import NEVER, Accounts, Books, T
from lifeloop.data.simulator.writer import decimal_from_cents


def test_the_honeymoon_ends_ninety_days_after_opening_and_onboarding_after_seven():
    rng = np.random.default_rng(0)
    n = 3000
    stage = np.r_[np.full(n, L.S["honeymoon"]), np.full(n, L.S["onboarding"])].astype(np.int8)
    open_day = np.r_[np.full(n, -90), np.full(n, -7)].astype(np.int32)
    new = L.step(rng, stage, np.zeros(2 * n, np.int32), open_day, 0, np.zeros(2 * n, bool))
    after_honeymoon = np.bincount(new[:n], minlength=len(L.STAGES)) / n
    assert after_honeymoon[L.S["growing"]] == pytest.approx(0.55, abs=0.03)
    assert after_honeymoon[L.S["declining"]] == pytest.approx(0.25, abs=0.03)
    assert (new[n:] == L.S["honeymoon"]).all()


def test_a_frozen_customer_does_not_change_state_and_the_daily_hazards_match_the_table():
    rng = np.random.default_rng(1)
    n = 200_000
    stage = np.full(n, L.S["declining"], np.int8)
    frozen = np.zeros(n, bool)
    frozen[:1000] = True
    new = L.step(rng, stage, np.zeros(n, np.int32), np.full(n, -500, np.int32), 0, frozen)
    assert (new[:1000] == L.S["declining"]).all()
    share = np.bincount(new[1000:], minlength=len(L.STAGES)) / (n - 1000)
    # declining -> dormant 1/70 a day, -> churned 1/300 a day
    assert share[L.S["dormant"]] == pytest.approx(1 / 70, rel=0.1)
    assert share[L.S["churned"]] == pytest.approx(1 / 300, rel=0.15)
    assert (L.CUM_HAZARD[:, -1] == pytest.approx(1.0))


def test_honeymoon_activity_decays_towards_the_plain_level():
    stage = np.full(3, L.S["honeymoon"], np.int8)
    m = L.activity(stage, np.array([0, 30, 89]))
    assert m[0] == pytest.approx(2.3) and m[0] > m[1] > m[2] > 1.0
    assert L.activity(np.array([L.S["dormant"]], np.int8), np.array([400]))[0] == 0


def test_postings_keep_a_running_balance_in_booking_order():
    books = Books(Accounts(capacity=4))
    acc = books.acc.open(np.array([0, 1]), np.array([P.DEMAND, P.DEMAND]), 0, np.array([10_000, 500]))
    # 100.00 + 20.00 - 35.00 on account 0, -5.00 on account 1
    books.post(3, np.array([acc[0], acc[1], acc[0], acc[0]]), np.array([2_000, 500, 3_500, 0]),
               np.array([True, False, False, True]), T["transfer"], 0, 0, True)
    t = books.txns.concat()
    assert t["after"].tolist() == [12_000, 0, 8_500]       # the zero-amount posting is dropped
    assert books.acc.bal.tolist() == [8_500, 0]


def test_a_payment_to_a_credit_card_lowers_what_is_owed():
    books = Books(Accounts(capacity=2))
    card = books.acc.open(np.array([0]), np.array([P.INDEX["CC_STD"]]), 0, np.array([30_000]))
    books.post(1, card, np.array([10_000]), True, T["loan_payment"], 0, 0, False)
    books.post(1, card, np.array([2_500]), False, T["card_payment"], 0, 0, True)
    assert books.acc.bal.tolist() == [22_500]
    assert books.acc.maturity.tolist() == [NEVER]


def test_money_goes_from_cents_to_decimal_exactly():
    arr = decimal_from_cents(np.array([0, 1, 12_345, -250, 10**15]))
    assert [str(v) for v in arr.to_pylist()] == ["0.00", "0.01", "123.45", "-2.50", "10000000000000.00"]
