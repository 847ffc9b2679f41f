"""The RFM summary the CLV models are fitted on: one row per customer from a transaction table (pure).

Conventions of the published CDNOW examples (Fader, Hardie & Lee 2005; Fader & Hardie's CDNOW notes):

- purchases on the same day are one transaction (their amounts added);
- the first purchase starts the customer's clock and is not counted: ``frequency`` is the number of
  *repeat* purchase days;
- ``recency`` is the time from the first purchase to the last repeat purchase (0 without repeats);
- ``T`` is the customer's age: the time from the first purchase to the end of the window;
- ``monetary_value`` is the mean amount of the repeat purchases (0 without repeats);
- time is measured in days and divided by the period's length, so weeks are fractional (213 days = 30.43 weeks).

With ``calibration_end``, the model window ends there; customers whose first purchase is later are left
out, and the holdout (calibration_end, observation_end] is summarised as ``frequency_holdout``,
``monetary_value_holdout`` and ``duration_holdout``. Transactions after ``observation_end`` are ignored.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from lifeloop.errors import ConfigError, DataError, Problem

if TYPE_CHECKING:
    import pyarrow as pa

PERIOD_DAYS = {"D": 1, "W": 7}
UNITS = {"D": "days", "W": "weeks"}
_SHOWN = 5


def rfm_summary(transactions: Any, customer_col: str, date_col: str, amount_col: str, *,
                observation_end: dt.date, period: str = "W", calibration_end: dt.date | None = None) -> pa.Table:
    """One row per customer: frequency, recency, T, monetary_value (and holdout columns with ``calibration_end``)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if period not in PERIOD_DAYS:
        raise ConfigError(f"Unknown period {period!r}", problems=[Problem(f"period {period!r}", field="period")],
                          hint=f"use one of {', '.join(PERIOD_DAYS)} (D = days, W = weeks)")
    if calibration_end is not None and calibration_end >= observation_end:
        raise ConfigError(f"calibration_end {calibration_end} is not before observation_end {observation_end}",
                          problems=[Problem("not before observation_end", field="calibration_end")])
    table = transactions if isinstance(transactions, pa.Table) else pa.table(transactions)
    for name in (customer_col, date_col, amount_col):
        if name not in table.column_names:
            raise DataError(f"Required column {name} missing", problems=[Problem("missing", column=name)],
                            hint=f"columns present: {', '.join(table.column_names) or 'none'}")
    ids = table[customer_col].combine_chunks()
    days = _days(table[date_col].combine_chunks(), date_col)
    amounts = _amounts(table[amount_col].combine_chunks(), amount_col)
    _no_nulls(ids, customer_col)

    end = _epoch_day(observation_end)
    cal_end = _epoch_day(calibration_end) if calibration_end is not None else end
    keep = days <= end
    ids, days, amounts = ids.filter(pa.array(keep)), days[keep], amounts[keep]

    # customers numbered in sorted id order, so the summary's row order does not depend on the input's
    unique = ids.unique()
    unique = unique.take(pc.sort_indices(unique))
    code = pc.index_in(ids, value_set=unique).to_numpy(zero_copy_only=False).astype(np.int64)

    # one transaction per customer-day, amounts added (the CDNOW convention)
    order = np.lexsort((days, code))
    code, days, amounts = code[order], days[order], amounts[order]
    new_day = np.ones(len(code), dtype=bool)
    new_day[1:] = (code[1:] != code[:-1]) | (days[1:] != days[:-1])
    starts = np.flatnonzero(new_day)
    code, days, amounts = code[starts], days[starts], np.add.reduceat(amounts, starts) if len(starts) else amounts

    n = len(unique)
    first = np.full(n, np.iinfo(np.int64).max)
    np.minimum.at(first, code, days)
    in_cal = days <= cal_end
    n_cal = np.bincount(code[in_cal], minlength=n)
    last_cal = first.copy()
    np.maximum.at(last_cal, code[in_cal], days[in_cal])
    spend_cal = np.bincount(code[in_cal], weights=amounts[in_cal], minlength=n)
    first_spend = np.zeros(n)
    is_first = days == first[code]
    first_spend[code[is_first]] = amounts[is_first]

    cohort = first <= cal_end                       # first purchase inside the model window
    unit = PERIOD_DAYS[period]
    frequency = (n_cal - 1)[cohort]
    recency = ((last_cal - first) / unit)[cohort]
    age = ((cal_end - first) / unit)[cohort]
    repeat_spend = (spend_cal - first_spend)[cohort]
    with np.errstate(invalid="ignore", divide="ignore"):
        monetary = np.where(frequency > 0, repeat_spend / np.maximum(frequency, 1), 0.0)
    out = {customer_col: unique.filter(pa.array(cohort)), "frequency": pa.array(frequency, pa.int64()),
           "recency": pa.array(recency, pa.float64()), "T": pa.array(age, pa.float64()),
           "monetary_value": pa.array(monetary, pa.float64())}
    if calibration_end is not None:
        hold = ~in_cal
        n_hold = np.bincount(code[hold], minlength=n)[cohort]
        spend_hold = np.bincount(code[hold], weights=amounts[hold], minlength=n)[cohort]
        out["frequency_holdout"] = pa.array(n_hold, pa.int64())
        out["monetary_value_holdout"] = pa.array(np.where(n_hold > 0, spend_hold / np.maximum(n_hold, 1), 0.0))
        out["duration_holdout"] = pa.array(np.full(int(cohort.sum()), (end - cal_end) / unit), pa.float64())
    return pa.table(out)


def _epoch_day(day: dt.date) -> int:
    if isinstance(day, dt.datetime):
        day = day.date()
    return (day - dt.date(1970, 1, 1)).days


def _no_nulls(values: Any, name: str) -> None:
    import numpy as np
    import pyarrow.compute as pc

    if values.null_count:
        rows = np.flatnonzero(pc.is_null(values).to_numpy(zero_copy_only=False))
        raise DataError(f"Column {name} has {values.null_count:,} missing values", total=int(values.null_count),
                        problems=[Problem("missing", row=int(i) + 1, column=name) for i in rows[:_SHOWN]])


def _days(values: Any, name: str) -> Any:
    """Dates (date, timestamp or ISO text) as whole days since 1970-01-01."""
    import pyarrow as pa
    import pyarrow.compute as pc

    _no_nulls(values, name)
    kind = values.type
    try:
        if pa.types.is_string(kind) or pa.types.is_large_string(kind):
            values = values.cast(pa.date32())
        elif pa.types.is_timestamp(kind):
            values = pc.floor_temporal(values, unit="day").cast(pa.timestamp("s")).cast(pa.date32())
        elif not pa.types.is_date(kind):
            raise pa.ArrowInvalid(f"type {kind}")
        return values.cast(pa.date32()).cast(pa.int32()).to_numpy(zero_copy_only=False).astype("int64")
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
        raise DataError(f"Column {name} is not dates ({e})", problems=[Problem("not a date", column=name)],
                        hint="give dates, timestamps or ISO text (YYYY-MM-DD)") from e


def _amounts(values: Any, name: str) -> Any:
    import numpy as np
    import pyarrow as pa

    _no_nulls(values, name)
    try:
        arr = values.cast(pa.float64()).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
        raise DataError(f"Column {name} is not numbers ({e})", problems=[Problem("not a number", column=name)]) from e
    bad = np.flatnonzero(~np.isfinite(arr) | (arr < 0))
    if bad.size:
        raise DataError(f"Column {name} has {bad.size:,} negative or non-finite amounts", total=int(bad.size),
                        problems=[Problem("negative or not finite", row=int(i) + 1, column=name) for i in bad[:_SHOWN]],
                        hint="net refunds against their purchases before summarising")
    return arr
