"""Column types shared by the operations tables: UTC times, money, closed code sets."""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator

CENT = Decimal("0.01")


def utcnow() -> dt.datetime:
    """The current time, timezone-aware, in UTC."""
    return dt.datetime.now(dt.UTC)


def as_utc(moment: dt.datetime, *, what: str = "time") -> dt.datetime:
    """``moment`` converted to UTC; a naive datetime is refused (its zone would be a guess)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{what} {moment.isoformat()} has no time zone: pass an aware datetime "
                         "(e.g. datetime.now(timezone.utc))")
    return moment.astimezone(dt.UTC)


class UtcDateTime(TypeDecorator):
    """A point in time stored in UTC and always read back timezone-aware in UTC.

    PostgreSQL stores ``timestamptz``; SQLite has no time type, so the UTC wall time is stored and the
    zone re-attached on reading. Naive datetimes are refused on the way in on both.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        utc = as_utc(value)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


class Money(TypeDecorator):
    """An amount in the workspace currency: NUMERIC(18,2), read back as an exact ``Decimal``.

    SQLite has no exact decimal type (NUMERIC affinity keeps a float); amounts are rounded to the cent
    on the way out, which is exact for any amount below 10^13.
    """

    impl = sa.Numeric(18, 2, asdecimal=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        try:
            amount = Decimal(str(value)) if not isinstance(value, Decimal) else value
        except InvalidOperation as exc:
            raise ValueError(f"{value!r} is not an amount of money") from exc
        if amount != amount.quantize(CENT):
            raise ValueError(f"amount {amount} has more than 2 decimals")
        # SQLite's driver cannot bind a Decimal; a string lands in the NUMERIC column as a number
        return str(amount.quantize(CENT)) if dialect.name == "sqlite" else amount.quantize(CENT)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_EVEN)

    def load_dialect_impl(self, dialect):
        if dialect.name == "sqlite":
            # a plain NUMERIC without SQLAlchemy's float-to-Decimal conversion (and its warning)
            return dialect.type_descriptor(sa.Numeric(18, 2, asdecimal=False))
        return dialect.type_descriptor(self.impl)


def one_of(column: str, values: tuple[str, ...], name: str) -> sa.CheckConstraint:
    """A CHECK constraint that keeps ``column`` within a closed set of codes."""
    return sa.CheckConstraint(sa.column(column).in_(values), name=name)
