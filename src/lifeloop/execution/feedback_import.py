"""Feedback import (营销表单导入): ``lifeloop feedback import FILE``.

A CSV from a call centre, the branches or an RM team, one row per contact outcome:

=================  ====================================================================
column             meaning
=================  ====================================================================
contact_id         the contact (outbox id) — or ``contact_key``, its idempotency key
outcome            reached, no_answer, interested, purchased, refused, referral
referred_name      for a referral: the referred person's name (a new lead)
referred_mobile    for a referral: their mobile (optional)
note               free text (optional)
recorded_at        when it happened: ISO date-time; without a zone, the bank's time zone
recorded_by        who recorded it (staff id)
product_id/amount  optional, for a purchase
=================  ====================================================================

All or nothing: every bad row is reported with its line in the file (the header is line 1), its
column and what to do, and then nothing is recorded. Refusals are remembered by the contact policy
(refusal memory reads the feedback table). Re-importing the same file changes nothing: the file's
hash is an idempotency key, and each row's own key (contact, outcome, time, recorder) makes a
corrected or extended file skip the rows already recorded.
"""

from __future__ import annotations

import csv
import datetime as dt
import difflib
import hashlib
import io
import re
from dataclasses import asdict, dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from lifeloop.data.masking import mask_value
from lifeloop.data.readers import header_problems
from lifeloop.errors import DataError, Problem
from lifeloop.store.ops import idempotency
from lifeloop.store.ops.database import unit_of_work
from lifeloop.store.ops.feedback import Outcome, Referral, record_many
from lifeloop.store.ops.models import OUTCOMES, Dispatch

SCOPE = "feedback_import"
COLUMNS = ("contact_id", "contact_key", "outcome", "referred_name", "referred_mobile", "note", "recorded_at",
           "recorded_by", "product_id", "amount")
REQUIRED = ("outcome", "recorded_at", "recorded_by")
MOBILE = re.compile(r"^\+?\d{6,15}$")
LIMIT = 50  # problems listed; the total is always given


@dataclass(frozen=True)
class ImportResult:
    """What an import did (a replayed file returns the first import's result with ``replayed``)."""

    file: str
    rows: int
    recorded: int
    skipped: int
    refusals: int
    referrals: int
    replayed: bool = False


def read_text(path: Path) -> tuple[bytes, str]:
    """The file's bytes and text (UTF-8 with or without BOM; GBK from Excel on Chinese Windows)."""
    data = path.read_bytes()
    for encoding in ("utf-8-sig", "gbk"):
        try:
            return data, data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise DataError(f"{path.name}: cannot read the file as UTF-8 or GBK text", hint="save it as CSV UTF-8")


def parse_time(text: str, timezone: str) -> dt.datetime:
    """An ISO date-time (or date); without a zone it is the bank's local time."""
    from zoneinfo import ZoneInfo

    value = dt.datetime.fromisoformat(text.strip().replace("/", "-"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=ZoneInfo(timezone))
    return value.astimezone(dt.UTC)


def import_feedback(sessions: Any, path: str | Path, *, timezone: str = "Asia/Shanghai",
                    now: dt.datetime | None = None) -> ImportResult:
    """Import a feedback CSV all or nothing; a file imported before is not imported again."""

    path = Path(path)
    data, text = read_text(path)
    file_key = idempotency.content_hash(data)
    name = path.name
    with unit_of_work(sessions) as session:
        seen = idempotency.begin(session, scope=SCOPE, key=file_key, request_hash=file_key, now=now)
        if not seen.new and seen.result is not None:
            return ImportResult(**{**seen.result, "replayed": True})
        reader = csv.DictReader(io.StringIO(text))
        header = list(reader.fieldnames or [])
        rows = list(reader)
        _check_header(name, header)
        parsed, problems = _parse_rows(session, name, rows, timezone)
        if problems:
            bad = len({p.line for p in problems})
            # raising rolls the unit of work back: the file's key is released, so the fixed file can be imported
            raise DataError(f"{name}: {bad:,} of {len(rows):,} rows are invalid; nothing was imported",
                            problems=problems[:LIMIT], total=len(problems),
                            hint="fix the rows listed (lines count the header as line 1) and import the file again")
        outcomes = [Outcome(dispatch_id=p["dispatch_id"], outcome=p["outcome"], occurred_at=p["at"],
                            recorded_by=p["recorded_by"], note=p["note"], product_id=p["product_id"],
                            amount=p["amount"], idempotency_key=p["key"], source_ref=f"{name}:{p['line']}",
                            referral=Referral(p["referred_name"], p["referred_mobile"])
                            if p["outcome"] == "referral" else None)
                    for p in parsed]
        recorded = record_many(session, outcomes=outcomes, source="import", where=name)
        result = ImportResult(file=name, rows=len(rows), recorded=len(recorded), skipped=len(rows) - len(recorded),
                              refusals=sum(f.outcome == "refused" for f in recorded),
                              referrals=sum(f.outcome == "referral" for f in recorded))
        idempotency.finish(session, scope=SCOPE, key=file_key, result=asdict(result))
    return result


def _check_header(name: str, header: list[str]) -> None:
    problems = header_problems(name, header, COLUMNS, REQUIRED)
    if "contact_id" not in header and "contact_key" not in header:
        problems.append(Problem("a contact_id or contact_key column is required", file=name, line=1))
    if problems:
        raise DataError(f"{name}: the header is not a feedback file's; nothing was imported", problems=problems,
                        hint=f"columns are: {', '.join(COLUMNS)}")


def _parse_rows(session: Any, name: str, rows: list[dict[str, Any]], timezone: str
                ) -> tuple[list[dict[str, Any]], list[Problem]]:
    import sqlalchemy as sa


    def cell(row: dict[str, Any], column: str) -> str:
        return (row.get(column) or "").strip()

    ids = {int(cell(r, "contact_id")) for r in rows if cell(r, "contact_id").isdigit()}
    keys = {cell(r, "contact_key") for r in rows if cell(r, "contact_key")}
    found: dict[Any, tuple[int, str]] = {}
    for start in range(0, max(len(ids), len(keys)), 1000):
        query = sa.select(Dispatch.id, Dispatch.idempotency_key, Dispatch.status).where(sa.or_(
            Dispatch.id.in_(sorted(ids)[start:start + 1000]),
            Dispatch.idempotency_key.in_(sorted(keys)[start:start + 1000])))
        for did, key, status in session.execute(query):
            found[did] = found[key] = (did, status)
    parsed, problems = [], []
    lines_by_key: dict[str, int] = {}
    for line, row in enumerate(rows, 2):
        def bad(column: str, message: str, line: int = line) -> None:
            problems.append(Problem(message, file=name, line=line, column=column))

        contact_id, contact_key = cell(row, "contact_id"), cell(row, "contact_key")
        ref: tuple[int, str] | None = None
        if contact_id:
            if not contact_id.isdigit():
                bad("contact_id", f"contact_id {contact_id!r} is not a number; use the id from the export")
            elif (ref := found.get(int(contact_id))) is None:
                bad("contact_id", f"no contact with id {contact_id}; check the id in the export")
        elif contact_key:
            if (ref := found.get(contact_key)) is None:
                bad("contact_key", f"no contact with key {contact_key!r}; copy contact_key from the export")
        else:
            bad("contact_id", "neither contact_id nor contact_key is given; fill one in")
        if ref is not None and ref[1] != "sent":
            what = "a control-group customer, who is never contacted" if ref[1] == "cancelled" else f"status {ref[1]}"
            bad(contact_id and "contact_id" or "contact_key",
                f"contact {ref[0]} was not sent ({what}); feedback goes with a contact that went out")
        outcome = cell(row, "outcome").lower()
        if outcome not in OUTCOMES:
            close = difflib.get_close_matches(outcome, OUTCOMES, n=1)
            bad("outcome", f"unknown outcome {outcome!r}" + (f"; did you mean {close[0]!r}?" if close else "")
                + f" (one of {', '.join(OUTCOMES)})")
        referred_name, referred_mobile = cell(row, "referred_name"), cell(row, "referred_mobile")
        if outcome == "referral" and not referred_name:
            bad("referred_name", "a referral needs the referred person's name")
        if outcome != "referral" and (referred_name or referred_mobile):
            bad("referred_name", f"only a referral names a referred person, not {outcome!r}; clear the cell")
        if referred_mobile and not MOBILE.match(referred_mobile.replace(" ", "").replace("-", "")):
            # the referred person's mobile is personal data: the message masks it (138****1234)
            bad("referred_mobile", f"mobile {mask_value('mobile', referred_mobile)!r} is not a phone number "
                                   "(digits, optional +)")
        at = None
        try:
            at = parse_time(cell(row, "recorded_at"), timezone)
        except ValueError:
            bad("recorded_at", f"recorded_at {cell(row, 'recorded_at')!r} is not a date-time; "
                               "write it like 2024-03-01 14:30")
        recorded_by = cell(row, "recorded_by")
        if not recorded_by:
            bad("recorded_by", "recorded_by is empty; give the staff id of who recorded it")
        amount = None
        if cell(row, "amount"):
            try:
                amount = Decimal(cell(row, "amount").replace(",", ""))
            except InvalidOperation:
                bad("amount", f"amount {cell(row, 'amount')!r} is not a number")
            if outcome != "purchased":
                bad("amount", f"an amount goes with a purchase, not {outcome!r}")
        if ref is None or at is None or outcome not in OUTCOMES:
            continue
        key = "import:" + hashlib.sha256("\x1f".join(
            (str(ref[0]), outcome, at.isoformat(), recorded_by)).encode()).hexdigest()[:40]
        if key in lines_by_key:
            bad("outcome", f"the same outcome for the same contact, time and recorder as line {lines_by_key[key]}; "
                           "delete one of them")
            continue
        lines_by_key[key] = line
        parsed.append(dict(line=line, dispatch_id=ref[0], outcome=outcome, at=at, recorded_by=recorded_by,
                           note=cell(row, "note") or None, product_id=cell(row, "product_id") or None,
                           amount=amount, referred_name=referred_name,
                           referred_mobile=referred_mobile.replace(" ", "").replace("-", "") or None, key=key))
    return parsed, problems
