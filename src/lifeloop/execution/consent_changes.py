"""Consent changes by people (授权变更): withdraw or grant at once, show, and import a file of changes.

``lifeloop consent withdraw|grant CUSTOMER --channel C --purpose P --source S --reason R`` records a change
effective at once (the next contact the outbox claims reads it), audited in the operator's name.
``lifeloop consent show CUSTOMER`` gives every purpose x channel permission now, with why, and the history.
``lifeloop consent import FILE`` records a CSV of changes all or nothing; re-importing it changes nothing.

CSV columns (UTF-8 with or without BOM, or GBK):

=============  =====================================================================
customer_id    the customer (客户号), known to the bank's customers extract
channel        sms, push, email, call, rm, wechat, branch, or ``all`` (every channel)
purpose        marketing, service or risk
granted        true / false (also yes / no, 1 / 0, grant / withdraw, 是 / 否)
effective_at   ISO date-time; without a zone, the bank's local time
source         where the change came from (customer, rm, branch, complaint, ...)
reason         optional free text
=============  =====================================================================
"""

from __future__ import annotations

import csv
import datetime as dt
import difflib
import io
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from lifeloop.data.readers import header_problems
from lifeloop.data.schema import CONSENT_PURPOSES, CONTACT_CHANNELS
from lifeloop.errors import DataError, NotFoundError, Problem
from lifeloop.execution.bank_customers import BankCustomers
from lifeloop.execution.feedback_import import parse_time, read_text
from lifeloop.store.ops import audit, consent, idempotency
from lifeloop.store.ops.database import unit_of_work
from lifeloop.store.ops.models import ALL_CHANNELS, ConsentChange, DoNotDisturb, InboundReply
from lifeloop.store.ops.types import as_utc, utcnow

SCOPE = "consent_import"
COLUMNS = ("customer_id", "channel", "purpose", "granted", "effective_at", "source", "reason")
REQUIRED = COLUMNS[:-1]
TRUE = {"true", "yes", "y", "1", "grant", "granted", "是", "同意"}
FALSE = {"false", "no", "n", "0", "withdraw", "withdrawn", "否", "退订", "拒绝"}
LIMIT = 50
SOURCE_MAX = 32  # consent_changes.source


def channel_code(text: str) -> str:
    """``all`` (or ``*``) means every channel; otherwise the channel's own name."""
    value = (text or "").strip().lower()
    return ALL_CHANNELS if value in ("all", ALL_CHANNELS) else value


def _check(customer_id: str, channel: str, purpose: str, customers: BankCustomers) -> list[Problem]:
    problems = []
    if channel not in (*CONTACT_CHANNELS, ALL_CHANNELS):
        close = difflib.get_close_matches(channel, CONTACT_CHANNELS, n=1)
        problems.append(Problem(f"unknown channel {channel!r}" + (f"; did you mean {close[0]!r}?" if close else "")
                                + f" (one of {', '.join(CONTACT_CHANNELS)}, or all)", column="channel"))
    if purpose not in CONSENT_PURPOSES:
        close = difflib.get_close_matches(purpose, CONSENT_PURPOSES, n=1)
        problems.append(Problem(f"unknown purpose {purpose!r}" + (f"; did you mean {close[0]!r}?" if close else "")
                                + f" (one of {', '.join(CONSENT_PURPOSES)})", column="purpose"))
    if not customer_id:
        problems.append(Problem("customer_id is empty", column="customer_id"))
    elif not customers.known(customer_id):
        problems.append(Problem(f"customer {customer_id} is not in the bank's customers extract of {customers.as_of}",
                                column="customer_id"))
    return problems


def change(sessions: Any, customers: BankCustomers, *, customer_id: str, granted: bool, channel: str, purpose: str,
           source: str, reason: str, actor: str, now: dt.datetime | None = None) -> dict[str, Any]:
    """Record one consent change effective now, and audit it in ``actor``'s name."""
    now = as_utc(now or utcnow())
    channel = channel_code(channel)
    problems = _check(customer_id, channel, purpose, customers)
    if not (source or "").strip():
        problems.append(Problem("say where the change came from (customer, rm, branch, complaint ...)", field="source"))
    elif len(source.strip()) > SOURCE_MAX:
        problems.append(Problem(f"source is longer than {SOURCE_MAX} characters; put details in the reason",
                                field="source"))
    if not (reason or "").strip():
        problems.append(Problem("a consent change needs a reason; it is audited", field="reason"))
    verb = "grant" if granted else "withdraw"
    if problems:
        raise DataError(f"cannot {verb} consent for {customer_id}", problems=problems,
                        hint="lifeloop consent " + verb + " CUSTOMER --channel sms|...|all --purpose marketing "
                             "--source customer --reason TEXT")
    with unit_of_work(sessions) as session:
        row = consent.record_change(session, customer_id=customer_id, purpose=purpose, channel=channel,
                                    granted=granted, effective_at=now, source=source.strip(), recorded_by=actor,
                                    reason=reason.strip())
        audit.record(session, actor=actor, action=f"consent.{verb}", target_type="customer", target_id=customer_id,
                     reason=reason.strip(), at=now, details={"channel": channel, "purpose": purpose,
                                                             "source": source.strip(), "change_id": row.id})
        return {"id": row.id, "customer_id": customer_id, "channel": channel, "purpose": purpose, "granted": granted,
                "effective_at": now, "source": row.source, "recorded_by": actor}


def show(sessions: Any, customers: BankCustomers, customer_id: str, *, at: dt.datetime | None = None
         ) -> dict[str, Any]:
    """Every purpose x channel permission at ``at`` (default now), with why, and the customer's history."""
    import sqlalchemy as sa

    at = as_utc(at or utcnow())
    baseline = customers.baseline(customer_id)
    with unit_of_work(sessions) as session:
        changes = consent.consent_history(session, customer_id=customer_id)
        dnd = list(session.scalars(sa.select(DoNotDisturb).where(DoNotDisturb.customer_id == customer_id)
                                   .order_by(DoNotDisturb.starts_at, DoNotDisturb.id)))
        replies = list(session.scalars(sa.select(InboundReply).where(InboundReply.customer_id == customer_id)
                                       .order_by(InboundReply.received_at, InboundReply.id)))
        if not customers.known(customer_id) and not changes and not dnd:
            raise NotFoundError(f"customer {customer_id} is not in the bank's customers extract of {customers.as_of}",
                                hint="check the customer number (客户号)")
        permissions = []
        for purpose in CONSENT_PURPOSES:
            for channel in CONTACT_CHANNELS:
                p = consent.decide(channel=channel, purpose=purpose, at=at, baseline=baseline.get((purpose, channel)),
                                   changes=changes, do_not_disturb=dnd)
                permissions.append({"purpose": purpose, "channel": channel, "allowed": p.allowed, "reason": p.reason})
        return {
            "customer_id": customer_id, "at": at, "permissions": permissions,
            "changes": [{"effective_at": c.effective_at, "purpose": c.purpose,
                         "channel": "all" if c.channel == ALL_CHANNELS else c.channel, "granted": c.granted,
                         "source": c.source, "recorded_by": c.recorded_by, "reason": c.reason} for c in changes],
            "do_not_disturb": [{"channel": d.channel or "all", "reason": d.reason, "starts_at": d.starts_at,
                                "expires_at": d.expires_at, "lifted_at": d.lifted_at} for d in dnd],
            "replies": [{"received_at": r.received_at, "text": r.text, "outcome": r.outcome, "note": r.note}
                        for r in replies],
        }


@dataclass(frozen=True)
class ImportResult:
    """What an import did (a replayed file returns the first import's result, marked ``replayed``)."""

    file: str
    rows: int
    recorded: int
    skipped: int
    withdrawals: int
    replayed: bool = False


def import_changes(sessions: Any, customers: BankCustomers, path: str | Path, *, actor: str,
                   timezone: str = "Asia/Shanghai", now: dt.datetime | None = None) -> ImportResult:
    """Import a CSV of consent changes all or nothing; the same file again changes nothing."""
    path = Path(path)
    data, text = read_text(path)
    name = path.name
    file_key = idempotency.content_hash(data)
    now = as_utc(now or utcnow())
    with unit_of_work(sessions) as session:
        seen = idempotency.begin(session, scope=SCOPE, key=file_key, request_hash=file_key, now=now)
        if not seen.new and seen.result is not None:
            return ImportResult(**{**seen.result, "replayed": True})
        reader = csv.DictReader(io.StringIO(text))
        _check_header(name, list(reader.fieldnames or []))
        rows = list(reader)
        parsed, problems = _parse(name, rows, customers, timezone)
        if problems:
            bad = len({p.line for p in problems})
            raise DataError(f"{name}: {bad:,} of {len(rows):,} rows are invalid; nothing was imported",
                            problems=problems[:LIMIT], total=len(problems),
                            hint="fix the rows listed (the header is line 1) and import the file again")
        recorded = 0
        on_record = _on_record(session, sorted({p["customer_id"] for p in parsed}))
        for p in parsed:
            if _identity(p) in on_record:   # a change already on record (an overlapping file) is not doubled
                continue
            change = consent.record_change(session, customer_id=p["customer_id"], purpose=p["purpose"],
                                           channel=p["channel"], granted=p["granted"], effective_at=p["effective_at"],
                                           source=p["source"], recorded_by=actor,
                                           reason=p["reason"] or f"imported from {name}:{p['line']}")
            # each change on the customer's own audit trail, like a change made one at a time
            audit.record(session, actor=actor, action=f"consent.{'grant' if p['granted'] else 'withdraw'}",
                         target_type="customer", target_id=p["customer_id"], reason=change.reason, at=now,
                         details={"channel": p["channel"], "purpose": p["purpose"], "change_id": change.id,
                                  "source": p["source"], "file": name, "line": p["line"]})
            recorded += 1
        result = ImportResult(file=name, rows=len(rows), recorded=recorded, skipped=len(parsed) - recorded,
                              withdrawals=sum(not p["granted"] for p in parsed))
        audit.record(session, actor=actor, action="consent.import", target_type="file", target_id=name,
                     reason=f"{recorded:,} consent changes imported", details={**asdict(result), "sha256": file_key},
                     at=now)
        idempotency.finish(session, scope=SCOPE, key=file_key, result=asdict(result))
    return result


def _check_header(name: str, header: list[str]) -> None:
    problems = header_problems(name, header, COLUMNS, REQUIRED)
    if problems:
        raise DataError(f"{name}: the header is not a consent-changes file's; nothing was imported",
                        problems=problems, hint=f"columns are: {', '.join(COLUMNS)}")


def _parse(name: str, rows: list[dict[str, Any]], customers: BankCustomers, timezone: str
           ) -> tuple[list[dict[str, Any]], list[Problem]]:
    parsed, problems = [], []
    seen: dict[tuple[Any, ...], int] = {}
    for line, row in enumerate(rows, 2):
        def cell(column: str, row: dict[str, Any] = row) -> str:
            return (row.get(column) or "").strip()

        here = [Problem(p.message, file=name, line=line, column=p.column)
                for p in _check(cell("customer_id"), channel_code(cell("channel")), cell("purpose").lower(), customers)]
        granted_text = cell("granted").lower()
        if granted_text not in TRUE | FALSE:
            here.append(Problem(f"granted {cell('granted')!r} is neither true nor false", file=name, line=line,
                                column="granted"))
        at = None
        try:
            at = parse_time(cell("effective_at"), timezone)
        except ValueError:
            here.append(Problem(f"effective_at {cell('effective_at')!r} is not a date-time; write it like "
                                "2024-03-01 14:30", file=name, line=line, column="effective_at"))
        if not cell("source"):
            here.append(Problem("source is empty; say where the change came from", file=name, line=line,
                                column="source"))
        elif len(cell("source")) > SOURCE_MAX:
            here.append(Problem(f"source is longer than {SOURCE_MAX} characters; put details in the reason",
                                file=name, line=line, column="source"))
        if here:
            problems += here
            continue
        item = dict(line=line, customer_id=cell("customer_id"), channel=channel_code(cell("channel")),
                    purpose=cell("purpose").lower(), granted=granted_text in TRUE, effective_at=at,
                    source=cell("source"), reason=cell("reason") or None)
        key = (item["customer_id"], item["channel"], item["purpose"], item["effective_at"])
        if key in seen:
            problems.append(Problem(f"the same customer, channel, purpose and time as line {seen[key]}; "
                                    "delete one of them", file=name, line=line, column="effective_at"))
            continue
        seen[key] = line
        parsed.append(item)
    return parsed, problems


def _identity(p: dict[str, Any]) -> tuple[Any, ...]:
    return (p["customer_id"], p["purpose"], p["channel"], p["granted"], as_utc(p["effective_at"]), p["source"])


def _on_record(session: Any, customer_ids: list[str]) -> set[tuple[Any, ...]]:
    import sqlalchemy as sa

    out: set[tuple[Any, ...]] = set()
    for start in range(0, len(customer_ids), 1000):
        query = sa.select(ConsentChange).where(ConsentChange.customer_id.in_(customer_ids[start:start + 1000]))
        out |= {_identity({"customer_id": c.customer_id, "purpose": c.purpose, "channel": c.channel,
                           "granted": c.granted, "effective_at": c.effective_at, "source": c.source})
                for c in session.scalars(query)}
    return out
