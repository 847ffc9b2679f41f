"""Acting on a customer's rights (客户权利): the commands behind ``lifeloop customers ...``.

* :func:`set_personalisation` — opt a customer out of personalised marketing, or back in (PIPL Art. 24);
* :func:`delete_tags` — record a tag-deletion request (算法推荐管理规定 Art. 17): from the next run the
  derived snapshots leave the customer out (``lifeloop.pipeline``); :func:`apply_retention` rewrites the
  retained ones;
* :func:`purge` — after withdrawal or closure plus the configured retention (PIPL Art. 47): the customer's
  rows leave every retained lake snapshot and the ops database; keyed hashes stay as a suppression;
* :func:`screen_batch` — an ingested batch's customers that match a suppression are kept out of marketing.

Everything is audited (``rights.*``). Refusals are audited too, with ``result=refused``, before the error.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from lifeloop.errors import DataError, NotFoundError
from lifeloop.execution.bank_customers import BankCustomers
from lifeloop.store import erasure
from lifeloop.store.lake import BANK, Lake
from lifeloop.store.ops import audit, consent, rights
from lifeloop.store.ops.database import unit_of_work
from lifeloop.store.ops.types import as_utc, utcnow
from lifeloop.store.suppression import SUPPRESSION_KINDS, KeyedHash, digest

# what a tag-deletion request removes from retained snapshots: derived tags and the audiences built on them;
# the lists keep the contact (history, evaluation) but lose the reason, which quotes tag values
TAG_AREAS = ("features", "lifecycle", "segments", "clusters", "scores", "audiences")
BLANKED = {"lists": {"lists.parquet": ("reason",)}}


def _known(lake: Lake, customer_id: str) -> None:
    customers = BankCustomers(lake)
    if not customers.known(customer_id):
        raise NotFoundError(f"customer {customer_id} is not in the bank's newest customers extract "
                            f"({customers.as_of})", hint="check the customer number (客户号)")


def set_personalisation(lake: Lake, sessions: Any, customer_id: str, *, opted_out: bool, source: str, reason: str,
                        actor: str, now: dt.datetime | None = None) -> dict[str, Any]:
    """Opt a customer out of personalised marketing (or back in), effective at once; audited."""
    _known(lake, customer_id)
    with unit_of_work(sessions) as session:
        change = rights.set_personalisation(session, customer_id=customer_id, opted_out=opted_out, source=source,
                                            reason=reason, actor=actor, at=now)
        return {"customer_id": customer_id, "opted_out": change.opted_out, "effective_at": change.effective_at,
                "source": change.source, "recorded_by": change.recorded_by}


def delete_tags(lake: Lake, sessions: Any, customer_id: str, *, reason: str, actor: str,
                now: dt.datetime | None = None) -> dict[str, Any]:
    """Record a tag-deletion request: the next run produces no derived tags for the customer; audited."""
    _known(lake, customer_id)
    with unit_of_work(sessions) as session:
        request = rights.request_tag_deletion(session, customer_id=customer_id, reason=reason, actor=actor, at=now)
        return {"request_id": request.id, "customer_id": customer_id, "requested_at": request.requested_at,
                "status": request.status}


@dataclass
class Retention:
    """What :func:`apply_retention` did: the requests applied and the snapshots rewritten."""

    requests: list[int] = field(default_factory=list)
    customers: int = 0
    rewritten: erasure.Rewritten = field(default_factory=erasure.Rewritten)


def apply_retention(lake: Lake, sessions: Any, *, actor: str, now: dt.datetime | None = None) -> Retention:
    """Honour pending tag-deletion requests in retained snapshots (rewritten atomically); audited.

    Run on the bank's retention schedule (e.g. nightly). Derived areas lose the customers' rows, the lists
    keep the contact and lose the reason (which quotes tag values). Requests are marked applied after the
    rewrite; a failure leaves them pending, and the next run finishes the job (rewrites are idempotent).
    """
    with sessions() as session:
        todo = rights.pending(session, "delete_tags")
        ids = sorted({r.customer_id for r in todo})
        request_ids = [r.id for r in todo]
    done = Retention(request_ids, len(ids))
    if not todo:
        return done
    note = {"kind": "delete_tags", "requests": request_ids}
    done.rewritten = erasure.rewrite_areas(lake, [a for a in sorted(TAG_AREAS) if lake.dates(a)], ids, note=note)
    blanked = erasure.rewrite_areas(lake, [a for a in BLANKED if lake.dates(a)], ids,
                                    note={**note, "blanked": True}, blank=BLANKED)
    done.rewritten.snapshots.update(blanked.snapshots)
    done.rewritten.looked_at += blanked.looked_at
    with unit_of_work(sessions) as session:
        pending = [r for r in rights.pending(session, "delete_tags") if r.id in request_ids]
        rights.mark_applied(session, requests=pending, actor=actor, details=done.rewritten.as_dict(), at=now)
        audit.record(session, actor=actor, action="rights.retention.apply", target_type="lake",
                     details={"requests": request_ids, "customers": len(ids), **done.rewritten.as_dict()}, at=now)
    return done


# ---------------------------------------------------------------------------------------------- purge
@dataclass(frozen=True)
class Ended:
    """When and how a customer's relationship ended, as far as Lifeloop can tell (None: it has not)."""

    withdrawn_on: dt.date | None
    closed_on: dt.date | None

    def as_dict(self) -> dict[str, str | None]:
        """As JSON-ready text (ISO dates)."""
        return {"withdrawn_on": _iso(self.withdrawn_on), "closed_on": _iso(self.closed_on)}

    @property
    def on(self) -> dt.date | None:
        dates = [d for d in (self.withdrawn_on, self.closed_on) if d is not None]
        return min(dates) if dates else None


def _iso(day: dt.date | None) -> str | None:
    return None if day is None else day.isoformat()


def presence(lake: Lake, customer_id: str) -> tuple[list[dt.date], list[dt.date], dict[str, Any]]:
    """Batches with a customers extract, those that list the customer, and their newest identifiers."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    batches, present, ids = [], [], {}
    for day in lake.dates(BANK):
        path = lake.snapshot_dir(BANK, day) / "customers.parquet"
        if not path.exists():
            continue
        batches.append(day)
        names = pq.read_schema(path).names
        table = lake.read_table(path, columns=[c for c in ("customer_id", *SUPPRESSION_KINDS[1:]) if c in names])
        mine = table.filter(pc.equal(table["customer_id"], customer_id))
        if mine.num_rows:
            present.append(day)
            ids = mine.to_pylist()[0]
    return batches, present, ids


def ended(lake: Lake, sessions: Any, customer_id: str) -> tuple[Ended, dict[str, Any], bool]:
    """How the relationship ended (withdrawal of marketing consent on every channel; gone from the extract),
    the customer's identifiers, and whether Lifeloop knows the customer at all."""
    batches, present, ids = presence(lake, customer_id)
    closed = None
    if present and present[-1] != batches[-1]:
        closed = min(d for d in batches if d > present[-1])
    withdrawn = None
    with sessions() as session:
        history = consent.consent_history(session, customer_id=customer_id, purpose="marketing")
    every = [c for c in history if c.channel == "*"]
    if every and not every[-1].granted and not any(c.granted and c.effective_at > every[-1].effective_at
                                                   for c in history):
        withdrawn = as_utc(every[-1].effective_at).date()
    return Ended(withdrawn, closed), ids, bool(present) or bool(history)


def purge(lake: Lake, sessions: Any, keys: KeyedHash, customer_id: str, *, reason: str, actor: str,
          retention_days: int, now: dt.datetime | None = None) -> dict[str, Any]:
    """Remove a customer's personal data from the lake's retained snapshots and the ops database; audited.

    Refused (and the refusal audited) unless the customer withdrew marketing consent on every channel or
    left the bank's customers extract, and ``retention_days`` have passed since. Leaves keyed hashes of the
    customer id, ID number and mobile (``suppressions``) so that a later batch bringing them back keeps them
    out of marketing.
    """
    if not (reason or "").strip():
        raise DataError(f"purging customer {customer_id} needs a reason", hint="add --reason TEXT; it is audited")
    now = as_utc(now or utcnow())
    end, ids, known = ended(lake, sessions, customer_id)
    refusal = None
    if not known:
        raise NotFoundError(f"customer {customer_id} is in no bank batch and has no consent history: nothing to purge",
                            hint="check the customer number (客户号); a purged customer's number is no longer known")
    if end.on is None:
        refusal = (f"customer {customer_id} has neither withdrawn consent nor left the bank's customers extract: "
                   "personal data is purged only after withdrawal or closure (PIPL Art. 47)",
                   "record the withdrawal first (`lifeloop consent withdraw CUSTOMER --channel all ...`), or wait "
                   "until the bank's extract no longer lists the customer")
    else:
        until = end.on + dt.timedelta(days=retention_days)
        if now.date() < until:
            how = (f"withdrew consent on {end.withdrawn_on}" if end.on == end.withdrawn_on
                   else f"left the bank's customers extract on {end.closed_on}")
            refusal = (f"customer {customer_id} {how}; the retention of {retention_days} days runs until {until} "
                       f"(today is {now.date()}): not purged", f"purge on or after {until}, or change "
                       "rights.purge_after_days in lifeloop.yaml if the bank's retention rule is shorter")
    if refusal is not None:
        with unit_of_work(sessions) as session:
            audit.record(session, actor=actor, action="rights.purge", target_type="customer", target_id=customer_id,
                         reason=reason.strip(), result="refused", details={"why": refusal[0]}, at=now)
        raise DataError(refusal[0], hint=refusal[1])
    digests = {kind: digest(keys, kind, customer_id if kind == "customer_id" else ids.get(kind))
               for kind in SUPPRESSION_KINDS}
    with unit_of_work(sessions) as session:
        request, counts = rights.purge_customer(
            session, customer_id=customer_id, digests=digests, reason=reason, actor=actor, mobile=ids.get("mobile"),
            details={"ended": end.as_dict(), "retention_days": retention_days}, at=now)
        # the lake last, inside the transaction: if a rewrite fails, the ops rows stay and the purge can be re-run
        rewritten = erasure.rewrite_areas(lake, erasure.areas(lake), [customer_id],
                                          note={"kind": "purge", "request": request.id})
        request.details = {**(request.details or {}), "lake": rewritten.as_dict()}
        audit.record(session, actor=actor, action="rights.purge.lake", target_type="customer",
                     target_id=customer_id, details={"request_id": request.id, **rewritten.as_dict()}, at=now)
    return {"customer_id": customer_id, "request_id": request.id, "ops_rows": counts, "lake": rewritten.as_dict(),
            "suppressed": sorted(k for k, v in digests.items() if v is not None),
            "ended": end.as_dict()}


def screen_batch(lake: Lake, sessions: Any, keys: KeyedHash, as_of: dt.date, *, actor: str) -> dict[str, list[str]]:
    """Customers of the batch of ``as_of`` who match a purged person's keyed hashes, recorded as suppressed.

    Returns customer -> the identifiers that matched (customer id, ID number, mobile); none without
    suppressions or without a customers table in the batch.
    """
    import pyarrow.parquet as pq

    path = lake.snapshot_dir(BANK, as_of) / "customers.parquet"
    if not path.exists():
        return {}
    with sessions() as session:
        if not rights.known_digests(session):
            return {}
    names = pq.read_schema(path).names
    rows = lake.read_table(path, columns=[c for c in SUPPRESSION_KINDS if c in names]).to_pylist()
    digests = {r["customer_id"]: {k: digest(keys, k, r.get(k)) for k in SUPPRESSION_KINDS} for r in rows}
    with unit_of_work(sessions) as session:
        return rights.match_suppressed(session, digests=digests, batch_as_of=as_of, actor=actor)


def show(sessions: Any, customer_id: str, *, now: dt.datetime | None = None) -> dict[str, Any]:
    """The customer's rights flags and requests (``lifeloop customers rights``)."""
    with sessions() as session:
        return rights.rights_of(session, customer_id, at=now)
