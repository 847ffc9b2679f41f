"""The contact gate (接触闸口): every contact is checked here, in the operations database, right before it goes out.

The plan applies the contact policy as a forecast; this is the guarantee. For each claimed contact,
with the customer's state read just now (consent changes, do-not-disturb, refusals, rights), in this order:

0. ``suppressed`` / ``no_personalisation`` — the customer's rights (``store.ops.rights``): a purged person
   who came back in a later batch gets no marketing; a customer who opted out of personalised marketing
   (PIPL Art. 24) gets nothing from a strategy that is personalised (the outbox item's
   ``payload.personalised``; an item without it counts as personalised);
1. ``suitability`` — the send-time suitability screen (投资者适当性, ``suitability_gate.send_time_screen``);
2. ``dnd`` / ``consent`` — do-not-disturb in force, then consent for the purpose on the channel
   (``store.ops.consent.decide``: the latest change wins over the bank's extract; marketing is opt-in);
3. ``refusal_memory`` — a marketing contact on a channel the customer refused (feedback ``refused``)
   within the policy's memory for that channel (CBIRC Order 2022 No 9: no further marketing by a
   method the customer refused); service and risk messages still go out;
4. ``expired`` — the contact's validity (its list's date + valid days) is over;
5. ``quiet_day`` / ``quiet_hours`` in the customer's local time — the contact is held until the next
   allowed instant, or expires if that instant is past its validity;
6. caps — the contact reserves its place in the contact ledger (``store.ops.ledger``), atomically;
   a cap it would break (``cap_sms_day``, ``same_strategy_today`` ...) blocks it.

Verdicts: ``allow`` (with the local day it counts on), ``hold`` (until an instant), ``expire`` and
``block`` (with the check and the reason). :func:`decide` is pure (checks 1-5); :class:`Gate` loads the
state of a few contacts at once, applies the verdicts to the outbox and reserves the ledger.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal
from zoneinfo import ZoneInfo

from lifeloop.config.contact_policy import ContactPolicy
from lifeloop.config.contact_rules import cap_limits, next_allowed, quiet_at, refusal_memory_since
from lifeloop.store.ops import audit, consent, contact_state, ledger, rights
from lifeloop.store.ops import contacts as outbox

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

Action = Literal["allow", "hold", "expire", "block", "lost"]
Screen = Callable[[Sequence[dict[str, Any]]], Mapping[int, str]]


@dataclass(frozen=True)
class Verdict:
    """What the gate decided for one contact, and why."""

    action: Action
    check: str = ""                  # the rule that decided: consent, dnd, refusal_memory, quiet_hours, cap_sms_day ...
    reason: str = ""
    until: dt.datetime | None = None  # hold: the next allowed instant (UTC)
    day: dt.date | None = None        # allow: the customer's local day it counts on


@dataclass(frozen=True)
class CustomerState:
    """One customer's state as read at ``read_at``: consent changes, do-not-disturb, refusals (channel, when), and
    rights flags (``no_personalisation``, ``suppressed``)."""

    read_at: dt.datetime
    changes: Sequence[Any] = ()
    dnd: Sequence[Any] = ()
    refusals: Sequence[tuple[str, dt.datetime]] = ()
    rights: frozenset[str] = frozenset()


def personalised(contact: Mapping[str, Any]) -> bool:
    """Whether a contact comes from a personalised strategy (an item that does not say: it does)."""
    return bool((contact.get("payload") or {}).get("personalised", True))


def rights_verdict(contact: Mapping[str, Any], state: CustomerState) -> Verdict | None:
    """Check 0: the customer's rights block the contact (suppressed and marketing; opted out and personalised)."""
    if rights.SUPPRESSED in state.rights and contact["purpose"] == "marketing":
        return Verdict("block", rights.SUPPRESSED, "a purged customer's identifiers came back in a later batch: "
                                                   "no marketing (PIPL Art. 47)")
    if rights.NO_PERSONALISATION in state.rights and personalised(contact):
        return Verdict("block", rights.NO_PERSONALISATION, f"opted out of personalised marketing; strategy "
                                                           f"{contact['strategy_id']} is personalised (PIPL Art. 24)")
    return None


def decide(contact: Mapping[str, Any], *, now: dt.datetime, timezone: str, policy: ContactPolicy,
           state: CustomerState, baseline: bool | None = None, unsuitable: str | None = None) -> Verdict:
    """Checks 0-5 for one contact at ``now``: allow (caps still to reserve), hold, expire or block."""
    channel, purpose = contact["channel"], contact["purpose"]
    blocked = rights_verdict(contact, state)
    if blocked is not None:
        return blocked
    if unsuitable:
        return Verdict("block", "suitability", unsuitable)
    permission = consent.decide(channel=channel, purpose=purpose, at=now, baseline=baseline,
                                changes=state.changes, do_not_disturb=state.dnd)
    if not permission.allowed:
        return Verdict("block", "dnd" if permission.reason.startswith("do-not-disturb") else "consent",
                       permission.reason)
    if purpose == "marketing":
        since = refusal_memory_since(policy, channel, now)
        refused = [at for ch, at in state.refusals if ch == channel and since is not None and since < at <= now]
        if refused:
            months = policy.refusal_memory_months.get(channel)  # type: ignore[call-overload]
            return Verdict("block", "refusal_memory", f"refused {channel} on {max(refused):%Y-%m-%d %H:%M} UTC "
                                                       f"(remembered {months} months)")
    expires = contact.get("expires_at")
    if expires is not None and now >= expires:
        return Verdict("expire", "expired", f"validity ended {expires:%Y-%m-%d %H:%M} UTC")
    local = now.astimezone(ZoneInfo(timezone))
    quiet = quiet_at(policy, channel, purpose, local)
    if quiet is not None:
        until = next_allowed(policy, channel, purpose, now, timezone)
        if until is None or (expires is not None and until >= expires):
            return Verdict("expire", quiet.split()[0], f"{quiet} (local {local:%Y-%m-%d %H:%M}) until past its "
                                                       "validity")
        return Verdict("hold", quiet.split()[0], f"{quiet} (local {local:%Y-%m-%d %H:%M})", until=until)
    return Verdict("allow", day=local.date())


@dataclass
class Passed:
    """What one pass of the gate did: contacts allowed (each with its ledger day) and every verdict."""

    allowed: list[dict[str, Any]] = field(default_factory=list)
    verdicts: dict[int, Verdict] = field(default_factory=dict)


class Gate:
    """Loads the state of claimed contacts, decides each one, applies the verdicts and reserves the ledger."""

    def __init__(self, policy: ContactPolicy | None = None, *, timezone: str = "UTC",
                 baseline: Mapping[tuple[str, str, str], bool] | None = None, screen: Screen | None = None,
                 timezones: Mapping[str, str] | None = None, worker: str | None = None):
        self.policy = policy or ContactPolicy()
        self.caps = policy is not None   # without a policy: consent, DND and suitability only (places still kept)
        self.timezone = timezone
        self.baseline = baseline or {}
        self.screen = screen
        self.timezones = timezones or {}
        self.worker = worker

    def zone_of(self, customer_id: str) -> str:
        """The customer's time zone (their own when the bank's data gives one, else the bank's)."""
        return self.timezones.get(customer_id) or self.timezone

    def state(self, session: Session, customer_ids: Sequence[str], now: dt.datetime) -> dict[str, CustomerState]:
        """Consent changes, do-not-disturb in force and remembered refusals of these customers, read now."""
        starts = [s for s in (refusal_memory_since(self.policy, ch, now) for ch in self.policy.refusal_memory_months)
                  if s is not None]
        changes, dnd, refusals = contact_state.read(session, customer_ids=customer_ids, at=now,
                                                    refusals_since=min(starts) if starts else None)
        flags = rights.flags(session, customer_ids=customer_ids, at=now)
        return {c: CustomerState(now, changes.get(c, ()), dnd.get(c, ()), refusals.get(c, ()),
                                 frozenset(flags.get(c, ()))) for c in customer_ids}

    def apply(self, session: Session, claimed: Sequence[dict[str, Any]], now: dt.datetime) -> Passed:
        """Decide every claimed contact now and record it: blocked, held, expired, or allowed with its ledger place.

        Runs in the caller's unit of work; commit before sending (the ledger's lock is held until then).
        """
        out = Passed()
        # a claim whose lease ran out while earlier chunks went out may belong to another worker now
        held = contact_state.still_held(session, claims={c["id"]: c["claim_token"] for c in claimed})
        for c in claimed:
            if c["id"] not in held:
                out.verdicts[c["id"]] = Verdict("lost", "claim", "the claim's lease ran out; another worker has it")
        claimed = [c for c in claimed if c["id"] in held]
        states = self.state(session, [c["customer_id"] for c in claimed], now)
        unsuitable = self.screen(claimed) if self.screen is not None else {}
        asks = []
        for c in claimed:
            who = c["customer_id"]
            verdict = decide(c, now=now, timezone=self.zone_of(who), policy=self.policy, state=states[who],
                             baseline=self.baseline.get((who, c["purpose"], c["channel"])),
                             unsuitable=unsuitable.get(c["id"]))
            out.verdicts[c["id"]] = verdict
            if verdict.action == "allow":
                asks.append(ledger.Ask(c["id"], who, c["channel"], c["strategy_id"], verdict.day,  # type: ignore
                                       cap_limits(self.policy, c["channel"]) if self.caps else ()))
            else:
                self._record(session, c, verdict, now)
        refused = ledger.reserve(session, asks=asks, worker=self.worker, now=now)
        for c in claimed:
            verdict = out.verdicts[c["id"]]
            if verdict.action != "allow":
                continue
            cap = refused.get(c["id"])
            if cap is None:
                out.allowed.append(c)
                continue
            verdict = Verdict("block", cap, f"{cap}: the contact ledger is full for {verdict.day}")
            out.verdicts[c["id"]] = verdict
            self._record(session, c, verdict, now)
        return out

    def _record(self, session: Session, c: Mapping[str, Any], verdict: Verdict, now: dt.datetime) -> None:
        if verdict.action == "hold":
            outbox.hold(session, dispatch_id=c["id"], claim_token=c["claim_token"], until=verdict.until,  # type: ignore
                        reason=f"held: {verdict.reason}", now=now)
            return
        word = "expired" if verdict.action == "expire" else "at dispatch"
        if outbox.block(session, dispatch_id=c["id"], claim_token=c["claim_token"], reason=f"{word}: {verdict.reason}",
                        now=now) and first_attempt(c):
            ledger.release(session, dispatch_id=c["id"])
        if verdict.check == "suitability":
            audit.record(session, actor="dispatch", action="dispatch.blocked.suitability", target_type="customer",
                         target_id=c["customer_id"], reason=verdict.reason,
                         details={"as_of": str(c["as_of"]), "strategy": c["strategy_id"], "wave": c["wave"],
                                  "offer": (c["payload"] or {}).get("offer"), "channel": c["channel"],
                                  "dispatch_id": c["id"], "at_send": True})


def first_attempt(c: Mapping[str, Any]) -> bool:
    """No earlier attempt of this contact can have reached the customer (so its ledger place may be given back).

    A claim counts an attempt; an earlier one may have timed out after the provider accepted it, or crashed
    after handing it over: then the place stays taken (counting a contact that may have happened is the
    side that protects the customer).
    """
    return int(c.get("attempts") or 1) <= 1

