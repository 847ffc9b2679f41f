"""Who banks here: branches, relationship managers (客户经理) and customers with fake but well-formed
personal data (Chinese names, mobiles, GB 11643 ID numbers, Luhn-valid card numbers on a test BIN).

None of the personal data is real: names are random draws, ID numbers carry random birth sequences
and a correct checksum, mobiles use real operator prefixes with random digits, cards use TEST BINs.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from lifeloop.data.cards import luhn_check_digit
from lifeloop.data.simulator.seasons import SALARY_DAY_WEIGHTS, SALARY_DAYS

SURNAMES = list("王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏卢蒋蔡贾丁魏薛叶阎")
SURNAME_W = np.r_[np.full(10, 6.0), np.full(10, 2.5), np.full(len(SURNAMES) - 20, 1.0)]
GIVEN = list("伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华玉兰萍红鹏飞建国志文斌"
             "宇浩然梓涵子轩欣怡佳琪思雨一诺俊杰晨曦雅婷")
# city, province, 6-digit administrative division code used in ID numbers, weight
CITIES = [
    ("上海", "上海", "310115", 0.16), ("北京", "北京", "110105", 0.14), ("深圳", "广东", "440305", 0.11),
    ("广州", "广东", "440106", 0.10), ("杭州", "浙江", "330106", 0.09), ("南京", "江苏", "320106", 0.07),
    ("苏州", "江苏", "320505", 0.07), ("成都", "四川", "510107", 0.07), ("武汉", "湖北", "420106", 0.06),
    ("西安", "陕西", "610113", 0.05), ("重庆", "重庆", "500103", 0.05), ("天津", "天津", "120101", 0.03),
]
OCCUPATIONS = ["企业职员", "公务员", "教师", "医生", "工程师", "销售", "个体工商户", "私营企业主", "自由职业", "退休",
               "学生"]
OCC_W = np.array([0.30, 0.06, 0.06, 0.04, 0.10, 0.10, 0.10, 0.04, 0.10, 0.0, 0.0])
MOBILE_PREFIXES = np.array([130, 131, 132, 133, 135, 136, 137, 138, 139, 150, 151, 152, 153, 155, 156, 158, 159,
                            177, 180, 185, 186, 187, 188, 189])
DEBIT_BIN = "621999"    # test BIN (documented as fake in docs/simulator.md)
CREDIT_BIN = "400000"   # the well-known test BIN range of card schemes
ID_WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2])
ID_CHECK = np.frombuffer(b"10X98765432", dtype=np.uint8)
TIERS = ("mass", "potential", "wealth", "private")
TIER_EDGES = np.array([50_000.0, 500_000.0, 6_000_000.0])  # RMB, docs/DOMAIN.md value tiers


@dataclass
class Population:
    """Static attributes of every customer (arrays indexed by customer number) plus the bank's staff."""

    n: int
    names: list[str]
    gender: np.ndarray        # "M"/"F"
    birth: np.ndarray         # ordinal dates
    city: np.ndarray          # index into CITIES
    occupation: np.ndarray    # index into OCCUPATIONS
    branch: np.ndarray        # index into branches
    rm: np.ndarray            # index into RMs or -1
    open_day: np.ndarray      # day number (negative: before the simulation)
    has_email: np.ndarray
    id_seq: np.ndarray        # 3-digit ID-number sequence (parity = gender)
    mobile: np.ndarray        # int64 11-digit numbers
    risk: np.ndarray          # 0 none, 1..5 = C1..C5
    risk_day: np.ndarray
    wealth: np.ndarray        # hidden target AUM (RMB)
    income: np.ndarray        # monthly income (RMB)
    payroll: np.ndarray
    employer: np.ndarray
    salary_code: np.ndarray
    activity: np.ndarray      # base customer-initiated transactions per day
    digital: np.ndarray       # base app logins per day
    branch_city: np.ndarray
    rm_branch: np.ndarray
    rm_names: list[str]
    consent: np.ndarray       # bool (n, 7): sms push email call rm wechat marketing, sms service


def tier_of(aum: np.ndarray) -> np.ndarray:
    """Value tier code 0..3 (mass, potential, wealth, private) of AUM amounts."""
    return np.searchsorted(TIER_EDGES, aum, side="right").astype(np.int8)


def random_names(rng: np.random.Generator, n: int) -> list[str]:
    """Fake Chinese full names: a common surname and one or two given-name characters."""
    s = rng.choice(len(SURNAMES), n, p=SURNAME_W / SURNAME_W.sum())
    g1 = rng.integers(0, len(GIVEN), n)
    g2 = np.where(rng.random(n) < 0.7, rng.integers(0, len(GIVEN), n), -1)
    given = GIVEN + [""]
    return [SURNAMES[a] + GIVEN[b] + given[c] for a, b, c in zip(s.tolist(), g1.tolist(), g2.tolist(), strict=False)]


def generate(rng: np.random.Generator, n: int, start: dt.date, days: int, arrival_share: float) -> Population:
    """Draw ``n`` customers: ~(1-arrival_share) already banking at the start, the rest arriving later."""
    city_w = np.array([c[3] for c in CITIES])
    n_branches = int(np.clip(n // 2500, len(CITIES), 400))  # every city has a branch
    branch_city = np.r_[np.arange(len(CITIES)), rng.choice(len(CITIES), max(0, n_branches - len(CITIES)),
                                                           p=city_w / city_w.sum())][:n_branches]
    rm_per_branch = rng.integers(2, 7, n_branches)
    rm_branch = np.repeat(np.arange(n_branches), rm_per_branch)
    rm_names = random_names(rng, len(rm_branch))

    age = rng.normal(41, 14, n)
    young = age < 18
    age[young] = 18 + rng.random(young.sum()) * 7   # adults only, without piling up on the 18th birthday
    age = np.minimum(age, 88)
    gender = np.where(rng.random(n) < 0.5, "M", "F")
    cust_city = rng.choice(len(CITIES), n, p=city_w / city_w.sum())
    # home branch: a random branch in the customer's city (every city has at least one)
    by_city = [np.flatnonzero(branch_city == c) for c in range(len(CITIES))]
    pick = rng.random(n)
    branch = np.empty(n, np.int32)
    for c in range(len(CITIES)):
        m = cust_city == c
        branch[m] = by_city[c][(pick[m] * len(by_city[c])).astype(int)]
    occ = rng.choice(len(OCCUPATIONS), n, p=OCC_W / OCC_W.sum())
    occ[age >= 60] = OCCUPATIONS.index("退休")
    occ[age < 23] = OCCUPATIONS.index("学生")

    # hidden wealth: a log-normal body and a Pareto tail (the top 1% hold a large share of AUM)
    age_factor = np.interp(age, [18, 30, 45, 60, 88], [0.25, 0.8, 1.3, 1.6, 1.2])
    wealth = rng.lognormal(np.log(7500), 1.45, n) * age_factor
    tail = rng.random(n) < 0.035
    wealth[tail] = 450_000 * (1 - rng.random(tail.sum())) ** (-1 / 1.25)
    owner = occ == OCCUPATIONS.index("私营企业主")
    wealth[owner] *= 2.5
    wealth = np.clip(wealth, 50, 200_000_000)
    rank = np.argsort(np.argsort(wealth)) / max(n - 1, 1)
    income = np.clip(5200 * np.exp(1.6 * (rank - 0.5)) * rng.lognormal(0, 0.35, n), 1800, 300_000)
    income[occ == OCCUPATIONS.index("学生")] *= 0.3

    # tenure: most customers have banked here for years; a share arrives during the simulation
    arriving = rng.random(n) < arrival_share
    tenure = np.minimum(rng.exponential(4 * 365, n), (age - 18) * 365).astype(np.int32)
    open_day = np.where(arriving, rng.integers(0, max(days, 1), n), -tenure).astype(np.int32)
    start_ord = start.toordinal()
    birth = (start_ord - (age * 365.25).astype(np.int64)).astype(np.int64)

    working = (age < 60) & (occ != OCCUPATIONS.index("学生")) & (occ != OCCUPATIONS.index("个体工商户"))
    payroll = working & (rng.random(n) < 0.7)
    n_employers = max(3, n // 40)
    employer_day = rng.choice(SALARY_DAYS, n_employers, p=SALARY_DAY_WEIGHTS)
    employer = np.where(payroll, rng.integers(0, n_employers, n), -1).astype(np.int32)
    salary_code = np.where(payroll, employer_day[np.maximum(employer, 0)], -1).astype(np.int8)

    activity = np.maximum(rng.gamma(2.0, 0.14, n) * np.interp(age, [18, 35, 60, 88], [1.2, 1.1, 0.8, 0.4]), 0.035)
    digital = rng.gamma(1.2, 0.25, n) * np.interp(age, [18, 35, 60, 88], [1.3, 1.1, 0.5, 0.1])
    digital[rng.random(n) < np.interp(age, [18, 60, 88], [0.05, 0.3, 0.8])] = 0.0  # no app
    t = tier_of(wealth)
    rm = np.full(n, -1, np.int32)
    wants_rm = rng.random(n) < np.array([0.05, 0.6, 0.95, 1.0])[t]
    starts = np.r_[0, np.cumsum(rm_per_branch)]
    rm[wants_rm] = starts[branch[wants_rm]] + (rng.random(wants_rm.sum()) * rm_per_branch[branch[wants_rm]]).astype(int)
    risk = np.where(rng.random(n) < np.array([0.45, 0.8, 0.95, 1.0])[t],
                    rng.choice(5, n, p=[0.15, 0.35, 0.3, 0.15, 0.05]) + 1, 0).astype(np.int8)
    risk_day = np.maximum(open_day, -rng.integers(0, 720, n)).astype(np.int32)
    has_email = rng.random(n) < 0.45
    consent = rng.random((n, 7)) < np.array([0.9, 0.8, 0.6, 0.7, 0.85, 0.4, 0.97])
    consent[:, 2] &= has_email
    seq = rng.integers(0, 500, n) * 2 + (gender == "M")
    mobile = MOBILE_PREFIXES[rng.integers(0, len(MOBILE_PREFIXES), n)] * 10**8 + rng.integers(0, 10**8, n)
    return Population(n, random_names(rng, n), gender, birth, cust_city, occ, branch, rm, open_day, has_email,
                      seq, mobile, risk, risk_day, wealth, income, payroll, employer, salary_code,
                      activity, digital, branch_city, rm_branch, rm_names, consent)


def _digits(values: np.ndarray, width: int) -> np.ndarray:
    """Integers -> an (n, width) matrix of decimal digits."""
    if width <= 9:   # 32-bit arithmetic is twice as fast and exact below 10**9
        p32 = 10 ** np.arange(width - 1, -1, -1, dtype=np.int32)
        return ((values.astype(np.int32)[:, None] // p32) % 10).astype(np.int8)
    p = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    return ((values.astype(np.int64)[:, None] // p) % 10).astype(np.int8)


def _ascii(mat: np.ndarray) -> list[str]:
    """An (n, k) matrix of ASCII codes -> Python strings."""
    mat = np.ascontiguousarray(mat.astype(np.uint8))
    return mat.view(f"S{mat.shape[1]}").ravel().astype(str).tolist()


def id_numbers(pop: Population) -> list[str]:
    """18-digit resident ID numbers with a valid GB 11643-1999 check digit (fake persons)."""
    area = np.array([int(c[2]) for c in CITIES])[pop.city]
    ymd = np.array([int(dt.date.fromordinal(int(o)).strftime("%Y%m%d")) for o in pop.birth])
    body = np.hstack([_digits(area, 6), _digits(ymd, 8), _digits(pop.id_seq, 3)])
    check = ID_CHECK[(body * ID_WEIGHTS).sum(1) % 11]
    return _ascii(np.hstack([body + 48, check[:, None]]))


def card_codes(bin_code: str, serial: np.ndarray) -> np.ndarray:
    """16-digit Luhn-valid card numbers as an (n, 16) matrix of ASCII codes: test BIN, 9-digit serial, check."""
    n = len(serial)
    digits = _digits(serial, 9)
    out = np.empty((n, 16), np.uint8)
    out[:, :6] = np.frombuffer(bin_code.encode(), np.uint8)
    out[:, 6:15] = digits + 48
    out[:, 15] = luhn_check_digit(out[:, :15].astype(np.int16) - 48) + 48  # Luhn over the 15-digit payload
    return out


def card_numbers(bin_code: str, serial: np.ndarray) -> list[str]:
    """16-digit Luhn-valid card numbers: a test BIN, a 9-digit serial, the check digit."""
    return _ascii(card_codes(bin_code, serial))


def mobiles(pop: Population) -> list[str]:
    """11-digit mobile numbers as text."""
    return _ascii(_digits(pop.mobile, 11) + 48)
