"""What customers do each day with their money: income, spending, repayments, maturities, outflows.

Each function handles one kind of flow for every customer at once (NumPy), posting transactions
through :class:`~lifeloop.data.simulator.ledger.Books`. ``bank`` is the running
:class:`~lifeloop.data.simulator.bank.BankEngine`; ``d`` is the day number.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from lifeloop.data.simulator import lifecycle as L
from lifeloop.data.simulator import products as P
from lifeloop.data.simulator.ledger import CH, CP, NEVER, T
from lifeloop.data.simulator.population import tier_of
from lifeloop.data.simulator.seasons import SF_RUNUP_DAYS

if TYPE_CHECKING:
    from lifeloop.data.simulator.bank import BankEngine

SPEND_SHARE = 0.9           # share of monthly income a customer spends at their target cash level
# customer-initiated spending: type, probability, amount factor, counterparty, channel distribution
SPEND_TYPES = np.array([T["card_payment"], T["transfer"], T["household_payment"], T["cash"], T["other"]])
SPEND_P = np.array([0.55, 0.2, 0.1, 0.1, 0.05])
SPEND_P_SF = np.array([0.53, 0.21, 0.05, 0.18, 0.03])   # before 春节: cash for 红包 and transfers to family
SPEND_AMOUNT = np.array([1.0, 1.4, 0.8, 1.5, 1.0])
SPEND_CP = np.array([CP["merchant"], CP["individual"], CP["merchant"], CP["other"], CP["other"]])
_CHANNEL_P = np.zeros((5, len(CH)))
_CHANNEL_P[0, [CH["pos"], CH["mobile"]]] = [0.6, 0.4]
_CHANNEL_P[1, [CH["mobile"], CH["online"], CH["counter"]]] = [0.8, 0.15, 0.05]
_CHANNEL_P[2, [CH["mobile"], CH["online"]]] = [0.85, 0.15]
_CHANNEL_P[3, [CH["atm"], CH["counter"]]] = [0.85, 0.15]
_CHANNEL_P[4, [CH["mobile"], CH["branch"]]] = [0.7, 0.3]
SPEND_CHANNEL_CUM = np.cumsum(_CHANNEL_P, axis=1)
# at maturity (by state): reinvest (roll over), move the money out of the bank, or let it sit
REINVEST = np.array([0, .6, .6, .65, .7, .2, .5, 0, .5])
MOVE_OUT = np.array([0, .1, .1, .1, .08, .5, .05, 0, .1])
DEMAND_SHARE = np.array([0.8, 0.35, 0.2, 0.12])   # cash share of wealth by tier
HOUR_W = np.array([1, .5, .3, .2, .2, .4, 1.5, 3, 4, 3, 2.5, 3, 4, 3, 2.5, 2.5, 2.5, 3, 4, 5, 6, 6, 4.5, 2.5])
HOUR_CUM = np.cumsum(HOUR_W / HOUR_W.sum())


def cents(rmb: np.ndarray) -> np.ndarray:
    """RMB amounts -> integer cents."""
    return np.round(np.asarray(rmb) * 100).astype(np.int64)


def demand_balance(bank: BankEngine, cust: np.ndarray) -> np.ndarray:
    """Cash (demand deposit) balance of customers, in cents."""
    return bank.books.acc.bal[bank.c["primary"][cust]]


def income(bank: BankEngine, d: int) -> None:
    """Salary on the employer's payday (代发), pensions on the 15th, other transfers in at random."""
    c, cal, rng = bank.c, bank.cal, bank.rng
    share = L.INCOME[np.maximum(c["stage"], 0)] * (c["stage"] >= 0) * (c["primary"] >= 0)
    codes = cal.pay_codes[d]
    if len(codes):
        paid = np.flatnonzero(c["payroll"] & (share > 0) & np.isin(c["salary_code"], codes))
        # the year-end bonus (年终奖) arrives with the last salary before 春节
        bonus = 1.8 if -31 <= cal.sf_offset[d] < 0 else 1.0
        amount = c["income"][paid] * bonus * (1 + 0.03 * rng.standard_normal(len(paid)))
        bank.books.post(d, c["primary"][paid], cents(amount), True, T["salary"], CH["system"], CP["employer"], False)
        c["last_salary"][paid] = d
    if cal.day_of_month[d] == 15:
        p = np.flatnonzero(c["pension"] & (share > 0))
        bank.books.post(d, c["primary"][p], cents(c["income"][p] * 0.8), True, T["pension"], CH["system"],
                        CP["government"], False)
    other = np.flatnonzero(~c["payroll"] & ~c["pension"] & (rng.random(len(share)) < share / 10))
    amount = c["income"][other] / 3 * rng.lognormal(-0.125, 0.5, len(other))
    bank.books.post(d, c["primary"][other], cents(amount), True, T["transfer"], CH["system"], CP["individual"], False)


def spending(bank: BankEngine, d: int) -> None:
    """Customer-initiated payments, transfers and withdrawals, with seasonality and payday boosts."""
    c, rng, books = bank.c, bank.rng, bank.books
    stage = c["stage"]
    lam = c["activity"] * L.activity(stage, d - c["open_day"]) * bank.cal.spend_mult[d]
    lam = np.where(c["payroll"] & (d - c["last_salary"] < 3), lam * 1.4, lam)
    lam[c["primary"] < 0] = 0
    n = rng.poisson(lam)
    who = np.flatnonzero(n)
    if not len(who):
        return
    cust = np.repeat(who, n[who])
    m = len(cust)
    dbal = demand_balance(bank, cust) / 100
    target = np.maximum(c["demand_target"][cust], 100)
    scale = c["income"][cust] * SPEND_SHARE / (30 * c["activity"][cust]) * np.clip(dbal / target, 0.3, 3) ** 0.7
    runup = -SF_RUNUP_DAYS <= bank.cal.sf_offset[d] < -1
    kind = np.searchsorted(np.cumsum(SPEND_P_SF if runup else SPEND_P), rng.random(m), side="right").clip(0, 4)
    amount = scale * SPEND_AMOUNT[kind] * rng.lognormal(-0.5, 1.0, m)
    acc = c["primary"][cust]
    on_card = (kind == 0) & (c["card"][cust] >= 0) & (rng.random(m) < 0.5)
    acc = np.where(on_card, c["card"][cust], acc)
    # nobody spends more cash than they have: scale each customer's debits to 97% of the balance
    local = np.searchsorted(who, cust)
    total = np.bincount(local, weights=np.where(on_card, 0, amount), minlength=len(who))
    have = demand_balance(bank, who) / 100
    factor = np.minimum(1.0, 0.97 * have / np.maximum(total, 1e-9))
    amount = np.where(on_card, amount, amount * factor[local])
    amount = np.where(kind == 3, np.floor(amount / 100) * 100, amount)   # ATM cash in hundreds
    channel = (rng.random(m)[:, None] > SPEND_CHANNEL_CUM[kind]).sum(1)
    books.post(d, acc, np.floor(amount * 100).astype(np.int64), False, SPEND_TYPES[kind], channel, SPEND_CP[kind], True)


def repayments(bank: BankEngine, d: int) -> None:
    """Credit-card statements are paid by auto-debit on the 25th; loan instalments on the 10th."""
    acc, books, c = bank.books.acc, bank.books, bank.c
    dom = bank.cal.day_of_month[d]
    if dom not in (10, 25):
        return
    ptype = "credit_card" if dom == 25 else "loan"
    mask = acc.is_open & (acc.bal > 0) & (P.TYPES[acc.prod] == ptype)
    a = np.flatnonzero(mask)
    if not len(a):
        return
    owner = acc.cust[a]
    due = acc.bal[a] if ptype == "credit_card" else np.minimum(acc.installment[a], acc.bal[a])
    n_due = np.bincount(owner, minlength=len(c["stage"]))[owner]
    pay = np.minimum(due, demand_balance(bank, owner) // np.maximum(n_due, 1))
    books.post(d, c["primary"][owner], pay, False, T["loan_payment"], CH["system"], CP["internal"], False)
    books.post(d, a, pay, True, T["loan_payment"], CH["system"], CP["internal"], False, record=False)
    if ptype == "loan":
        done = a[acc.bal[a] <= 0]
        acc.close(done, d)


def maturities(bank: BankEngine, d: int) -> None:
    """Time deposits and 理财 mature: the customer rolls over, moves the money out, or lets it sit."""
    acc, books, c, rng = bank.books.acc, bank.books, bank.c, bank.rng
    a = np.flatnonzero(acc.maturity == d)
    a = a[acc.is_open[a] & P.IS_FIXED_TERM[acc.prod[a]]]
    if not len(a):
        return
    prod, owner = acc.prod[a], acc.cust[a]
    interest = np.round(acc.bal[a] * P.YIELD[prod] * P.TERM[prod] / 365).astype(np.int64)
    st = np.maximum(c["stage"][owner], 0)
    u = rng.random(len(a))
    roll = u < REINVEST[st]
    out = ~roll & (u < REINVEST[st] + MOVE_OUT[st])
    books.post(d, a[roll], interest[roll], True, T["interest"], CH["system"], CP["internal"], False)
    acc.cols["maturity"][a[roll]] = d + P.TERM[prod[roll]]
    gone = a[~roll]
    paid = acc.bal[gone] + interest[~roll]
    acc.cols["bal"][gone] = 0
    acc.close(gone, d)
    books.post(d, c["primary"][owner[~roll]], paid, True, T["maturity"], CH["system"], CP["internal"], False)
    leave = out[~roll]
    books.post(d, c["primary"][owner[~roll][leave]], paid[leave], False, T["transfer"], CH["mobile"], CP["bank"], True)


def outflows(bank: BankEngine, d: int) -> None:
    """Declining customers move money to other banks and redeem funds: the outflows before churn."""
    c, rng, books, acc = bank.c, bank.rng, bank.books, bank.books.acc
    dec = c["stage"] == L.S["declining"]
    who = np.flatnonzero(dec & (rng.random(len(dec)) < 0.04) & (c["primary"] >= 0))
    share = rng.uniform(0.2, 0.6, len(who))
    books.post(d, c["primary"][who], (demand_balance(bank, who) * share).astype(np.int64), False, T["transfer"],
               CH["mobile"], CP["bank"], True)
    redeem = dec & (rng.random(len(dec)) < 0.01)
    if redeem.any():
        a = np.flatnonzero(redeem[acc.cust] & acc.is_open & (P.TYPES[acc.prod] == "fund"))
        _redeem(bank, d, a)


def _redeem(bank: BankEngine, d: int, a: np.ndarray) -> None:
    """Sell holdings back into the owner's demand account and close them."""
    acc, books, c = bank.books.acc, bank.books, bank.c
    if not len(a):
        return
    amount = acc.bal[a].copy()
    acc.cols["bal"][a] = 0
    acc.close(a, d)
    books.post(d, c["primary"][acc.cust[a]], amount, True, T["redemption"], CH["mobile"], CP["internal"], True)


def close_customers(bank: BankEngine, d: int, who: np.ndarray) -> None:
    """Churn: redeem everything, repay debts, transfer the cash out and close every account."""
    acc, books, c = bank.books.acc, bank.books, bank.c
    if not len(who):
        return
    leaving = np.zeros(len(c["stage"]), bool)
    leaving[who] = True
    a = np.flatnonzero(leaving[acc.cust] & acc.is_open)
    kinds = P.TYPES[acc.prod[a]]
    assets = a[P.IS_ASSET[acc.prod[a]] & (kinds != "demand_deposit")]
    _redeem(bank, d, assets)
    debts = a[P.IS_LIABILITY[acc.prod[a]]]
    books.post(d, debts, acc.bal[debts].copy(), True, T["loan_payment"], CH["online"], CP["bank"], True)
    prim = c["primary"][who]
    prim = prim[prim >= 0]
    books.post(d, prim, acc.bal[prim].copy(), False, T["transfer"], CH["mobile"], CP["bank"], True)
    acc.close(a[acc.is_open[a]], d)
    c["card"][who] = -1


def interest_and_markets(bank: BankEngine, d: int) -> None:
    """Quarterly demand-deposit interest on the 21st (结息日); month-end revaluation of funds."""
    acc, books, cal, rng = bank.books.acc, bank.books, bank.cal, bank.rng
    if cal.interest_day[d]:
        a = np.flatnonzero(acc.is_open & (acc.prod == P.DEMAND) & (acc.bal > 0))
        books.post(d, a, np.round(acc.bal[a] * P.YIELD[P.DEMAND] / 4).astype(np.int64), True, T["interest"],
                   CH["system"], CP["internal"], False)
    if cal.month_end[d]:
        fund = np.flatnonzero(P.TYPES == "fund")
        ret = P.YIELD[fund] / 12 + P.VOLATILITY[fund] * np.sqrt(21) * rng.standard_normal(len(fund))
        factor = np.ones(len(P.CATALOGUE))
        factor[fund] = np.exp(ret)
        a = np.flatnonzero(acc.is_open & (P.TYPES[acc.prod] == "fund"))
        acc.cols["bal"][a] = np.round(acc.bal[a] * factor[acc.prod[a]]).astype(np.int64)


def digital(bank: BankEngine, d: int) -> None:
    """App logins (with the activity of the customer's state), product page views and complaints."""
    c, rng, cal = bank.c, bank.rng, bank.cal
    stage = c["stage"]
    alive = (stage >= 0) & (stage != L.S["churned"])
    rate = c["digital"] * np.maximum(L.activity(stage, d - c["open_day"]), 0.05) * alive * cal.login_mult[d]
    n = rng.poisson(rate)
    who = np.repeat(np.arange(len(n)), n)
    second = (np.searchsorted(HOUR_CUM, rng.random(len(who))) * 3600 + rng.integers(0, 3600, len(who))).clip(0, 86399)
    bank.books.events.add(day=d, cust=who, second=second, type=0, detail=-1)
    views = who[rng.random(len(who)) < 0.3]
    page = rng.choice(len(P.CATALOGUE), len(views))
    bank.books.events.add(day=d, cust=views, second=np.minimum(second[: len(views)] + 60, 86399), type=1, detail=page)
    p = np.where(stage == L.S["declining"], 1 / 400, 1 / 30000) * alive
    comp = np.flatnonzero(rng.random(len(stage)) < p)
    bank.books.events.add(day=d, cust=comp, second=rng.integers(9 * 3600, 18 * 3600, len(comp)), type=2, detail=-1)


def drift(bank: BankEngine) -> None:
    """Growing customers build wealth; declining ones lose it (the hidden target AUM moves)."""
    c = bank.c
    g = np.where(c["stage"] == L.S["growing"], 1.0006, np.where(c["stage"] == L.S["declining"], 0.997, 1.0))
    c["wealth"] *= g
    c["demand_target"] = c["wealth"] * DEMAND_SHARE[tier_of(c["wealth"])]


def initial_holdings(bank: BankEngine, who: np.ndarray) -> None:
    """Accounts of customers who banked here before day 0: cash plus products by tier."""

    c, rng, acc = bank.c, bank.rng, bank.books.acc
    wealth = c["wealth"][who]
    tier = tier_of(wealth)
    odd = c["open_day"][who]
    own = {"time_deposit": [.25, .5, .7, .8], "wealth": [.1, .4, .7, .9], "fund": [.05, .25, .5, .7],
           "insurance": [.03, .12, .25, .4]}
    weights = np.zeros((len(who), len(own)))
    for j, p in enumerate(own.values()):
        weights[:, j] = (rng.random(len(who)) < np.array(p)[tier]) * rng.gamma(1.0, 1.0, len(who))
    held = weights.sum(1) > 0
    dshare = np.where(held, DEMAND_SHARE[tier], 1.0)
    cash = wealth * dshare * rng.lognormal(-0.045, 0.3, len(who))
    c["primary"][who] = acc.open(who, np.full(len(who), P.DEMAND), odd, cents(cash))
    invest = wealth * (1 - dshare)
    for j, fam in enumerate(own):
        has = np.flatnonzero(weights[:, j] > 0)
        ids, w = P.FAMILY[fam]
        prod = np.array([P.INDEX[i] for i in ids])[rng.choice(len(ids), len(has), p=w)]
        term = P.TERM[prod]
        opened = np.maximum(odd[has], -(rng.random(len(has)) * np.maximum(term, 400)).astype(np.int32))
        mat = np.where(term > 0, opened + term, NEVER)
        # a fixed-term product opened long ago has rolled over: its next maturity is still ahead
        mat = np.where(mat < 1, 1 + (-mat) % np.maximum(term, 1), mat)
        bal = invest[has] * weights[has, j] / weights[has].sum(1)
        acc.open(who[has], prod, opened, cents(bal), mat)
    for fam, p in (("credit_card", [.3, .45, .6, .7]), ("loan", [.05, .08, .05, .03])):
        has = np.flatnonzero(rng.random(len(who)) < np.array(p)[tier])
        ids, w = P.FAMILY[fam]
        prod = np.array([P.INDEX[i] for i in ids])[rng.choice(len(ids), len(has), p=w)]
        opened = np.maximum(odd[has], -rng.integers(0, 360, len(has))).astype(np.int32)
        if fam == "loan":
            principal = np.round(rng.uniform(20_000, 150_000, len(has)), -2)
            left = principal * (opened + 365) / 365
            new = acc.open(who[has], prod, opened, cents(np.maximum(left, 1000)), opened + 365, cents(principal / 12))
        else:
            new = acc.open(who[has], prod, opened, 0)
            c["card"][who[has]] = new
