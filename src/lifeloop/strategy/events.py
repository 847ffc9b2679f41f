"""The day's events (实时事件 / moments of truth) as columns, one row per customer as of D.

Audience rules read them like features:

* ``salary_today`` — a salary was credited on D (代发工资到账);
* ``inflow_today`` / ``large_inflow_today`` — money paid in from outside on D (not salary, pension,
  interest, maturities, redemptions or the customer's own internal transfers), and whether it reaches
  ``events.large_inflow`` (大额转入);
* ``outflow_today`` / ``large_outflow_today`` — transfers and cash out to outside on D (大额转出);
* ``birthday_today`` — D is the customer's birthday (29 February birthdays on 28 February in other years);
* ``holiday_today``, ``holiday_name``, ``days_to_holiday`` — from ``events.holidays`` (节日).

"Product maturing in N days" is the feature ``days_to_next_maturity``. The query is a constant
sqlglot tree with placeholders filled by literals; nothing is pasted into SQL text.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

import sqlglot
from sqlglot import exp

from lifeloop.config.strategies import EventSettings
from lifeloop.engine.adapters.base import date_literal

# name -> DuckDB type (what audience rules may use)
EVENT_COLUMNS: dict[str, str] = {
    "salary_today": "BOOLEAN", "inflow_today": "DECIMAL(18,2)", "large_inflow_today": "BOOLEAN",
    "outflow_today": "DECIMAL(18,2)", "large_outflow_today": "BOOLEAN", "birthday_today": "BOOLEAN",
    "holiday_today": "BOOLEAN", "holiday_name": "VARCHAR", "days_to_holiday": "INTEGER",
}

_QUERY = """
SELECT c.customer_id, c.rm_id, c.branch_id,
  COALESCE(t.salary_today, FALSE) AS salary_today,
  CAST(COALESCE(t.inflow_today, 0) AS DECIMAL(18,2)) AS inflow_today,
  COALESCE(t.inflow_today, 0) >= :large_inflow AS large_inflow_today,
  CAST(COALESCE(t.outflow_today, 0) AS DECIMAL(18,2)) AS outflow_today,
  COALESCE(t.outflow_today, 0) >= :large_outflow AS large_outflow_today,
  COALESCE((MONTH(c.birth_date) = :month AND DAY(c.birth_date) = :day)
           OR (:feb28 AND MONTH(c.birth_date) = 2 AND DAY(c.birth_date) = 29), FALSE) AS birthday_today,
  :holiday_today AS holiday_today,
  CAST(:holiday_name AS VARCHAR) AS holiday_name,
  CAST(:days_to_holiday AS INTEGER) AS days_to_holiday
FROM customers AS c
LEFT JOIN (
  SELECT customer_id,
    MAX(CASE WHEN direction = 'credit' AND txn_type = 'salary' THEN 1 ELSE 0 END) = 1 AS salary_today,
    SUM(CASE WHEN direction = 'credit' AND COALESCE(counterparty_kind, 'other') <> 'internal'
             AND txn_type NOT IN ('salary', 'pension', 'interest', 'maturity', 'redemption', 'loan_disbursement')
             THEN amount ELSE 0 END) AS inflow_today,
    SUM(CASE WHEN direction = 'debit' AND COALESCE(counterparty_kind, 'other') <> 'internal'
             AND txn_type IN ('transfer', 'cash') THEN amount ELSE 0 END) AS outflow_today
  FROM transactions
  WHERE txn_date = :as_of
  GROUP BY customer_id
) AS t ON c.customer_id = t.customer_id
"""


@lru_cache(maxsize=1)
def _template() -> exp.Select:
    return sqlglot.parse_one(_QUERY, read="duckdb")  # type: ignore[return-value]


def _number(v: float) -> exp.Expression:
    return exp.Literal.number(int(v) if float(v).is_integer() else v)


def holiday_on(settings: EventSettings, as_of: dt.date) -> tuple[str | None, int | None]:
    """Today's holiday name (or None) and the days to the next holiday on or after D (or None)."""
    today = next((h.name for h in settings.holidays if h.date == as_of), None)
    ahead = sorted((h.date - as_of).days for h in settings.holidays if h.date >= as_of)
    return today, (ahead[0] if ahead else None)


def events_query(settings: EventSettings, as_of: dt.date) -> exp.Select:
    """One row per customer as of D with the day's event columns (over the bank views)."""

    name, days = holiday_on(settings, as_of)
    leap = as_of.year % 4 == 0 and (as_of.year % 100 != 0 or as_of.year % 400 == 0)
    values: dict[str, exp.Expression] = {
        "large_inflow": _number(settings.large_inflow), "large_outflow": _number(settings.large_outflow),
        "month": exp.Literal.number(as_of.month), "day": exp.Literal.number(as_of.day),
        "feb28": exp.Boolean(this=(as_of.month, as_of.day) == (2, 28) and not leap),
        "holiday_today": exp.Boolean(this=name is not None),
        "holiday_name": exp.Literal.string(name) if name else exp.null(),
        "days_to_holiday": exp.Literal.number(days) if days is not None else exp.null(),
        "as_of": date_literal(as_of),
    }

    def fill(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Placeholder) and node.name in values:
            return values[node.name].copy()
        return node

    return _template().copy().transform(fill)  # type: ignore[return-value]
