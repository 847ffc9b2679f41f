"""The contact policy (接触策略) as pure functions: candidates + history -> kept and dropped, with why.

Each candidate (customer, strategy, wave) may use its channels in priority order. For each channel
the checks run in this order, and the first that fails is the reason the channel was refused:

1. ``dnd`` — the customer is on do-not-disturb (免打扰) for that channel or all channels today;
2. ``consent`` — no consent for the strategy's purpose on that channel (a missing row means what
   ``consent.missing`` says: no for marketing by default);
3. ``refusal_memory`` — the customer refused a contact on that channel within N months;
4. ``quiet_day`` — D is a quiet day (holiday, ``quiet_days``) for the channel and purpose;
   ``quiet_hours`` — the send time falls in the channel's quiet hours and cannot move later that day;
5. caps — ``cap_overall_day|week|month`` and ``cap_<channel>_day|week|month`` (history + today so far),
   and ``same_strategy_today`` (one wave of a strategy per customer per day);
6. capacity — ``capacity_strategy``, ``capacity_strategy_rm``, ``capacity_channel``, ``capacity_rm``,
   ``no_rm``, ``budget`` (see capacity.py).

Checks 1-4 depend on the customer only and run vectorised over Arrow; 5-6 depend on what was
already kept, so candidates are walked once in arbitration order (``arbitration.order`` with the
policy's ``arbitration`` settings: by priority class and expected value across the whole book, so
capacity is allocated greedily to the most valuable contacts). The control group passes checks
1-4 like everyone else (so treated and control are the same kind of customer) but is never contacted
and uses no caps or capacity. A candidate whose channels all fail checks 1-4 is dropped with the first
channel's reason; one that passed them on a channel and was then stopped is dropped with that channel's
cap or capacity reason; ``detail`` lists every channel's reason.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Mapping
from typing import TYPE_CHECKING

from lifeloop.config.contact_policy import ContactPolicy
from lifeloop.config.contact_rules import months_before, refusal_memory_since
from lifeloop.config.strategies import Strategy
from lifeloop.strategy.arbitration import order
from lifeloop.strategy.capacity import DailyCapacity
from lifeloop.strategy.history import History

if TYPE_CHECKING:
    import pyarrow as pa

SEP = "\x1f"
__all__ = ["Caps", "channel_reasons", "decide", "months_before"]


def _key(*cols: pa.Array) -> pa.Array:
    import pyarrow.compute as pc

    return pc.binary_join_element_wise(*[pc.cast(c, "string") for c in cols], SEP)


def channel_reasons(options: pa.Table, history: History, policy: ContactPolicy, as_of: dt.date) -> list[str | None]:
    """Checks 1-4 for each (candidate, channel) option: the failing check's name, or None."""
    import pyarrow as pa
    import pyarrow.compute as pc

    n = options.num_rows
    cust, chan, purpose = options["customer_id"], options["channel"], options["purpose"]
    cc = _key(cust, chan)
    reasons: list[str | None] = [None] * n

    def mark(mask: pa.Array, name: str) -> None:
        for i in pc.indices_nonzero(pc.fill_null(mask, False)).to_pylist():
            if reasons[i] is None:
                reasons[i] = name

    # 1. do-not-disturb active today (an empty channel means every channel)
    dnd = history.dnd
    if dnd.num_rows:
        live = pc.and_(pc.less_equal(dnd["start_date"], as_of),
                       pc.or_(pc.is_null(dnd["end_date"]),
                              pc.greater_equal(pc.fill_null(dnd["end_date"], as_of), as_of)))
        dnd = dnd.filter(pc.fill_null(live, False))
        every = dnd.filter(pc.is_null(dnd["channel"]))["customer_id"]
        some = dnd.filter(pc.invert(pc.is_null(dnd["channel"])))
        mark(pc.or_(pc.is_in(cust, every), pc.is_in(cc, _key(some["customer_id"], some["channel"]))), "dnd")
    # 2. consent per purpose and channel
    con = history.consent
    pcc = _key(cust, purpose, chan)
    granted = con.filter(pc.fill_null(con["granted"], False))
    denied = con.filter(pc.invert(pc.fill_null(con["granted"], False)))
    has_yes = pc.is_in(pcc, _key(granted["customer_id"], granted["purpose"], granted["channel"]))
    has_no = pc.is_in(pcc, _key(denied["customer_id"], denied["purpose"], denied["channel"]))
    missing_ok = pc.is_in(purpose, pa.array([p for p, ok in policy.consent.missing.items() if ok], pa.string()))
    allowed = pc.or_(has_yes, pc.and_(pc.invert(has_no), missing_ok))
    mark(pc.invert(allowed), "consent")
    # 3. refusal memory per channel
    ref = history.refusals
    if ref.num_rows:
        recent = []
        for ch in policy.refusal_memory_months:
            since = refusal_memory_since(policy, ch, as_of)
            if since is not None:
                part = ref.filter(pc.and_(pc.equal(ref["channel"], ch), pc.greater(ref["refused_on"], since)))
                recent.append(_key(part["customer_id"], part["channel"]))
        if recent:
            mark(pc.is_in(cc, pa.chunked_array(recent, pa.string())), "refusal_memory")
    # 4. quiet days (holidays) on D, then quiet hours: few distinct (channel, purpose) and (channel, requested
    # time) pairs, decided once each (the send-time gate applies the same rules in the customer's local time)
    if policy.quiet_days:
        cp = _key(chan, purpose)
        for pair in pc.unique(cp).to_pylist():
            ch, why = pair.split(SEP)
            if any(q.covers(as_of, ch, why) for q in policy.quiet_days):
                mark(pc.equal(cp, pair), "quiet_day")
    send = options["send_at"]
    pairs = _key(chan, pc.fill_null(send, ""))
    for pair in pc.unique(pairs).to_pylist():
        ch, requested = pair.split(SEP)
        if policy.send_time(ch, requested or None) is None:
            mark(pc.equal(pairs, pair), "quiet_hours")
    return reasons


class Caps:
    """Contacts per customer (overall and per channel) in the day, week and month windows ending on D."""

    SLOTS = {1: (0, "day"), 7: (1, "week"), 30: (2, "month")}

    def __init__(self, policy: ContactPolicy, contacts: pa.Table, as_of: dt.date, customers: set[str]):
        import pyarrow.compute as pc

        # (slot in the counts row, cap, name of the policy) for every cap that is set
        self.overall = [(self.SLOTS[n][0], cap, f"cap_overall_{self.SLOTS[n][1]}") for n, cap in policy.caps.windows()]
        self.per_channel = {ch: [(self.SLOTS[n][0], cap, f"cap_{ch}_{self.SLOTS[n][1]}") for n, cap in caps.windows()]
                            for ch, caps in policy.channel_caps.items()}
        self.counts: dict[tuple[str, str], list[int]] = {}
        # a customer without contacts in the window passes unless some cap is 0
        self.zero_ok = all(cap > 0 for _, cap, _ in self.overall) and all(
            cap > 0 for limits in self.per_channel.values() for _, cap, _ in limits)
        recent = contacts.filter(pc.and_(pc.fill_null(contacts["treated"], False),
                                         pc.greater(contacts["contact_date"], as_of - dt.timedelta(days=30))))
        for c, ch, day in zip(recent["customer_id"].to_pylist(), recent["channel"].to_pylist(),
                              recent["contact_date"].to_pylist(), strict=False):
            if c in customers and day <= as_of:
                age = (as_of - day).days
                for key in ((c, "*"), (c, ch)):
                    row = self.counts.setdefault(key, [0, 0, 0])
                    row[0] += age < 1
                    row[1] += age < 7
                    row[2] += 1

    def check(self, customer: str, channel: str) -> str | None:
        """The cap one more contact through ``channel`` would break, or None."""
        row = self.counts.get((customer, "*"))
        if row is None:
            row = (0, 0, 0)
            if self.zero_ok:
                # nothing in any window yet: only a cap of 0 can refuse (checked once, in __init__)
                return None
        for slot, cap, name in self.overall:
            if row[slot] >= cap:
                return name
        limits = self.per_channel.get(channel)
        if limits:
            row = self.counts.get((customer, channel), (0, 0, 0))
            for slot, cap, name in limits:
                if row[slot] >= cap:
                    return name
        return None

    def take(self, customer: str, channel: str) -> None:
        """Count one more contact today (it falls in every window)."""
        for key in ((customer, "*"), (customer, channel)):
            row = self.counts.get(key)
            if row is None:
                self.counts[key] = [1, 1, 1]
            else:
                row[0] += 1
                row[1] += 1
                row[2] += 1


def _first_ok(reasons: list[str | None], parent: pa.Array, n: int) -> list[int]:
    """Per candidate, the index of its first option without a reason (-1 if none)."""
    import numpy as np

    ok = np.fromiter((r is None for r in reasons), dtype=bool, count=len(reasons))
    par = parent.to_numpy(zero_copy_only=False)[ok]
    pos = np.nonzero(ok)[0]
    out = np.full(n, -1, dtype=np.int64)
    uniq, first = np.unique(par, return_index=True)
    out[uniq] = pos[first]
    return out.tolist()


def decide(candidates: pa.Table, history: History, policy: ContactPolicy, strategies: Mapping[str, Strategy],
           as_of: dt.date, rm_capacity: Mapping[str, int] | None = None,
           spent: Mapping[str, float] | None = None) -> pa.Table:
    """Decide every candidate: status (contact / control / dropped), channel, dropped_by, detail, send_at, value, cost.

    ``candidates`` columns: customer_id, strategy, wave, rm_id, control, tie, priority, purpose,
    channels (list), values (list, expected value per channel), best_value, send_at.
    The result has one row per candidate, in the same order.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    n = candidates.num_rows
    flat = pc.list_flatten(candidates["channels"])
    parent = pc.list_parent_indices(candidates["channels"])
    options = pa.table({"customer_id": pc.take(candidates["customer_id"], parent), "channel": flat,
                        "purpose": pc.take(candidates["purpose"], parent),
                        "send_at": pc.take(candidates["send_at"], parent)})
    reasons = channel_reasons(options, history, policy, as_of)
    offsets = candidates["channels"].combine_chunks().offsets.to_pylist() if n else [0]
    channels = flat.to_pylist()
    values = pc.list_flatten(candidates["values"]).to_pylist()
    customers = candidates["customer_id"].to_pylist()
    strategy = candidates["strategy"].to_pylist()
    rm = candidates["rm_id"].to_pylist()
    control = candidates["control"].to_pylist()
    send_req = candidates["send_at"].to_pylist()
    caps = Caps(policy, history.contacts, as_of, set(customers))
    cap = DailyCapacity(policy, strategies, rm_capacity, spent)
    today: set[tuple[str, str]] = set()
    costs = {ch: policy.channel(ch).cost for ch in set(channels)}
    times: dict[tuple[str, str | None], str] = {}
    status: list[str] = ["dropped"] * n
    chosen: list[str | None] = [None] * n
    dropped_by: list[str | None] = [None] * n
    detail: list[str | None] = [None] * n
    send_at: list[str | None] = [None] * n
    value: list[float | None] = [None] * n
    cost: list[float] = [0.0] * n

    def when(ch: str, requested: str | None) -> str:
        got = times.get((ch, requested))
        if got is None:
            got = times[(ch, requested)] = policy.send_time(ch, requested).strftime("%H:%M")  # type: ignore
        return got

    def failed(i: int, upto: int, extra: list[tuple[str, str]] = ()) -> None:  # type: ignore[assignment]
        tried = [(channels[k], reasons[k]) for k in range(offsets[i], upto)] + list(extra)
        if tried:
            detail[i] = "; ".join(f"{ch}: {why}" for ch, why in tried)

    # the first channel that passes checks 1-4, per candidate (-1: none does)
    first_ok = _first_ok(reasons, parent, n)
    walk: list[int] = []
    for i in range(n):
        k = first_ok[i]
        if k < 0:
            failed(i, offsets[i + 1])
            dropped_by[i] = reasons[offsets[i]] if offsets[i + 1] > offsets[i] else "no_channel"
        elif control[i]:
            # control: contactable by checks 1-4, never contacted, no caps or capacity used
            status[i], chosen[i], value[i] = "control", channels[k], values[k]
            send_at[i] = when(channels[k], send_req[i])
            if k > offsets[i]:
                failed(i, k)
        else:
            walk.append(i)
    # treated candidates, in arbitration order: caps and capacity depend on what was already kept
    # (strategy, channel) pairs that no capacity or budget can refuse: skip the capacity ledger
    free = {(sid, ch) for sid in set(strategy) for ch in set(channels) if cap.unlimited(sid, ch)}
    check_caps, check_capacity, take_caps, take_capacity = caps.check, cap.check, caps.take, cap.take
    # a customer's only treated candidate, on a channel no capacity limits, needs no ordering: nothing
    # else competes for its caps, and it takes nothing anyone else needs (most of a large day's lists)
    per_customer = Counter(customers[i] for i in walk)
    ordered = []
    for i in walk:
        k = first_ok[i]
        c, ch = customers[i], channels[k]
        if per_customer[c] == 1 and (strategy[i], ch) in free and check_caps(c, ch) is None:
            status[i], chosen[i], value[i], cost[i] = "contact", ch, values[k], costs[ch]
            send_at[i] = when(ch, send_req[i])
            if k > offsets[i]:
                failed(i, k)
        else:
            ordered.append(i)
    # sort only the candidates that compete (the keys are unique, so the order is the full table's)
    ranked = [ordered[j] for j in order(candidates.take(pa.array(ordered, pa.int64())), policy.arbitration)] \
        if ordered else []
    for i in ranked:
        c, s = customers[i], strategy[i]
        extra: list[tuple[str, str]] = []
        same = (c, s) in today
        start = first_ok[i]
        for k in range(start, offsets[i + 1]):
            ch = channels[k]
            why = reasons[k]
            if why is None:
                if same:
                    why = "same_strategy_today"
                else:
                    why = check_caps(c, ch)
                    if why is None and (s, ch) not in free:
                        why = check_capacity(s, ch, rm[i])
            if why is not None:
                extra.append((ch, why))
                continue
            status[i], chosen[i], value[i], cost[i] = "contact", ch, values[k], costs[ch]
            send_at[i] = when(ch, send_req[i])
            take_caps(c, ch)
            if (s, ch) not in free:
                take_capacity(s, ch, rm[i])
            today.add((c, s))
            break
        if extra or start > offsets[i]:
            failed(i, start, extra)
        if chosen[i] is None:
            # it passed checks 1-4 on a channel, so a cap or capacity stopped it (not an earlier channel's
            # consent): outcomes keeps it in the treated arm, as it keeps its control twin
            dropped_by[i] = extra[0][1]
    return pa.table({"status": pa.array(status, pa.string()), "channel": pa.array(chosen, pa.string()),
                     "dropped_by": pa.array(dropped_by, pa.string()), "detail": pa.array(detail, pa.string()),
                     "send_at": pa.array(send_at, pa.string()), "expected_value": pa.array(value, pa.float64()),
                     "cost": pa.array(cost, pa.float64())})
