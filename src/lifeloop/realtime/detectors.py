"""Detectors (关键时刻识别): which moments of truth a customer's events make fire. Pure: events in, triggers out.

One definition for the stream and the batch. :func:`triggers` looks at one customer's events — any order,
with duplicates already removed by intake — and returns every moment they make fire, each anchored on the
earliest event that makes it true. A moment's identity (:attr:`Trigger.key`) is the detector, the customer,
the local date (or, for a card's first swipe, the card for good) and the scope (the product, the card), so
the stream, which sees events one by one, shuffled and late, fires exactly the moments the batch finds in
the whole day: it re-evaluates the customer's day on every new event and a moment fires once per key.

Definitions (amounts in the bank's currency; "outside" excludes the customer's own internal transfers):

* ``salary_credited`` — a credit with ``txn_type`` salary or the payroll flag (代发), at least ``min_amount``;
* ``large_inflow`` — the day's credits from outside that are not salary, pension, interest, maturity,
  redemption or a loan disbursement (the batch's ``inflow_today``) add up to ``amount`` or more;
* ``large_outflow`` — the day's transfers and cash out to outside (to another bank only, when
  ``other_bank_only``) add up to ``amount`` or more (the batch's ``outflow_today``);
* ``low_balance`` — a posting leaves ``balance_after`` below ``below``;
* ``first_card_swipe`` — a swipe of a card at or after its ``card_activated`` notice; once per card;
* ``product_interest`` — a ``product_view`` that is at least the ``views``-th view of that product within
  ``within_days`` days, with no ``purchase`` of it in those days (once per product and day);
* ``long_absence_login`` — a ``login`` with no other login in the ``absent_days`` days before it, but one
  earlier (a first login ever is not a return).

Monotone detectors (more events can only add triggers: the first five) give the stream exactly the
batch's triggers whatever the order. ``product_interest`` and ``long_absence_login`` are not: a purchase or
a login that arrives late cannot take back a moment that has been acted on (docs/realtime.md).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from lifeloop.config.events import (
    FirstCardSwipe,
    LargeInflow,
    LargeOutflow,
    LongAbsenceLogin,
    LowBalance,
    MomentSpec,
    ProductInterest,
    SalaryCredited,
)

# not "money in" for large_inflow: the batch's inflow_today leaves these out too (strategy/events.py)
NOT_INFLOW = ("salary", "pension", "interest", "maturity", "redemption", "loan_disbursement")
OUTFLOW_TYPES = ("transfer", "cash")
MONOTONE = ("salary_credited", "large_inflow", "large_outflow", "low_balance", "first_card_swipe")
HISTORY_DAYS = 400   # how far back a first swipe's activation or a returning customer's last login is looked for


@dataclass(frozen=True)
class Seen:
    """One stored event as the detectors see it."""

    event_id: str
    kind: str
    customer_id: str
    occurred_at: dt.datetime
    local_date: dt.date
    body: dict[str, Any]

    def get(self, name: str, default: Any = None) -> Any:
        return self.body.get(name, default)


@dataclass(frozen=True)
class Trigger:
    """A moment that fired: which, for whom, on which local date, about what, anchored on which event, and why."""

    moment: str
    customer_id: str
    local_date: dt.date
    scope: str
    event_id: str
    occurred_at: dt.datetime
    reason: str
    once: bool = False   # once for good (a card's first swipe), not once a day

    @property
    def key(self) -> str:
        """The moment's identity: the same moment found by the stream or the batch has the same key."""
        period = "once" if self.once else self.local_date.isoformat()
        return hashlib.sha256("\x1f".join((self.moment, self.customer_id, period, self.scope)).encode()).hexdigest()


def _money(v: Any) -> Decimal:
    return Decimal(str(v)) if v is not None else Decimal(0)


def _order(events: Iterable[Seen]) -> list[Seen]:
    return sorted(events, key=lambda e: (e.occurred_at, e.event_id))


def _fire(m: MomentSpec, e: Seen, reason: str, scope: str = "", once: bool = False) -> Trigger:
    return Trigger(m.id, e.customer_id, e.local_date, scope, e.event_id, e.occurred_at, reason, once)


def _by_day(events: Sequence[Seen]) -> dict[dt.date, list[Seen]]:
    out: dict[dt.date, list[Seen]] = {}
    for e in events:
        out.setdefault(e.local_date, []).append(e)
    return out


def _salary(m: SalaryCredited, events: Sequence[Seen]) -> list[Trigger]:
    out: dict[dt.date, Trigger] = {}
    least = Decimal(str(m.min_amount))
    for e in events:
        if (e.kind == "transaction" and e.get("direction") == "credit"
                and (e.get("txn_type") == "salary" or e.get("payroll")) and _money(e.get("amount")) >= least
                and e.local_date not in out):
            out[e.local_date] = _fire(m, e, f"salary credited: {_money(e.get('amount')):,.2f}"
                                      + (" (payroll code)" if e.get("payroll") else ""))
    return list(out.values())


def is_inflow(e: Seen) -> bool:
    """Money in from outside that counts towards large_inflow (the batch's inflow_today)."""
    return (e.kind == "transaction" and e.get("direction") == "credit"
            and (e.get("counterparty_kind") or "other") != "internal" and e.get("txn_type") not in NOT_INFLOW)


def is_outflow(e: Seen, other_bank_only: bool = False) -> bool:
    """Money out to outside that counts towards large_outflow (the batch's outflow_today)."""
    return (e.kind == "transaction" and e.get("direction") == "debit"
            and (e.get("counterparty_kind") or "other") != "internal" and e.get("txn_type") in OUTFLOW_TYPES
            and (not other_bank_only or e.get("counterparty_kind") == "bank"))


def _crossing(m: LargeInflow | LargeOutflow, events: Sequence[Seen], counts: Any, what: str) -> list[Trigger]:
    out = []
    limit = Decimal(str(m.amount))
    for _day, day in sorted(_by_day(events).items()):
        total = Decimal(0)
        for e in day:
            if counts(e):
                total += _money(e.get("amount"))
                if total >= limit:
                    out.append(_fire(m, e, f"{what} today reached {total:,.2f} (>= {limit:,.2f})"))
                    break
    return out


def _low_balance(m: LowBalance, events: Sequence[Seen]) -> list[Trigger]:
    out: dict[dt.date, Trigger] = {}
    for e in events:
        after = e.get("balance_after")
        if e.kind == "transaction" and after is not None and _money(after) < Decimal(str(m.below)) \
                and e.local_date not in out:
            out[e.local_date] = _fire(m, e, f"balance {_money(after):,.2f} after a posting (< {m.below:,.2f})")
    return list(out.values())


def _first_swipe(m: FirstCardSwipe, events: Sequence[Seen]) -> list[Trigger]:
    activated: dict[str, dt.datetime] = {}
    for e in events:
        if e.kind == "core_notice" and e.get("notice") == "card_activated" and e.get("card_id"):
            card = e.get("card_id")
            activated[card] = min(activated.get(card, e.occurred_at), e.occurred_at)
    out: dict[str, Trigger] = {}
    for e in events:
        card = e.get("card_id")
        if e.kind == "card_swipe" and card in activated and e.occurred_at >= activated[card] and card not in out:
            out[card] = _fire(m, e, f"first swipe of card {card} after its activation: {_money(e.get('amount')):,.2f}",
                              scope=card, once=True)
    return list(out.values())


def _interest(m: ProductInterest, events: Sequence[Seen]) -> list[Trigger]:
    window = dt.timedelta(days=m.within_days)
    views: dict[str, list[dt.datetime]] = {}
    bought: dict[str, list[dt.datetime]] = {}
    for e in events:
        if e.kind == "app" and e.get("product_id"):
            if e.get("action") == "product_view":
                views.setdefault(e.get("product_id"), []).append(e.occurred_at)
            elif e.get("action") == "purchase":
                bought.setdefault(e.get("product_id"), []).append(e.occurred_at)
    out: dict[tuple[str, dt.date], Trigger] = {}
    for e in events:
        product = e.get("product_id")
        if e.kind != "app" or e.get("action") != "product_view" or not product or (product, e.local_date) in out:
            continue
        n = sum(1 for t in views[product] if e.occurred_at - window < t <= e.occurred_at)
        if n >= m.views and not any(e.occurred_at - window < t <= e.occurred_at for t in bought.get(product, ())):
            out[(product, e.local_date)] = _fire(m, e, f"viewed product {product} {n} times in {m.within_days} days "
                                                       "without buying it", scope=product)
    return list(out.values())


def _absence(m: LongAbsenceLogin, events: Sequence[Seen]) -> list[Trigger]:
    logins = [e for e in events if e.kind == "app" and e.get("action") == "login"]
    out: dict[dt.date, Trigger] = {}
    gap = dt.timedelta(days=m.absent_days)
    for i, e in enumerate(logins):
        if i == 0 or e.local_date in out:
            continue
        before = logins[i - 1].occurred_at
        if e.occurred_at - before >= gap:
            days = (e.occurred_at - before).days
            out[e.local_date] = _fire(m, e, f"logged in after {days} days away (>= {m.absent_days})")
    return list(out.values())


def triggers(events: Iterable[Seen], moments: Sequence[MomentSpec]) -> list[Trigger]:
    """Every moment the events make fire (each moment once per key, each customer on their own), in time order."""
    by_customer: dict[str, list[Seen]] = {}
    for e in events:
        by_customer.setdefault(e.customer_id, []).append(e)
    out: list[Trigger] = []
    for customer in sorted(by_customer):
        out += _customer_triggers(by_customer[customer], moments)
    return sorted(out, key=lambda t: (t.occurred_at, t.customer_id, t.moment, t.scope))


def _customer_triggers(events: Sequence[Seen], moments: Sequence[MomentSpec]) -> list[Trigger]:
    ordered = _order(events)
    out: list[Trigger] = []
    for m in moments:
        if not m.enabled:
            continue
        if isinstance(m, SalaryCredited):
            out += _salary(m, ordered)
        elif isinstance(m, LargeInflow):
            out += _crossing(m, ordered, is_inflow, "money in from outside")
        elif isinstance(m, LargeOutflow):
            out += _crossing(m, ordered, lambda e, m=m: is_outflow(e, m.other_bank_only),
                             "money out to another bank" if m.other_bank_only else "money out to outside")
        elif isinstance(m, LowBalance):
            out += _low_balance(m, ordered)
        elif isinstance(m, FirstCardSwipe):
            out += _first_swipe(m, ordered)
        elif isinstance(m, ProductInterest):
            out += _interest(m, ordered)
        elif isinstance(m, LongAbsenceLogin):
            out += _absence(m, ordered)
    return out


def reach_days(moments: Sequence[MomentSpec]) -> tuple[int, int]:
    """How many days before and after an event's local date other events can change what it triggers."""
    back, forward = 0, 0
    for m in moments:
        if isinstance(m, ProductInterest):
            back, forward = max(back, m.within_days), max(forward, m.within_days)
        elif isinstance(m, LongAbsenceLogin):
            back, forward = max(back, m.absent_days + HISTORY_DAYS), max(forward, m.absent_days)
        elif isinstance(m, FirstCardSwipe):
            back, forward = max(back, HISTORY_DAYS), max(forward, HISTORY_DAYS)
    return back, forward
