"""Dispatch (step ``dispatch``): the day's lists into the outbox, then the outbox out through the channels.

1. **Enqueue.** Every treated contact of ``lake/lists/as_of=D/`` goes into the ops outbox with its
   idempotency key (a hash of as-of date, strategy, wave, customer and channel), its rendered script
   and the earliest send time (the list's ``send_at`` in the bank's time zone). Control-group rows are
   recorded as contact history that is never sent (status ``cancelled``, reason "control group"), and
   channels that want them (the simulated bank) are told. Re-running a day enqueues nothing twice.
2. **Drain.** Claim a batch (committed before sending); then, a few contacts at a time, pass them
   through the contact gate (``lifeloop.execution.gate``: consent, do-not-disturb, refusal memory,
   validity, quiet hours and days in the customer's local time, suitability, and a place in the
   contact ledger for the caps), with the customers' state read right then, and hand the allowed ones
   to the channel's adapter at once. The chunks are sized from the measured send time so that no state
   is older than ``fresh_seconds`` when a contact is handed over. Mark each item sent, failed
   (retryable ones come back after a backoff; a definitive failure gives its ledger place back) or of
   unknown outcome — with the delivery semantics of ``lifeloop.execution.sending``: nothing is re-sent
   to a provider that does not de-duplicate unless it is known not to have it.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lifeloop.config.channels import ChannelsConfig
from lifeloop.config.contact_policy import ContactPolicy
from lifeloop.config.contact_rules import next_allowed, valid_until
from lifeloop.config.loader import load_model
from lifeloop.config.masking import masking_policy
from lifeloop.config.scripts import customer_variables, render, script_id
from lifeloop.config.strategies import StrategiesConfig
from lifeloop.contract import Bank, ConfigPort, Inputs, Output, Read, Step
from lifeloop.data.masking import Policy
from lifeloop.errors import Interrupted
from lifeloop.execution.approval_gate import rules_from_adapters, rules_from_config
from lifeloop.execution.channels.base import Channel, Message
from lifeloop.execution.channels.files import FileChannel
from lifeloop.execution.channels.simulator import SimulatorChannel
from lifeloop.execution.channels.webhook import WebhookChannel
from lifeloop.execution.channels.worklist import WorklistChannel
from lifeloop.execution.customers import add_features, bank_tables, product_names
from lifeloop.execution.gate import Gate
from lifeloop.execution.sending import (
    picked_up_lines,
    reconcile,
    recover_claims,
    release_claims,
    send_allowed,
    waiting_lines,
)
from lifeloop.execution.suitability_gate import record_unsuitable, send_time_screen, suitability_inputs, suitable_only
from lifeloop.settings import operator_identity
from lifeloop.store.ops import approvals
from lifeloop.store.ops import contacts as outbox
from lifeloop.store.ops.contacts import NewContact, outbox_counts
from lifeloop.store.ops.database import unit_of_work
from lifeloop.store.ops.models import Dispatch
from lifeloop.store.ops.owners import Owner
from lifeloop.store.ops.types import utcnow
from lifeloop.workspace import template_root

if TYPE_CHECKING:
    import pyarrow as pa

    from lifeloop.config.channels import ChannelsConfig
    from lifeloop.config.strategies import StrategiesConfig
    from lifeloop.store.lake import Lake

CONTROL_REASON = "control group (holdout): recorded, never sent"
FRESH_SECONDS = 10.0   # default bound on the age of the gate's state when a contact is handed over
Baseline = Mapping[tuple[str, str, str], bool]


@dataclass
class Surroundings:
    """What dispatch reaches outside its inputs: the lake's lists, the configs, the ops database, the bank."""

    lake: Lake
    configs: ConfigPort
    ops: Callable[[], Any]
    bank: Bank

    @property
    def config_dir(self) -> Path:
        return self.configs.path("channels").parent

    def load_config(self, name: str, model: Any) -> tuple[Any, Any]:
        return self.configs.load(name, model)

    def lists(self, as_of: dt.date) -> pa.Table:
        import pyarrow.parquet as pq

        return pq.read_table(self.lake.snapshot_file("lists", as_of))


@dataclass
class DispatchSummary:
    """What a dispatch did: new and already-queued contacts, controls recorded, and what the drain did."""

    enqueued: int = 0
    already_queued: int = 0
    controls: int = 0
    sent: int = 0
    failed: int = 0
    retrying: int = 0
    blocked: int = 0
    held: int = 0        # enqueued, waiting for a second person's approval (lifeloop approve)
    unknown: int = 0        # sent, but the outcome is unknown and the provider does not de-duplicate
    reconciled: int = 0     # unknown outcomes settled by a provider's status look-up
    deferred: int = 0    # quiet hours or a quiet day: back in the outbox until the next allowed instant
    expired: int = 0     # validity over (or no allowed instant before it ends): never sent
    by_channel: dict[str, dict[str, int]] = field(default_factory=dict)
    outbox: dict[str, int] = field(default_factory=dict)
    picked_up: list[str] = field(default_factory=list)   # what was taken over from dispatchers that stopped
    waiting: list[str] = field(default_factory=list)     # what was left alone, and why

    def lines(self) -> list[str]:
        """A short text account for the CLI and logs."""
        out = [f"enqueued {self.enqueued:,} contacts ({self.already_queued:,} already queued), "
               f"recorded {self.controls:,} control-group customers (never sent)",
               *self.picked_up,
               f"sent {self.sent:,}, failed {self.failed:,}, retrying later {self.retrying:,}, "
               f"blocked at dispatch {self.blocked:,}, deferred to allowed hours {self.deferred:,}, "
               f"expired {self.expired:,}, outcome unknown {self.unknown:,}"
               + (f", unknown outcomes settled by status look-up {self.reconciled:,}" if self.reconciled else ""),
               *self.waiting]
        if self.held:
            out.append(f"held for approval {self.held:,} (a second person approves: lifeloop approve list)")
        for channel, counts in sorted(self.by_channel.items()):
            out.append(f"  {channel}: " + ", ".join(f"{k} {v:,}" for k, v in sorted(counts.items())))
        if self.outbox:
            out.append("outbox for the day: " + ", ".join(f"{k} {v:,}" for k, v in self.outbox.items() if v))
        return out

    def count(self, channel: str, what: str, n: int = 1) -> None:
        """Add ``n`` to a total and to the channel's."""
        setattr(self, what, getattr(self, what) + n)
        per = self.by_channel.setdefault(channel, {})
        per[what] = per.get(what, 0) + n


# ---------------------------------------------------------------------------------------------- scripts
class Scripts:
    """Renders a strategy's script for a channel with a customer's whitelisted, masked variables."""

    def __init__(self, config: StrategiesConfig | None, *, language: str = "zh", bank_name: str = "",
                 products: Mapping[str, str] | None = None, as_of: dt.date | None = None):

        def text(script: Any) -> str:
            return (script.en or script.zh) if language == "en" else script.zh

        self.texts: dict[tuple[str, str], str] = {}
        self.by_id: dict[str, str] = {}   # a cell's own scripts (script A vs B), by the id the plan wrote
        for s in (config.strategies if config is not None else ()):
            for channel, script in s.scripts.items():
                self.texts[(s.id, channel)] = text(script)
            for cell in s.cells:
                for channel, script in cell.scripts.items():
                    self.by_id[script_id(s.id, channel, cell.id)] = text(script)
        self.bank_name = bank_name
        self.products = dict(products or {})   # product_id -> name
        holidays = config.events.holidays if config is not None else []
        self.holiday = next((h.name for h in holidays if h.date == as_of), "")

    def render(self, strategy: str, channel: str, customer: Mapping[str, Any], offer: str | None,
               script_id: str | None = None) -> str:
        """The script text (a cell's own when ``script_id`` names one), or "" when the strategy has none."""

        text = self.by_id.get(script_id or "") or self.texts.get((strategy, channel))
        if not text:
            return ""
        raw = {"customer_name": customer.get("name"), "gender": customer.get("gender"),
               "bank_name": self.bank_name, "offer_code": offer or "",
               "product_name": self.products.get(offer or "", ""), "holiday_name": self.holiday,
               "days_to_maturity": customer.get("days_to_next_maturity"),
               "maturing_amount": customer.get("maturing_amount_30d"), "rm_name": customer.get("rm_name"),
               "branch_name": customer.get("branch_name")}
        return render(text, customer_variables(raw))


# ---------------------------------------------------------------------------------------------- enqueue
def send_time(as_of: dt.date, send_at: str | None, timezone: str) -> dt.datetime | None:
    """The list's local send time (HH:MM on the as-of date) as a UTC instant; None: as soon as possible."""
    if not send_at:
        return None
    from zoneinfo import ZoneInfo

    hour, minute = (int(x) for x in send_at.split(":")[:2])
    local = dt.datetime.combine(as_of, dt.time(hour, minute), tzinfo=ZoneInfo(timezone))
    return local.astimezone(dt.UTC)


def contacts_from_lists(lists: pa.Table, *, scripts: Scripts | None = None,
                        customers: Mapping[str, Mapping[str, Any]] | None = None, timezone: str = "UTC",
                        max_attempts: int = 5, policy: ContactPolicy | None = None,
                        valid_days: Mapping[tuple[str, str], int] | None = None,
                        non_personalised: Collection[str] = ()) -> tuple[list[Any], list[Any]]:
    """The outbox items of a day's lists: (treated contacts, control rows); dropped rows are not contacts.

    Each item's payload says whether its strategy is personalised (every strategy but those named in
    ``non_personalised``): the gate blocks personalised contacts to customers who opted out.

    With the contact ``policy``, each contact's send time is an instant in the customer's local time moved
    past quiet hours and quiet days, and it expires at the local midnight ending day D + its valid days
    (the wave's ``valid_days`` from ``valid_days[(strategy, wave)]``, else the channel's, default 1).
    """

    customers = customers or {}
    treated, controls = [], []
    for row in lists.to_pylist():
        if row["status"] not in ("contact", "control") or not row.get("channel"):
            continue
        customer = customers.get(row["customer_id"], {})
        is_control = row["status"] == "control"
        script = "" if is_control or scripts is None else scripts.render(row["strategy"], row["channel"], customer,
                                                                          row.get("offer"), row.get("script_id"))
        payload = {"group": "control" if is_control else "treated", "offer": row.get("offer"),
                   "priority": int(row.get("priority") or 0), "script_key": row.get("script_key"),
                   "send_at": row.get("send_at"), "script": script,
                   "personalised": row["strategy"] not in non_personalised}
        if row.get("cell"):
            payload["cell"] = row["cell"]   # which A/B cell (only strategies with cells: others keep their payload)
        zone = customer.get("timezone") or timezone
        purpose = row.get("purpose") or "marketing"
        not_before = expires = None
        if not is_control:
            not_before = send_time(row["as_of"], row.get("send_at"), zone)
            if policy is not None:
                days = (valid_days or {}).get((row["strategy"], row["wave"]))
                expires = valid_until(row["as_of"], policy.channel(row["channel"]).valid_days if days is None
                                      else days, zone)
                if not_before is not None:
                    not_before = next_allowed(policy, row["channel"], purpose, not_before, zone) or expires
        item = NewContact(as_of=row["as_of"], customer_id=row["customer_id"], strategy_id=row["strategy"],
                          wave=row["wave"], channel=row["channel"], purpose=purpose,
                          script_id=row.get("script_id"), rm_id=row.get("rm_id"), payload=payload,
                          max_attempts=max_attempts, not_before=not_before, expires_at=expires)
        (controls if is_control else treated).append(item)
    return treated, controls


def enqueue_lists(sessions: Any, lists: pa.Table, *, adapters: Mapping[str, Channel] | None = None,
                  scripts: Scripts | None = None, customers: Mapping[str, Mapping[str, Any]] | None = None,
                  timezone: str = "UTC", max_attempts: int = 5,
                  summary: DispatchSummary | None = None, approval: approvals.Rules | None = None,
                  operator: str | None = None, policy: ContactPolicy | None = None,
                  valid_days: Mapping[tuple[str, str], int] | None = None,
                  now: dt.datetime | None = None, non_personalised: Collection[str] = ()) -> DispatchSummary:
    """Put the lists' treated contacts in the outbox and record the controls; idempotent.

    New contacts of a day that needs a second person (``approval``; default: the default sizes and the
    adapters' unmasked file exports) are enqueued ``held``, requested in the name of ``operator``. Each
    contact's ``not_before`` is its send time moved out of quiet hours and days, and it expires when its
    validity ends (``policy``, ``valid_days``).
    """

    summary = summary or DispatchSummary()
    treated, controls = contacts_from_lists(lists, scripts=scripts, customers=customers, timezone=timezone,
                                            max_attempts=max_attempts, policy=policy, valid_days=valid_days,
                                            non_personalised=non_personalised)
    with unit_of_work(sessions) as session:
        done = outbox.enqueue(session, contacts=treated, now=now)
        summary.enqueued += len(done.new_ids)
        summary.held += approvals.hold_new(session, dispatch_ids=done.new_ids, now=now,
                                           rules=approval or rules_from_adapters(adapters),
                                           requested_by=operator or operator_identity())
        summary.already_queued += len(done.existing_keys)
        recorded = outbox.enqueue(session, contacts=controls, now=now)
        outbox.cancel(session, dispatch_ids=recorded.new_ids, reason=CONTROL_REASON, now=now)
        summary.controls += len(recorded.new_ids)
        tell_controls(adapters, controls, recorded.existing_keys, customers)
    return summary


def tell_controls(adapters: Mapping[str, Channel] | None, controls: Sequence[Any], existing: Sequence[str],
                  customers: Mapping[str, Mapping[str, Any]] | None) -> None:
    """Tell the channels that want them (the simulated bank) about the newly recorded control-group entries.

    Called inside the enqueue's transaction: if telling the receiver fails, the controls are not recorded either
    and the next run tells it again (the receiver drops repeats by key)."""
    known = set(existing)
    fresh = [c for c in controls if c.key not in known]
    for name, adapter in (adapters or {}).items():
        if adapter.capabilities.wants_controls:
            adapter.record_controls([_control_message(c, customers or {}) for c in fresh if c.channel == name])


def _control_message(c: Any, customers: Mapping[str, Mapping[str, Any]]) -> Message:
    payload = c.payload or {}
    return Message(dispatch_id=0, key=c.key, as_of=c.as_of, customer_id=c.customer_id, strategy_id=c.strategy_id,
                   wave=c.wave, channel=c.channel, purpose=c.purpose, rm_id=c.rm_id, offer=payload.get("offer"),
                   priority=payload.get("priority", 0), customer=customers.get(c.customer_id, {}))


# ---------------------------------------------------------------------------------------------- drain
def default_worker() -> str:
    """A worker name that tells which machine and process holds a claim."""
    return Owner.current().label


def drain(sessions: Any, adapters: Mapping[str, Channel], *, baseline: Baseline | None = None,
          customers: Mapping[str, Mapping[str, Any]] | None = None, batch_size: int = 200,
          worker: str | None = None, clock: Callable[[], dt.datetime] | None = None,
          summary: DispatchSummary | None = None, max_batches: int | None = None,
          screen: Callable[[Sequence[dict[str, Any]]], Mapping[int, str]] | None = None,
          owner: Owner | None = None, policy: ContactPolicy | None = None, timezone: str = "UTC",
          fresh_seconds: float = FRESH_SECONDS, timer: Callable[[], float] = time.monotonic) -> DispatchSummary:
    """Send every due outbox item of the configured channels through the contact gate; returns what happened.

    ``screen`` (suitability at send time, see suitability_gate.send_time_screen) names the claimed items
    that must not go out, with why; ``policy`` is the contact policy the gate applies (quiet hours and
    days, refusal memory, caps; none: only consent, do-not-disturb and suitability), in the customers'
    local time (``timezone``, or a customer's own ``timezone`` field). A claimed batch goes through the
    gate in chunks sized from the measured send time, so that the state the gate read is never older
    than about ``fresh_seconds`` when a contact is handed to its channel (docs/execution.md).

    First, claims of dispatchers that died on this host are taken back, and unknown outcomes are checked
    with the providers' status look-ups (``lifeloop.execution.sending``). Items whose retry is not due yet
    stay pending for a later run; channels without an adapter stay pending too. Ctrl-C (``Interrupted``,
    KeyboardInterrupt) or an adapter's exception gives back this drain's claims at once, then propagates.
    """

    summary = summary or DispatchSummary()
    clock = clock or utcnow
    owner = owner or Owner.current()
    worker = worker or owner.label
    customers = customers or {}
    gate = Gate(policy, timezone=timezone, baseline=baseline, screen=screen, worker=worker,
                timezones={c: v["timezone"] for c, v in customers.items() if v.get("timezone")})
    pace = Pace(fresh_seconds)
    batches = 0
    in_hand: set[str] = set()   # claim tokens of batches not yet settled
    asked: set[int] = set()     # unknown items already looked up in this drain
    try:
        while max_batches is None or batches < max_batches:
            summary.picked_up.extend(picked_up_lines(recover_claims(sessions, adapters, owner, clock())))
            reconcile(sessions, adapters, clock, summary, asked)
            now = clock()
            with unit_of_work(sessions) as session:  # committed before sending, so other workers see the claim
                items = outbox.claim_batch(session, worker=worker, limit=batch_size, now=now, channels=list(adapters),
                                           owner=owner)
                claimed = [_snapshot(i) for i in items]
            if not claimed:
                break
            in_hand.update(c["claim_token"] for c in claimed)
            batches += 1
            for channel in sorted({c["channel"] for c in claimed}):
                waiting = [c for c in claimed if c["channel"] == channel]
                whole = adapters[channel].capabilities.whole_batch
                while waiting:
                    size = len(waiting) if whole else pace.size(channel)
                    chunk, waiting = waiting[:size], waiting[size:]
                    started = timer()
                    with unit_of_work(sessions) as session:   # the state read, the verdicts and the ledger, at once
                        passed = gate.apply(session, chunk, clock())
                    _count_verdicts(summary, channel, passed.verdicts)
                    send_allowed(sessions, adapters, passed.allowed, lambda c: _message(c, customers), clock, summary)
                    pace.took(channel, timer() - started, len(chunk))
            release_claims(sessions, adapters, in_hand, owner, clock())   # anything an adapter did not answer for
            in_hand.clear()
    except (KeyboardInterrupt, Interrupted) as exc:
        back = release_claims(sessions, adapters, in_hand, owner, clock())
        raise Interrupted(f"dispatch interrupted: {back.total:,} contacts it held were given back at once "
                          f"({back.unknown:,} of unknown outcome); sent before that: {summary.sent:,}") from exc
    except BaseException:
        release_claims(sessions, adapters, in_hand, owner, clock())
        raise
    summary.waiting = waiting_lines(sessions, adapters, in_hand, clock())
    return summary


class Pace:
    """How many contacts of a channel go through the gate at once, so that its state read stays fresh.

    Starts with one contact, then sizes each chunk so that it takes about half of ``fresh_seconds`` at the
    last measured time per contact (at most doubling from one chunk to the next, so a gateway that slows
    down is noticed after one short chunk). The bound then holds unless one single hand-over is slower
    than the other half (docs/performance.md has the measurement).
    """

    def __init__(self, fresh_seconds: float):
        self.fresh = fresh_seconds
        self.sizes: dict[str, int] = {}

    def size(self, channel: str) -> int:
        """The next chunk's size for ``channel``."""
        return self.sizes.get(channel, 1)

    def took(self, channel: str, seconds: float, n: int) -> None:
        """Record that ``n`` contacts took ``seconds`` from the state read to the last hand-over."""
        per = seconds / max(n, 1)
        fits = int(self.fresh / 2 / per) if per > 0 else 10_000
        self.sizes[channel] = max(1, min(fits, 2 * max(n, 1), 10_000))


def _count_verdicts(summary: DispatchSummary, channel: str, verdicts: Mapping[int, Any]) -> None:
    for verdict in verdicts.values():
        if verdict.action == "block":
            summary.count(channel, "blocked")
        elif verdict.action == "hold":
            summary.count(channel, "deferred")
        elif verdict.action == "expire":
            summary.count(channel, "expired")


def _snapshot(item: Any) -> dict[str, Any]:
    return {name: getattr(item, name) for name in (
        "id", "idempotency_key", "as_of", "customer_id", "strategy_id", "wave", "channel", "purpose", "rm_id",
        "payload", "claim_token", "attempts", "expires_at")}


def _message(c: Mapping[str, Any], customers: Mapping[str, Mapping[str, Any]]) -> Message:
    payload = c["payload"] or {}
    return Message(dispatch_id=c["id"], key=c["idempotency_key"], as_of=c["as_of"], customer_id=c["customer_id"],
                   strategy_id=c["strategy_id"], wave=c["wave"], channel=c["channel"], purpose=c["purpose"],
                   rm_id=c["rm_id"], offer=payload.get("offer"), priority=int(payload.get("priority") or 0),
                   script=payload.get("script") or "", customer=customers.get(c["customer_id"], {}))


# ---------------------------------------------------------------------------------------------- the step
def build_adapters(config: ChannelsConfig, workspace: Path, sessions: Any,
                   masking: Policy | None = None) -> dict[str, Channel]:
    """One adapter per configured channel (file exports masked by ``masking``, default the built-in policy)."""

    adapters: dict[str, Channel] = {}
    for name, s in config.channels.items():
        if s.kind == "webhook":
            adapters[name] = WebhookChannel(name, s.url, timeout=s.timeout_seconds, retries=s.retries,
                                            backoff=s.backoff_seconds, max_inline_wait=s.max_inline_wait_seconds,
                                            key_header=s.key_header, headers=dict(s.headers), breaker=s.breaker,
                                            dedupes_by_key=s.dedupes_by_key, status_url=s.status_url,
                                            reconcile_after=s.reconcile_after_seconds)
        elif s.kind == "file":
            adapters[name] = FileChannel(name, workspace / s.folder, format=s.format, recipient_role=s.recipient_role,
                                         policy=masking)
        elif s.kind == "worklist":
            adapters[name] = WorklistChannel(name, sessions, due_in_days=s.due_in_days)
        else:
            tasks = (None if s.worklist_due_in_days is None
                     else WorklistChannel(name, sessions, due_in_days=s.worklist_due_in_days))
            adapters[name] = SimulatorChannel(name, workspace / s.bank, tasks=tasks)
    return adapters


def channels_config(ctx: Surroundings) -> ChannelsConfig:
    """``config/channels.yaml``, or the offline defaults when the workspace has none."""

    if not (ctx.config_dir / "channels.yaml").exists():


        return load_model(ChannelsConfig, template_root() / "config" / "channels.yaml")[0]
    return ctx.load_config("channels", ChannelsConfig)[0]


def dispatch(ctx: Surroundings, as_of: dt.date, *, drain_outbox: bool = True,
             operator: str | None = None) -> DispatchSummary:
    """Enqueue the day's lists and drain the outbox through the configured channels (``Context.dispatch``).

    ``operator`` (``Context`` passes the signed-in user; default for direct library calls:
    :func:`lifeloop.settings.operator_identity`) is who asks for approval of a held day.
    """

    config = channels_config(ctx)
    sessions = ctx.ops()
    inputs = suitability_inputs(ctx, as_of)  # the bank's customers and products, read once for every check
    lists, unsuitable = suitable_only(ctx, ctx.lists(as_of), as_of, inputs)  # 投资者适当性, again
    # the day's customers, and those of earlier items still waiting (retries): all are checked and sent now
    customers, baseline = bank_tables(ctx.lake, as_of, lists["customer_id"].to_pylist() + waiting_customers(sessions))
    strategies = ctx.load_config("strategies", StrategiesConfig)[0] if (ctx.config_dir / "strategies.yaml").exists() \
        else None
    policy = contact_policy(ctx)
    valid_days = {(s.id, w.id): w.valid_days for s in (strategies.strategies if strategies else ())
                  for w in s.waves if w.valid_days is not None}
    clock = replay_clock(as_of, config.replay_at, ctx.bank.timezone) if config.replay_at else None
    scripts = Scripts(strategies, language=config.language, bank_name=ctx.bank.name,
                      products=product_names(inputs[1]), as_of=as_of)
    add_features(ctx, as_of, customers)
    masking = masking_policy(ctx.configs)
    adapters = build_adapters(config, ctx.bank.workspace, sessions, masking)
    try:
        summary = enqueue_lists(sessions, lists, adapters=adapters, scripts=scripts, customers=customers,
                                timezone=ctx.bank.timezone, max_attempts=config.max_attempts,
                                approval=rules_from_config(config, masking), operator=operator, policy=policy,
                                valid_days=valid_days, now=clock() if clock else None,
                                non_personalised={s.id for s in (strategies.strategies if strategies else ())
                                                  if not s.personalised})
        record_unsuitable(sessions, unsuitable, summary)
        if drain_outbox:
            drain(sessions, adapters, baseline=baseline, customers=customers, batch_size=config.batch_size,
                  summary=summary, screen=send_time_screen(ctx, as_of, inputs), policy=policy,
                  timezone=ctx.bank.timezone, fresh_seconds=config.fresh_seconds, clock=clock)
    finally:
        for adapter in adapters.values():
            adapter.close()
    with unit_of_work(sessions) as session:
        summary.outbox = outbox_counts(session, as_of=as_of)
    return summary


def contact_policy(ctx: Surroundings) -> ContactPolicy:
    """``config/contact_policy.yaml`` (the gate's rules), or the template's when the workspace has none."""
    if not (ctx.config_dir / "contact_policy.yaml").exists():
        return load_model(ContactPolicy, template_root() / "config" / "contact_policy.yaml")[0]
    return ctx.load_config("contact_policy", ContactPolicy)[0]


def replay_clock(as_of: dt.date, at: str, timezone: str) -> Callable[[], dt.datetime]:
    """A clock that stands at local time ``at`` (HH:MM) on ``as_of``: replays and the simulated bank only."""
    instant = send_time(as_of, at, timezone)
    assert instant is not None
    return lambda: instant


def waiting_customers(sessions: Any) -> list[str]:
    """Customers with outbox items still pending or claimed (from any day)."""
    import sqlalchemy as sa


    with sessions() as session:
        return list(session.scalars(sa.select(Dispatch.customer_id).distinct()
                                    .where(Dispatch.status.in_(("pending", "claimed")))))


def has_dispatched(sessions: Any) -> bool:
    """Whether anything was ever put in the outbox (then the plan should read history from the ops database)."""
    import sqlalchemy as sa


    with sessions() as session:
        return session.scalar(sa.select(Dispatch.id).limit(1)) is not None


def compute(inputs: Inputs) -> Output:
    """An action, not a snapshot: the day's lists into the outbox and out through the channels."""
    from dataclasses import asdict

    assert inputs.ops is not None and inputs.config_source is not None
    summary = dispatch(Surroundings(inputs.lake, inputs.config_source, inputs.ops, inputs.bank), inputs.as_of,
                       operator=inputs.operator)
    return Output(rows=summary.enqueued + summary.controls, summary=asdict(summary))


STEP = Step("dispatch", compute, reads=(Read("lists"),), writes=None, ops=True,
            doc="dispatch (执行): lists -> ops outbox (idempotency keys) -> the contact gate at send time -> channels")
