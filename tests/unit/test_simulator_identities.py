"""The simulated bank's fake personal data is well-formed, and its calendar knows Chinese paydays and holidays."""

import datetime as dt

import numpy as np

from lifeloop.data.simulator import population as PO
from lifeloop.data.simulator.seasons import Calendar, spring_festival


def gb11643_ok(id_number: str) -> bool:
    """Hand-written GB 11643-1999 check (ISO 7064 MOD 11-2)."""
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    total = sum(int(c) * w for c, w in zip(id_number[:17], weights, strict=False))
    return "10X98765432"[total % 11] == id_number[17]


def luhn_ok(number: str) -> bool:
    digits = [int(c) for c in number][::-1]
    total = sum(d if i % 2 == 0 else (d * 2 - 9 if d * 2 > 9 else d * 2) for i, d in enumerate(digits))
    return total % 10 == 0


def small_population(n=400):
    return PO.generate(np.random.default_rng(11), n, dt.date(2024, 1, 1), 100, 0.1)


def test_a_known_id_number_passes_the_hand_written_check():
    # the example from the standard's annex: 11010519491231002X
    assert gb11643_ok("11010519491231002X") and not gb11643_ok("110105194912310021")


def test_every_id_number_has_a_valid_check_digit_birth_date_and_gender_digit():
    pop = small_population()
    ids = PO.id_numbers(pop)
    assert all(len(i) == 18 and gb11643_ok(i) for i in ids)
    for i, number in enumerate(ids[:50]):
        birth = dt.date.fromordinal(int(pop.birth[i]))
        assert number[6:14] == birth.strftime("%Y%m%d")
        assert (int(number[16]) % 2 == 1) == (pop.gender[i] == "M")


def test_card_numbers_use_the_test_bin_and_pass_the_luhn_check():
    cards = PO.card_numbers(PO.CREDIT_BIN, np.arange(200))
    # 4000000000000002 is the card schemes' well-known test number (serial 0)
    assert cards[0] == "4000000000000002"
    assert all(len(c) == 16 and c.startswith(PO.CREDIT_BIN) and luhn_ok(c) for c in cards)
    assert len(set(cards)) == 200


def test_mobiles_are_eleven_digits_with_an_operator_prefix():
    pop = small_population()
    mobiles = PO.mobiles(pop)
    prefixes = {str(p) for p in PO.MOBILE_PREFIXES}
    assert all(len(m) == 11 and m.isdigit() and m[:3] in prefixes for m in mobiles)


def test_names_are_chinese_with_a_known_surname():
    names = small_population().names
    assert all(2 <= len(n) <= 3 and n[0] in PO.SURNAMES for n in names)


def test_spring_festival_2024_is_on_10_february_and_spending_runs_up_before_it():
    assert spring_festival(2024) == dt.date(2024, 2, 10)
    cal = Calendar(dt.date(2024, 1, 1), 120)
    day = (dt.date(2024, 2, 10) - cal.start).days
    assert cal.spend_mult[day - 5] > 1.3          # the run-up
    assert cal.spend_mult[day + 2] < 0.6          # the holiday lull
    assert cal.holiday[day] and not cal.working[day]


def test_a_payday_on_a_saturday_is_paid_on_the_friday_before():
    cal = Calendar(dt.date(2024, 1, 1), 366)
    august = 2024 * 12 + 7
    # 10 August 2024 is a Saturday
    assert cal.date(cal.payday(10, august)) == dt.date(2024, 8, 9)


def test_a_payday_inside_the_national_day_holiday_moves_to_the_first_working_day_after_it():
    cal = Calendar(dt.date(2024, 1, 1), 366)
    october = 2024 * 12 + 9
    assert cal.date(cal.payday(5, october)) == dt.date(2024, 10, 8)


def test_the_last_working_day_code_pays_on_the_last_working_day_of_the_month():
    cal = Calendar(dt.date(2024, 1, 1), 366)
    # 30 June 2024 is a Sunday
    assert cal.date(cal.payday(0, 2024 * 12 + 5)) == dt.date(2024, 6, 28)


def test_value_tiers_follow_the_documented_aum_edges():
    tiers = PO.tier_of(np.array([0, 49_999.99, 50_000, 499_999, 500_000, 5_999_999, 6_000_000]))
    assert tiers.tolist() == [0, 0, 1, 1, 2, 2, 3]
