"""The simulated bank's calendar: working days, paydays, month ends, Spring Festival (春节) and holidays.

Everything is precomputed once per simulated period as NumPy arrays indexed by day number
(0 = the first simulated day), so the daily step only looks values up.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

# 春节 (Lunar New Year's Day), from the published Chinese calendar.
SPRING_FESTIVAL: dict[int, dt.date] = {
    2015: dt.date(2015, 2, 19), 2016: dt.date(2016, 2, 8), 2017: dt.date(2017, 1, 28),
    2018: dt.date(2018, 2, 16), 2019: dt.date(2019, 2, 5), 2020: dt.date(2020, 1, 25),
    2021: dt.date(2021, 2, 12), 2022: dt.date(2022, 2, 1), 2023: dt.date(2023, 1, 22),
    2024: dt.date(2024, 2, 10), 2025: dt.date(2025, 1, 29), 2026: dt.date(2026, 2, 17),
    2027: dt.date(2027, 2, 6), 2028: dt.date(2028, 1, 26), 2029: dt.date(2029, 2, 13),
    2030: dt.date(2030, 2, 3),
}
SF_RUNUP_DAYS = 21      # shopping, gifts and 红包 before the festival
SF_HOLIDAY_DAYS = 7     # the official week off, from New Year's Eve
# salary-day codes: a day of the month 1..28, or 0 for "the last working day of the month"
SALARY_DAYS = np.array([5, 10, 15, 20, 25, 0])
SALARY_DAY_WEIGHTS = np.array([0.2, 0.3, 0.15, 0.1, 0.15, 0.1])


def spring_festival(year: int) -> dt.date:
    """春节 of ``year``; outside the table, a mid-February approximation (said in docs)."""
    return SPRING_FESTIVAL.get(year, dt.date(year, 2, 5))


def _fixed_holidays(year: int) -> list[tuple[dt.date, int]]:
    # (first day, length): New Year, Qingming, Labour Day, National Day (国庆)
    return [(dt.date(year, 1, 1), 1), (dt.date(year, 4, 4), 3), (dt.date(year, 5, 1), 5), (dt.date(year, 10, 1), 7)]


class Calendar:
    """Day-indexed lookups for a simulated period (with a margin for maturities and paydays)."""

    def __init__(self, start: dt.date, days: int):
        self.start = start
        self.days = days
        # one extra month so that "the last working day of this month" is known on any day
        n = days + 40
        self.dates = [start + dt.timedelta(days=i) for i in range(n)]
        self.weekday = np.array([d.weekday() for d in self.dates], dtype=np.int8)
        holiday = np.zeros(n, bool)
        sf_offset = np.full(n, 999, dtype=np.int32)   # days relative to 春节 (negative = before)
        years = range(start.year - 1, self.dates[-1].year + 2)
        ordinals = np.array([d.toordinal() for d in self.dates])
        national = np.zeros(n, bool)
        for y in years:
            sf = spring_festival(y)
            off = ordinals - sf.toordinal()
            near = np.abs(off) < np.abs(sf_offset)
            sf_offset[near] = off[near]
            holiday |= (off >= -1) & (off < SF_HOLIDAY_DAYS - 1)
            for first, length in _fixed_holidays(y):
                o = ordinals - first.toordinal()
                holiday |= (o >= 0) & (o < length)
                if first.month == 10:
                    national |= (o >= 0) & (o < length)
        self.holiday = holiday
        self.sf_offset = sf_offset
        self.working = (self.weekday < 5) & ~holiday
        self.month_end = np.array([(d + dt.timedelta(days=1)).day == 1 for d in self.dates])
        self.day_of_month = np.array([d.day for d in self.dates], dtype=np.int8)
        self.month_key = np.array([d.year * 12 + d.month - 1 for d in self.dates], dtype=np.int32)
        # quarterly interest on demand deposits: 21 March, June, September, December (结息日)
        self.interest_day = np.array([d.day == 21 and d.month % 3 == 0 for d in self.dates])
        self.pay_codes = self._pay_codes()
        self.spend_mult = self._spend_mult(national)
        self.login_mult = np.where(holiday, 0.75, np.where(self.weekday >= 5, 0.85, 1.0))

    def date(self, day: int) -> dt.date:
        """The calendar date of day number ``day``."""
        return self.start + dt.timedelta(days=int(day))

    def _pay_codes(self) -> list[np.ndarray]:
        """For each day, the salary-day codes paid that day (shifted to the previous working day)."""
        out: list[list[int]] = [[] for _ in self.dates]
        months = sorted(set(self.month_key.tolist()))
        for mk in months:
            idx = np.flatnonzero(self.month_key == mk)
            for code in SALARY_DAYS.tolist():
                if code == 0:
                    target = idx[-1]
                else:
                    hit = idx[self.day_of_month[idx] == code]
                    if not len(hit):
                        continue
                    target = hit[0]
                # a month only partly inside the period: skip paydays we cannot place correctly
                if code == 0 and not self.month_end[idx[-1]]:
                    continue
                # a payday on a weekend or holiday moves to the working day before it in the same
                # month, or else (a month that starts with a holiday) to the first working day after
                t = target
                while t > idx[0] and not self.working[t]:
                    t -= 1
                while not self.working[t] and t < len(self.working) - 1:
                    t += 1
                out[t].append(code)
        return [np.array(c, dtype=np.int8) for c in out]

    def payday(self, code: int, month_key: int) -> int | None:
        """Day number on which salary code ``code`` is paid in a month (None if outside)."""
        for day, codes in enumerate(self.pay_codes):
            if self.month_key[day] == month_key and code in codes:
                return day
        return None

    def _spend_mult(self, national: np.ndarray) -> np.ndarray:
        """Seasonality of card spending: runs before 春节, a lull during it, other peaks."""
        m = np.ones(len(self.dates))
        m[self.weekday >= 5] *= 0.9
        runup = (self.sf_offset >= -SF_RUNUP_DAYS) & (self.sf_offset < -1)
        m[runup] *= 1.25 + 0.5 * (self.sf_offset[runup] + SF_RUNUP_DAYS) / SF_RUNUP_DAYS
        lull = (self.sf_offset >= -1) & (self.sf_offset < SF_HOLIDAY_DAYS - 1)
        m[lull] = 0.45
        m[national] *= 1.3
        m[self.month_end] *= 1.15
        m[np.array([d.month == 11 and d.day == 11 for d in self.dates])] *= 1.8  # 双十一
        return m
