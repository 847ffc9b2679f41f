"""The contact policy's pure rules, shared by the plan (a forecast) and the send-time gate (the guarantee).

``contact_policy.yaml`` is the one source; these functions read a :class:`ContactPolicy` and plain
values (dates, instants, counts), never a database or a table, so the plan
(``lifeloop.strategy.policy``) and the gate (``lifeloop.execution.gate``) apply the same rule:

* :func:`months_before` — refusal memory counts calendar months (a customer who said no to a call is
  not called again for N months, CBIRC Order 2022 No 9);
* :func:`refusal_memory_since` — the start of a channel's refusal memory at a moment (None: no memory);
* :func:`cap_limits` and :func:`cap_breached` — frequency caps over rolling windows of local days
  (day = D, week = D-6..D, month = D-29..D), overall and per channel, plus one wave of a strategy per
  customer per day;
* :func:`quiet_at` and :func:`next_allowed` — quiet hours and quiet days (holidays) in the customer's
  local time, and the first instant a contact may go out.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeVar
from zoneinfo import ZoneInfo

from lifeloop.config.contact_policy import ContactPolicy

When = TypeVar("When", dt.date, dt.datetime)
WINDOW_NAMES = {1: "day", 7: "week", 30: "month"}
EVERY_CHANNEL = "*"
# how far next_allowed looks for an allowed instant (a year of quiet days is a configuration mistake)
HORIZON_DAYS = 400


def months_before(moment: When, months: int) -> When:
    """The same day (and time) ``months`` calendar months earlier; the 31st falls back to the month's end."""
    year, month = divmod(moment.year * 12 + moment.month - 1 - months, 12)
    return moment.replace(year=year, month=month + 1, day=min(moment.day, calendar.monthrange(year, month + 1)[1]))


def refusal_memory_since(policy: ContactPolicy, channel: str, moment: When) -> When | None:
    """Refusals on ``channel`` after this moment still stop a contact at ``moment``; None: the channel forgets."""
    months = policy.refusal_memory_months.get(channel, 0)  # type: ignore[call-overload]
    return months_before(moment, months) if months > 0 else None


@dataclass(frozen=True)
class Limit:
    """One frequency cap: at most ``cap`` contacts (``channel``: one channel or ``*``) in ``days`` local days."""

    name: str        # the policy's name for it: cap_overall_day, cap_sms_week, same_strategy_today
    channel: str     # a channel, or EVERY_CHANNEL
    days: int        # window length in local days, ending on the contact's day
    cap: int
    strategy: bool = False   # counts only contacts of the same strategy (same_strategy_today)


def cap_limits(policy: ContactPolicy, channel: str) -> list[Limit]:
    """Every cap a contact through ``channel`` must fit: overall, the channel's own, one strategy wave a day."""
    out = [Limit(f"cap_overall_{WINDOW_NAMES[n]}", EVERY_CHANNEL, n, cap) for n, cap in policy.caps.windows()]
    own = policy.channel_caps.get(channel)  # type: ignore[call-overload]
    if own is not None:
        out += [Limit(f"cap_{channel}_{WINDOW_NAMES[n]}", channel, n, cap) for n, cap in own.windows()]
    return [*out, Limit("same_strategy_today", EVERY_CHANNEL, 1, 1, strategy=True)]


def cap_breached(taken: Iterable[tuple[dt.date, str, str]], day: dt.date, channel: str, strategy: str,
                 limits: Iterable[Limit]) -> str | None:
    """The first cap that one more contact (``day``, ``channel``, ``strategy``) would break, or None.

    ``taken`` are the customer's contacts already counted, as (local day, channel, strategy). Every
    rolling window that contains ``day`` is checked (those ending on ``day`` and, for a contact
    counted on a later day, those ending after it).
    """
    taken = list(taken)
    for limit in limits:
        for end in range(limit.days):
            last = day + dt.timedelta(days=end)
            first = last - dt.timedelta(days=limit.days - 1)
            n = 1 + sum(1 for d, ch, s in taken if first <= d <= last
                        and (limit.channel == EVERY_CHANNEL or ch == limit.channel)
                        and (not limit.strategy or s == strategy))
            if n > limit.cap:
                return limit.name
    return None


def quiet_at(policy: ContactPolicy, channel: str, purpose: str, local: dt.datetime) -> str | None:
    """Why ``channel`` is quiet at this local time ("quiet_hours 21:00-08:00", "quiet_day 春节"), or None."""
    for q in policy.quiet_days:
        if q.covers(local.date(), channel, purpose):
            return f"quiet_day {q.name or q.date.isoformat()}"
    hours = policy.quiet_hours.get(channel)  # type: ignore[call-overload]
    if hours is not None and hours.contains(local.time().replace(tzinfo=None)):
        return f"quiet_hours {hours.start}-{hours.end}"
    return None


def next_allowed(policy: ContactPolicy, channel: str, purpose: str, moment: dt.datetime,
                 timezone: str) -> dt.datetime | None:
    """The first instant at or after ``moment`` outside quiet hours and quiet days (customer's local time), in UTC.

    None when nothing is allowed within HORIZON_DAYS (a configuration that silences the channel).
    """
    zone = ZoneInfo(timezone)
    local = moment.astimezone(zone)
    horizon = local + dt.timedelta(days=HORIZON_DAYS)
    while local < horizon:
        day = local.date()
        if any(q.covers(day, channel, purpose) for q in policy.quiet_days):
            local = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), zone)
            continue
        hours = policy.quiet_hours.get(channel)  # type: ignore[call-overload]
        t = local.time().replace(tzinfo=None)
        if hours is None or not hours.contains(t):
            return local.astimezone(dt.UTC)
        end = dt.time.fromisoformat(hours.end)
        local = dt.datetime.combine(day if end > t else day + dt.timedelta(days=1), end, zone)
    return None


def local_day(moment: dt.datetime, timezone: str) -> dt.date:
    """The calendar date of an instant in a time zone (the day a contact counts on for caps)."""
    return moment.astimezone(ZoneInfo(timezone)).date()


def valid_until(as_of: dt.date, valid_days: int, timezone: str) -> dt.datetime:
    """When a contact of the list of ``as_of`` expires: the local midnight that ends day ``as_of + valid_days``."""
    return dt.datetime.combine(as_of + dt.timedelta(days=valid_days + 1), dt.time(), ZoneInfo(timezone)
                               ).astimezone(dt.UTC)
