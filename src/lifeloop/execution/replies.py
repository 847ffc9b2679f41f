"""Inbound replies (短信回复退订): a customer answers an SMS with "TD" / "退订" / "STOP", and it holds at once.

A reply comes as a webhook body (one JSON object: :func:`parse_webhook`, pure) or as a file
(``lifeloop consent replies FILE``: CSV with ``mobile`` or ``customer_id``, ``text``, ``received_at``; or
JSON — one object, a list, or one object per line). A reply whose text is an opt-out word
(``channels.yaml`` ``replies.opt_out_words``; case, full-/half-width, surrounding spaces and punctuation
ignored: "td", "ＴＤ", " 退订。") withdraws marketing consent on the channel it came on (sms), effective
when it was received. Any other text is kept for a person to read (``review``), not applied. A mobile is
mapped to a customer through the bank's customers extract; an unknown mobile is reported and kept
(``unmatched``), never guessed; a mobile several customers share opts out each of them (the phone said
stop). Every reply is kept in ``inbound_replies``; the same reply again changes nothing.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lifeloop.data.masking import mask_value
from lifeloop.data.schema import CONTACT_CHANNELS
from lifeloop.errors import DataError, Problem
from lifeloop.execution.bank_customers import BankCustomers, normalise_mobile
from lifeloop.execution.feedback_import import parse_time, read_text
from lifeloop.store.ops import audit, consent
from lifeloop.store.ops.database import unit_of_work
from lifeloop.store.ops.models import InboundReply
from lifeloop.store.ops.types import as_utc, utcnow

DEFAULT_WORDS = ("TD", "退订", "T", "STOP")
COLUMNS = ("mobile", "customer_id", "text", "received_at", "channel")
LIMIT = 50


@dataclass(frozen=True)
class Reply:
    """One inbound reply: who (mobile or customer), what they wrote, when, on which channel."""

    text: str
    received_at: dt.datetime
    mobile: str | None = None
    customer_id: str | None = None
    channel: str = "sms"
    source_ref: str | None = None


def normalise(text: str) -> str:
    """Width- and case-folded (NFKC, casefold), without surrounding whitespace, punctuation or symbols."""
    folded = unicodedata.normalize("NFKC", text or "").casefold()
    start, end = 0, len(folded)
    while start < end and _ignorable(folded[start]):
        start += 1
    while end > start and _ignorable(folded[end - 1]):
        end -= 1
    return folded[start:end]


def _ignorable(ch: str) -> bool:
    return ch.isspace() or unicodedata.category(ch)[0] in ("P", "S", "Z", "C")


def is_opt_out(text: str, words: Iterable[str] = DEFAULT_WORDS) -> bool:
    """Whether a reply is, as a whole, one of the opt-out words (a sentence that merely contains one is not)."""
    return normalise(text) in {normalise(w) for w in words}


def parse_webhook(body: bytes | str | Mapping[str, Any], *, timezone: str = "Asia/Shanghai") -> Reply:
    """A reply from a webhook body: a JSON object with ``mobile`` or ``customer_id``, ``text``, ``received_at``."""
    if isinstance(body, (bytes, str)):
        try:
            body = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise DataError(f"the reply body is not JSON: {exc}", hint="send one JSON object") from None
    if not isinstance(body, Mapping):
        raise DataError("the reply body is not a JSON object", hint='send {"mobile": ..., "text": ..., '
                                                                     '"received_at": ...}')
    reply, problems = _reply(body, timezone, lambda message, column: Problem(message, field=column))
    if problems:
        raise DataError("the reply cannot be read", problems=problems,
                        hint="fields: mobile or customer_id, text, received_at (ISO), channel (default sms)")
    assert reply is not None
    return reply


def _reply(values: Mapping[str, Any], timezone: str, problem, source_ref: str | None = None
           ) -> tuple[Reply | None, list[Problem]]:
    def cell(name: str) -> str:
        value = values.get(name)
        return "" if value is None else str(value).strip()

    problems = []
    mobile, customer_id = cell("mobile"), cell("customer_id")
    if not mobile and not customer_id:
        problems.append(problem("neither mobile nor customer_id is given", "mobile"))
    if mobile and not 6 <= len(normalise_mobile(mobile)) <= 15:
        problems.append(problem(f"mobile {mask_value('mobile', mobile)} is not a phone number", "mobile"))
    if "text" not in values or values.get("text") is None:
        problems.append(problem("text is missing", "text"))
    channel = (cell("channel") or "sms").lower()
    if channel not in CONTACT_CHANNELS:
        problems.append(problem(f"unknown channel {channel!r} (one of {', '.join(CONTACT_CHANNELS)})", "channel"))
    at = None
    try:
        at = parse_time(cell("received_at"), timezone)
    except ValueError:
        problems.append(problem(f"received_at {cell('received_at')!r} is not a date-time; write it like "
                                "2024-03-01 14:30:05", "received_at"))
    if problems or at is None:
        return None, problems
    return Reply(text=str(values["text"]), received_at=at, mobile=normalise_mobile(mobile) or None,
                 customer_id=customer_id or None, channel=channel, source_ref=source_ref), []


def read_file(path: str | Path, *, timezone: str = "Asia/Shanghai") -> list[Reply]:
    """Every reply of a CSV or JSON file; any unreadable row refuses the whole file, naming file, row and column."""
    path = Path(path)
    _, text = read_text(path)
    name = path.name
    stripped = text.lstrip()
    if path.suffix.lower() in (".json", ".jsonl") or stripped.startswith(("{", "[")):
        records = _json_records(name, stripped)
    else:
        reader = csv.DictReader(io.StringIO(text))
        header = list(reader.fieldnames or [])
        unknown = [c for c in header if c not in COLUMNS]
        missing = [c for c in ("text", "received_at") if c not in header]
        if unknown or missing or not {"mobile", "customer_id"} & set(header):
            problems = [Problem(f"unknown column {c!r}", file=name, line=1, column=c) for c in unknown]
            problems += [Problem(f"required column {c!r} is missing", file=name, line=1, column=c) for c in missing]
            if not {"mobile", "customer_id"} & set(header):
                problems.append(Problem("a mobile or customer_id column is required", file=name, line=1))
            raise DataError(f"{name}: the header is not a replies file's; nothing was recorded", problems=problems,
                            hint=f"columns are: {', '.join(COLUMNS)}")
        records = [(line, row) for line, row in enumerate(reader, 2)]
    replies, problems = [], []
    for line, record in records:
        reply, found = _reply(record, timezone,
                              lambda message, column, line=line: Problem(message, file=name, row=line, column=column),
                              source_ref=f"{name}:{line}")
        problems += found
        if reply is not None:
            replies.append(reply)
    if problems:
        raise DataError(f"{name}: {len({p.row for p in problems}):,} of {len(records):,} replies cannot be read; "
                        "nothing was recorded", problems=problems[:LIMIT], total=len(problems),
                        hint="fix the rows listed (in a CSV the header is row 1) and read the file again")
    return replies


def _json_records(name: str, text: str) -> list[tuple[int, Mapping[str, Any]]]:
    try:
        data = json.loads(text)
        items = data if isinstance(data, list) else [data]
    except json.JSONDecodeError:
        try:   # one object per line
            items = [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError as exc:
            raise DataError(f"{name}: not JSON (line {exc.lineno}): {exc.msg}", hint="one object, a list, or one "
                                                                                   "object per line") from None
    bad = [i for i, item in enumerate(items, 1) if not isinstance(item, Mapping)]
    if bad:
        raise DataError(f"{name}: reply {bad[0]} is not a JSON object; nothing was recorded",
                        problems=[Problem("not a JSON object", file=name, row=i) for i in bad[:LIMIT]])
    return list(enumerate(items, 1))


@dataclass
class Recorded:
    """What recording replies did; ``unmatched`` names the replies no customer was found for (mobiles masked)."""

    replies: int = 0
    opted_out: int = 0
    review: int = 0
    skipped: int = 0
    unmatched: list[str] = field(default_factory=list)


def record(sessions: Any, customers: BankCustomers, replies: Sequence[Reply], *, actor: str,
           words: Iterable[str] = DEFAULT_WORDS, source: str = "file", now: dt.datetime | None = None) -> Recorded:
    """Apply the opt-outs at once, keep the rest for review, report unknown mobiles; all in one transaction."""
    now = as_utc(now or utcnow())
    words = tuple(words)
    done = Recorded(replies=len(replies))
    with unit_of_work(sessions) as session:
        for reply in replies:
            who = _customers(reply, customers)
            if not who:
                where = reply.source_ref or "webhook"
                ident = (f"mobile {mask_value('mobile', reply.mobile)}" if reply.mobile
                         else f"customer {reply.customer_id}")
                if _keep(session, reply, None, "unmatched", f"no customer with this {ident.split()[0]}", source, now):
                    done.unmatched.append(f"{where}: {ident}")
                else:
                    done.skipped += 1
                continue
            opt_out = is_opt_out(reply.text, words)
            for customer_id in who:
                change_id = None
                if opt_out and not _seen(session, reply, customer_id):
                    # effective when the customer said it (never later than now: a fast clock must not delay it)
                    change = consent.record_change(
                        session, customer_id=customer_id, purpose="marketing", channel=reply.channel, granted=False,
                        effective_at=min(as_utc(reply.received_at), now), source=f"{reply.channel}_reply",
                        recorded_by=actor, reason=f"replied {reply.text.strip()!r}")
                    audit.record(session, actor=actor, action="consent.withdraw", target_type="customer",
                                 target_id=customer_id, reason=f"{reply.channel} reply {reply.text.strip()!r}", at=now,
                                 details={"channel": reply.channel, "purpose": "marketing", "change_id": change.id,
                                          "source": reply.source_ref or source})
                    change_id = change.id
                kept = _keep(session, reply, customer_id, "opted_out" if opt_out else "review",
                             None if opt_out else "not an opt-out word: kept for a person to read", source, now,
                             change_id)
                if not kept:
                    done.skipped += 1
                elif opt_out:
                    done.opted_out += 1
                else:
                    done.review += 1
    return done


def _customers(reply: Reply, customers: BankCustomers) -> list[str]:
    if reply.customer_id:
        return [reply.customer_id] if customers.known(reply.customer_id) else []
    return customers.by_mobile(reply.mobile or "")


def _key(reply: Reply, customer_id: str | None) -> str:
    text = "\x1f".join((reply.channel, reply.mobile or "", reply.customer_id or "", customer_id or "",
                        reply.text, as_utc(reply.received_at).isoformat()))
    return hashlib.sha256(text.encode()).hexdigest()


def _seen(session: Any, reply: Reply, customer_id: str | None) -> bool:
    import sqlalchemy as sa

    return session.scalar(sa.select(InboundReply.id).where(InboundReply.idempotency_key == _key(reply, customer_id))
                          ) is not None


def _keep(session: Any, reply: Reply, customer_id: str | None, outcome: str, note: str | None, source: str,
          now: dt.datetime, change_id: int | None = None) -> bool:
    if _seen(session, reply, customer_id):
        return False
    session.add(InboundReply(channel=reply.channel, customer_id=customer_id, mobile=reply.mobile, text=reply.text,
                             received_at=as_utc(reply.received_at), recorded_at=now, outcome=outcome, note=note,
                             consent_change_id=change_id, source=source, source_ref=reply.source_ref,
                             idempotency_key=_key(reply, customer_id)))
    session.flush()
    return True
