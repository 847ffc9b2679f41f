"""A decision in seconds (秒级决策): stored events -> moments -> per strategy a decision -> the outbox -> the gate.

One pass (:meth:`Decider.run_once`), in one transaction per batch of stored, undecided events:

1. **Moments.** For each customer of the batch, the customer's stored events around the batch's dates are
   read and the detectors (:mod:`lifeloop.realtime.detectors`) run over them; a moment fires once per key
   (``moments``, unique), so duplicates, shuffles and late events fire nothing twice.
2. **Strategies.** Each new moment is matched to the active strategies whose scenario is that moment
   (``scenario: {kind: event, name: <moment id>}`` in strategies.yaml). Per strategy, in order: re-entry
   (the customer entered this strategy, treated or control, within the strategy's ``reentry_days`` — or
   events.yaml's ``reentry_hours`` if longer — of the event: suppressed),
   the audience rule on the latest daily snapshot (:mod:`lifeloop.realtime.audience`), suitability of a product
   offer (the plan's rule), and the holdout by the batch's hash (``strategy.holdout``) — control or treated
   (with its A/B cell). Every decision is recorded with its reason (``moment_decisions``).
3. **Contacts.** Treated and control entries become outbox items exactly like a day's list rows
   (``dispatch.contacts_from_lists``: same idempotency key of date, strategy, wave, customer and channel, the
   script rendered the same way, controls recorded and never sent), in the same transaction, which also marks
   the events decided. Then the outbox is drained through **the same contact gate** (consent, DND, refusal
   memory, quiet hours in local time, caps in the contact ledger) and channels as the batch.

A crash before the commit leaves the events undecided: the next pass (after a restart) decides them again,
and the unique keys (moment, decision, outbox item) make the redo change nothing that was already done.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from lifeloop.config.events import EventsConfig
from lifeloop.config.strategies import StrategiesConfig, Strategy
from lifeloop.execution import dispatch as dispatching
from lifeloop.execution.customers import bank_tables, product_names
from lifeloop.execution.suitability_gate import send_time_screen, suitability_inputs
from lifeloop.realtime.audience import AudienceCheck, event_columns
from lifeloop.realtime.detectors import Seen, Trigger, reach_days, triggers
from lifeloop.store.ops import contacts as outbox
from lifeloop.store.ops import events as event_store
from lifeloop.store.ops.database import unit_of_work
from lifeloop.store.ops.types import utcnow
from lifeloop.strategy import suitability
from lifeloop.strategy.holdout import assign_cells, is_control

REALTIME_SCENARIO = "event"
DRAIN_EVERY = 5.0   # seconds: how often a running decider drains the outbox when it enqueued nothing new


def events_config(ctx: dispatching.Surroundings) -> EventsConfig:
    """``config/events.yaml``, or no sources and no moments when the workspace has none."""
    if not (ctx.config_dir / "events.yaml").exists():
        return EventsConfig()
    return ctx.load_config("events", EventsConfig)[0]


def realtime_strategies(config: StrategiesConfig | None, events: EventsConfig) -> dict[str, list[Strategy]]:
    """Moment id -> the strategies that react to it: scenario kind ``event`` named after the moment (its id or
    its ``scene``)."""
    out: dict[str, list[Strategy]] = {m.id: [] for m in events.moments}
    for m in events.moments:
        for s in (config.strategies if config else ()):
            if s.scenario.kind == REALTIME_SCENARIO and s.scenario.name in (m.id, m.scene or m.id):
                out[m.id].append(s)
    return out


def seen(e: Any) -> Seen:
    """A stored event (ops ``events`` row) as the detectors see it."""
    return Seen(e.event_id, e.kind, e.customer_id, e.occurred_at, e.local_date, e.body)


@dataclass
class DecisionSummary:
    """What one or more passes did."""

    events: int = 0
    moments: int = 0
    outcomes: Counter = field(default_factory=Counter)
    enqueued: int = 0
    controls: int = 0
    timers: int = 0          # timers fired (maturity - 7 ...)
    missed_timers: int = 0   # timers whose local date passed while nothing ran
    drain: dispatching.DispatchSummary = field(default_factory=dispatching.DispatchSummary)

    def lines(self) -> list[str]:
        out = [f"decided {self.events:,} events: {self.moments:,} moments fired; "
               + (", ".join(f"{k} {v:,}" for k, v in sorted(self.outcomes.items())) or "no strategy decisions"),
               f"enqueued {self.enqueued:,} contacts, recorded {self.controls:,} control-group entries"]
        d = self.drain
        out.append(f"sent {d.sent:,}, blocked at the gate {d.blocked:,}, deferred to allowed hours {d.deferred:,}, "
                   f"expired {d.expired:,}, failed {d.failed:,}, retrying {d.retrying:,}, unknown {d.unknown:,}")
        return out


class Decider:
    """Decides stored events: configs, adapters and the snapshot engine are opened once and reused."""

    def __init__(self, ctx: dispatching.Surroundings, *, clock: Callable[[], dt.datetime] | None = None,
                 drain: bool = True, adapters: Mapping[str, Any] | None = None):
        self.ctx = ctx
        self.sessions = ctx.ops()
        self.clock = clock or utcnow
        self.do_drain = drain
        self.events = events_config(ctx)
        exists = (ctx.config_dir / "strategies.yaml").exists()
        self.strategies, doc = ctx.load_config("strategies", StrategiesConfig) if exists else (None, None)
        self.by_moment = realtime_strategies(self.strategies, self.events)
        self.policy = dispatching.contact_policy(ctx)
        self.channels = dispatching.channels_config(ctx)
        self.adapters = dict(adapters) if adapters is not None else dispatching.build_adapters(
            self.channels, ctx.bank.workspace, self.sessions)
        wanted = [s for group in self.by_moment.values() for s in group]
        self.audience = AudienceCheck(ctx.lake, self.strategies, wanted, doc) if self.strategies else None
        self.timezone = ctx.bank.timezone
        self._bank: tuple[tuple[str, ...], BankState] | None = None
        self.drain_every = DRAIN_EVERY
        self._last_drain: float | None = None
        self._day_events: dict[tuple[str, dt.date], list[Seen]] = {}

    def bank(self, day: dt.date) -> BankState:
        """The bank's customers, consent and suitability inputs of the newest batch on or before ``day``, read
        once per batch (a new batch in the lake is read on the next pass)."""
        files = self.ctx.lake.bank_files(day)
        key = tuple(str(f) for name in ("customers", "consent", "products") for f in files.get(name, ()))
        if self._bank is None or self._bank[0] != key:
            ids = customer_ids(files)
            customers, baseline = bank_tables(self.ctx.lake, day, ids)
            inputs = suitability_inputs(self.ctx, day)
            self._bank = (key, BankState(customers, baseline, inputs, product_names(inputs[1])))
        return self._bank[1]

    def close(self) -> None:
        for adapter in self.adapters.values():
            adapter.close()
        if self.audience is not None:
            self.audience.close()

    # ------------------------------------------------------------------------------------------ one pass
    def run_once(self, *, limit: int = 1000, summary: DecisionSummary | None = None) -> DecisionSummary:
        """Decide up to ``limit`` stored events, then drain the outbox; returns what happened.

        The reading and the computing (events around the batch, detectors, audience rules, suitability) happen
        before the write transaction, which then only records: the moments (first; on SQLite this takes the write
        lock, on PostgreSQL the customers' advisory locks come first), the re-entry check under that lock, the
        decisions, the outbox items and the events' decided mark — so intake waits for milliseconds, not for
        the whole pass.
        """
        summary = summary or DecisionSummary()
        now = self.clock()
        enqueued = summary.enqueued
        self._fire_timers(now, summary)
        with self.sessions() as session:
            batch = event_store.undecided(session, limit=limit)
            found = self._moments(session, batch) if batch else []
        if batch:
            self._record(found, now, summary, lambda session: event_store.mark_decided(
                session, ids=[e.id for e in batch], now=now))
            summary.events += len(batch)
        # new contacts go out at once; contacts held for quiet hours (or retries) at least every drain_every seconds
        due = self._last_drain is None or time.monotonic() - self._last_drain >= self.drain_every
        if self.do_drain and (summary.enqueued > enqueued or due):
            self.drain(None, summary)
        return summary

    def _record(self, found: Sequence[Trigger], now: dt.datetime, summary: DecisionSummary,
                done: Callable[[Any], None]) -> dict[str, dict[str, Any]]:
        """Decide the moments not fired yet and record everything in one short transaction (``done`` marks the
        events or timers handled in it)."""
        with self.sessions() as session:
            known = event_store.known_moments(session, keys=[t.key for t in found])
        fresh = [t for t in found if t.key not in known]
        prepared = self._prepare(fresh)
        with unit_of_work(self.sessions) as session:
            event_store.lock_customers(session, [t.customer_id for t in fresh])
            new = event_store.add_moments(session, moments=[_moment_row(t) for t in fresh], now=now)
            fired = [t for t in fresh if t.key in new]
            summary.moments += len(fired)
            rows, decisions = self._decide(session, fired, prepared)
            event_store.add_decisions(session, decisions=decisions, now=now)
            summary.outcomes.update(d["outcome"] for d in decisions)
            self._enqueue(session, rows, prepared.customers, now, summary)
            done(session)
        return prepared.customers

    def _fire_timers(self, now: dt.datetime, summary: DecisionSummary) -> None:
        """Fire today's pending timers (local date) once; mark those whose date passed unfired as missed."""
        today = now.astimezone(ZoneInfo(self.timezone)).date()
        with self.sessions() as session:
            due = event_store.due_timers(session, today=today)
        if not due:
            return
        fire = [t for t in due if t.fire_on == today]
        missed = [t.id for t in due if t.fire_on < today]
        found = [Trigger(t.moment, t.customer_id, t.fire_on, t.scope, "", now, t.reason) for t in fire]
        self._record(found, now, summary, lambda session: event_store.settle_timers(
            session, fired=[t.id for t in fire], missed=missed, now=now))
        summary.timers += len(fire)
        summary.missed_timers += len(missed)

    def run_until_idle(self, *, limit: int = 1000, summary: DecisionSummary | None = None) -> DecisionSummary:
        """Passes until no stored event is left undecided (adding to ``summary`` when given)."""
        summary = summary if summary is not None else DecisionSummary()
        while True:
            before = summary.events
            self.run_once(limit=limit, summary=summary)
            if summary.events == before:
                return summary

    # ------------------------------------------------------------------------------------------ moments
    def _moments(self, session: Any, batch: Sequence[Any]) -> list[Trigger]:
        """Every moment the batch's events make fire, over each customer's stored events around them."""
        moments = [m for m in self.events.moments if m.enabled]
        if not moments:
            return []
        back, forward = reach_days(moments)
        first = min(e.local_date for e in batch)
        last = max(e.local_date for e in batch)
        customers = sorted({e.customer_id for e in batch})
        around = event_store.history_days(session, customer_ids=customers, first=first - dt.timedelta(days=back),
                                          last=last + dt.timedelta(days=forward))
        spans: dict[str, tuple[dt.date, dt.date]] = {}
        for e in batch:
            lo, hi = spans.get(e.customer_id, (e.local_date, e.local_date))
            spans[e.customer_id] = (min(lo, e.local_date), max(hi, e.local_date))
        out: list[Trigger] = []
        for customer in customers:
            lo, hi = spans[customer]
            mine = [seen(e) for e in around.get(customer, ())]
            # a new event can make a moment true on its own day, or (views, swipes, logins) on a later one
            out += [t for t in triggers(mine, moments) if lo <= t.local_date <= hi + dt.timedelta(days=forward)]
        self._day_events = {(c, d): [seen(e) for e in around.get(c, ()) if e.local_date == d]
                            for c in customers for d in {t.local_date for t in out if t.customer_id == c}}
        return out

    # ------------------------------------------------------------------------------------------ decisions
    def _prepare(self, fired: Sequence[Trigger]) -> Prepared:
        """What the decisions need that is not in the operations database: customers, audiences, suitability."""
        pairs = [(t, s) for t in fired for s in self.by_moment.get(t.moment, [])]
        if not pairs:
            return Prepared(pairs)
        assert self.strategies is not None and self.audience is not None
        ids = sorted({t.customer_id for t, _ in pairs})
        today = max(t.local_date for t, _ in pairs)
        bank = self.bank(today)
        customers = {c: bank.customers[c] for c in ids if c in bank.customers}
        out = Prepared(pairs, customers=customers)
        for day in sorted({t.local_date for t, _ in pairs}):
            on_day = {t.customer_id for t, _ in pairs if t.local_date == day}
            rows = {c: {"rm_id": (customers.get(c) or {}).get("rm_id"),
                        "branch_id": (customers.get(c) or {}).get("branch_id"),
                        **event_columns(self._day_events.get((c, day), []), self.strategies, day)} for c in on_day}
            sids = sorted({s.id for t, s in pairs if t.local_date == day})
            out.snaps[day], found = self.audience.check(day, rows, sids)
            out.checks.update({(c, s, day): v for (c, s), v in found.items()})
        out.unsuitable = self._suitability(pairs, today)
        return out

    def _decide(self, session: Any, fired: Sequence[Trigger],
                prepared: Prepared) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Per fired moment and strategy: the decision (recorded) and, for treated and control, a list row."""
        keys = {t.key for t in fired}
        pairs = [(t, s) for t, s in prepared.pairs if t.key in keys]
        if not pairs:
            return [], []
        assert self.strategies is not None
        customers, snaps, checks, offers = prepared.customers, prepared.snaps, prepared.checks, prepared.unsuitable
        waits = {s.id: self.reentry_wait(s) for _, s in pairs}
        wait = max(waits.values())
        ids = sorted({t.customer_id for t, _ in pairs})
        times = [t.occurred_at for t, _ in pairs]
        # read under the lock the moments' insert took: two passes cannot both let one customer in
        entered = event_store.entries(session, customer_ids=ids, since=min(times) - wait, until=max(times) + wait)
        rows_out, decisions = [], []
        salt = self.strategies.holdout_salt
        for t, s in sorted(pairs, key=lambda p: (p[0].occurred_at, p[0].key, p[1].id)):
            d = {"moment_key": t.key, "customer_id": t.customer_id, "strategy_id": s.id, "entered_at": t.occurred_at,
                 "wave": None, "channel": None, "dispatch_key": None}
            before = [at for at in entered.get((t.customer_id, s.id), []) if abs(at - t.occurred_at) < waits[s.id]]
            snap = snaps.get(t.local_date)
            reason = checks.get((t.customer_id, s.id, t.local_date))  # type: ignore[arg-type]
            if not s.active_on(t.local_date):
                decisions.append({**d, "outcome": "inactive", "reason": f"strategy {s.id} is not active on "
                                                                         f"{t.local_date}"})
                continue
            if before:
                decisions.append({**d, "outcome": "suppressed", "reason": f"{t.reason}; entered {s.id} at "
                                  f"{min(before):%Y-%m-%d %H:%M} UTC (re-entry wait {self.wait_text(s)})"})
                continue
            if snap is None:
                decisions.append({**d, "outcome": "no_snapshot", "reason": f"{t.reason}; no daily snapshot on or "
                                  f"before {t.local_date} to check the audience on"})
                continue
            if reason is None:
                decisions.append({**d, "outcome": "not_in_audience", "reason": f"{t.reason}; audience rule false on "
                                  f"the snapshot of {snap}"})
                continue
            unsuitable = offers.get((t.customer_id, s.id))
            if unsuitable:
                decisions.append({**d, "outcome": "unsuitable", "reason": f"{t.reason}; {unsuitable}"})
                continue
            wave = s.waves[0]
            channels = s.channels_of(wave)
            channel = next((c for c in channels if c in self.adapters), channels[0])
            control = is_control(t.customer_id, s.id, salt, s.holdout)
            cell = None if control else assign_cells([t.customer_id], s.id, salt,
                                                     [(c.id, c.share) for c in s.cells])[0]
            key = outbox.dispatch_key(t.local_date, s.id, wave.id, t.customer_id, channel)
            outcome = "control" if control else "treated"
            entered.setdefault((t.customer_id, s.id), []).append(t.occurred_at)
            decisions.append({**d, "outcome": outcome, "wave": wave.id, "channel": channel, "dispatch_key": key,
                              "reason": f"{t.reason}; audience on {snap}: {reason}; "
                                        + ("holdout (control group)" if control else "treated" + (
                                            f", cell {cell}" if cell else ""))})
            rows_out.append({"as_of": t.local_date, "customer_id": t.customer_id, "strategy": s.id, "wave": wave.id,
                             "channel": channel, "status": "contact" if outcome == "treated" else "control",
                             "offer": s.offer.product_id or s.offer.code, "priority": s.priority,
                             "purpose": self.policy.purpose(s.objective.kind, s.purpose),
                             "rm_id": (customers.get(t.customer_id) or {}).get("rm_id"), "send_at": None,
                             "script_id": None, "script_key": None, "cell": cell})
        return rows_out, decisions

    def reentry_wait(self, s: Strategy) -> dt.timedelta:
        """How long after an entry (treated or control) the customer cannot enter strategy ``s`` again in real
        time: the strategy's ``reentry_days`` (the batch's rule, which the review's journeys follow too), or
        events.yaml's ``reentry_hours`` when that is longer."""
        return max(dt.timedelta(hours=self.events.reentry_hours), dt.timedelta(days=s.reentry_days))

    def wait_text(self, s: Strategy) -> str:
        if dt.timedelta(days=s.reentry_days) >= dt.timedelta(hours=self.events.reentry_hours):
            return f"{s.reentry_days} d, the strategy's reentry_days"
        return f"{self.events.reentry_hours:g} h, events.yaml reentry_hours"

    def _suitability(self, pairs: Sequence[tuple[Trigger, Strategy]], day: dt.date) -> dict[tuple[str, str], str]:
        """(customer, strategy) -> why a product offer is not suitable (the plan's rule on the bank's data)."""
        import pyarrow as pa

        product = [(t, s) for t, s in pairs if s.offer.product_id]
        if not product:
            return {}
        bank = self.bank(day)
        customers, products, rules = bank.suitability
        offers = pa.table({"customer_id": [t.customer_id for t, _ in product],
                           "offer": [s.offer.product_id for _, s in product],
                           "product_offer": [True] * len(product)})
        verdict = suitability.check(customers, products, offers, day, rules)
        return {(t.customer_id, s.id): f"suitability: {verdict.outcome[i]} ({verdict.detail[i]})"
                for i, (t, s) in enumerate(product) if not verdict.allowed[i]}

    # ------------------------------------------------------------------------------------------ contacts
    def _enqueue(self, session: Any, rows: list[dict[str, Any]], customers: dict[str, dict[str, Any]],
                 now: dt.datetime, summary: DecisionSummary) -> None:
        import pyarrow as pa

        if not rows:
            return
        day = max(r["as_of"] for r in rows)
        scripts = dispatching.Scripts(self.strategies, language=self.channels.language, bank_name=self.ctx.bank.name,
                                      products=self.bank(day).products, as_of=day)
        valid = {(s.id, w.id): w.valid_days for s in (self.strategies.strategies if self.strategies else ())
                 for w in s.waves if w.valid_days is not None}
        treated, controls = dispatching.contacts_from_lists(
            pa.Table.from_pylist(rows), scripts=scripts, customers=customers, timezone=self.timezone,
            max_attempts=self.channels.max_attempts, policy=self.policy, valid_days=valid)
        done = outbox.enqueue(session, contacts=treated, now=now)
        summary.enqueued += len(done.new_ids)
        recorded = outbox.enqueue(session, contacts=controls, now=now)
        outbox.cancel(session, dispatch_ids=recorded.new_ids, reason=dispatching.CONTROL_REASON, now=now)
        summary.controls += len(recorded.new_ids)
        dispatching.tell_controls(self.adapters, controls, recorded.existing_keys, customers)

    def drain(self, customers: dict[str, dict[str, Any]] | None = None, summary: DecisionSummary | None = None) -> None:
        """Send what is due through the contact gate and the channels (the batch's drain)."""
        summary = summary or DecisionSummary()
        self._last_drain = time.monotonic()
        now = self.clock()
        today = now.astimezone(ZoneInfo(self.timezone)).date()
        bank = self.bank(today)
        dispatching.drain(self.sessions, self.adapters, baseline=bank.baseline, customers=bank.customers,
                          batch_size=self.channels.batch_size, summary=summary.drain,
                          screen=send_time_screen(self.ctx, today, bank.suitability), policy=self.policy,
                          timezone=self.timezone,
                          fresh_seconds=self.channels.fresh_seconds, clock=self.clock)


@dataclass
class BankState:
    """The bank's state tables the decisions and the gate read (one batch)."""

    customers: dict[str, dict[str, Any]]
    baseline: dict[tuple[str, str, str], bool]
    suitability: Any
    products: dict[str, str]


@dataclass
class Prepared:
    """What a pass computed before its write transaction."""

    pairs: list[tuple[Trigger, Strategy]]
    customers: dict[str, dict[str, Any]] = field(default_factory=dict)
    snaps: dict[dt.date, dt.date | None] = field(default_factory=dict)
    checks: dict[tuple[str, str, dt.date], str | None] = field(default_factory=dict)
    unsuitable: dict[tuple[str, str], str] = field(default_factory=dict)


def customer_ids(files: Mapping[str, Sequence[Any]]) -> list[str]:
    """Every customer id of the batch's customers extract."""
    import pyarrow.parquet as pq

    if "customers" not in files:
        return []
    return pq.read_table(files["customers"][0], columns=["customer_id"])["customer_id"].to_pylist()


def _moment_row(t: Trigger) -> dict[str, Any]:
    return {"moment_key": t.key, "detector": t.moment, "customer_id": t.customer_id, "local_date": t.local_date,
            "scope": t.scope, "event_id": t.event_id or None, "occurred_at": t.occurred_at, "reason": t.reason[:512]}
