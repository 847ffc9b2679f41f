"""Questions and feedback to a strategy's owner (营销人员问题反馈与沟通): one thread per question.

A relationship manager (or a branch manager) asks about a strategy — a script that does not fit, a customer
who should not be on the list, an offer that ran out — and head office answers in the same thread; the asker
may follow up. Who may read a thread is decided on the asker's book and branch kept with it (an RM: their own
threads; their branch manager: the branch's; head office: all), by the caller's scope. Every question and
post is on the audit log (never its text, which is encrypted in the table: it may name a customer).
Services take a keyword-only session and never commit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.orm import Session

from lifeloop.errors import DataError, Problem
from lifeloop.store.ops import audit
from lifeloop.store.ops.models import StrategyThread, StrategyThreadPost
from lifeloop.store.ops.types import as_utc, utcnow

MAX_TEXT = 2000
MAX_SUBJECT = 200


def check_text(text: str | None, subject: str | None = None, *, asking: bool = False) -> list[Problem]:
    """What is wrong with a question or a post (empty when it can be kept)."""
    problems = []
    if not (text or "").strip():
        problems.append(Problem("write the question or the reply", field="text"))
    elif len(text or "") > MAX_TEXT:
        problems.append(Problem(f"the text is {len(text or ''):,} characters; at most {MAX_TEXT:,}", field="text"))
    if asking and not (subject or "").strip():
        problems.append(Problem("give the question a subject", field="subject"))
    elif asking and len(subject or "") > MAX_SUBJECT:
        problems.append(Problem(f"the subject is longer than {MAX_SUBJECT} characters", field="subject"))
    return problems


def _refuse(problems: list[Problem]) -> None:
    if problems:
        raise DataError(problems[0].message, problems=problems, hint="nothing was posted; correct it and send again")


def ask(session: Session, *, strategy_id: str, subject: str, text: str, asked_by: str, rm_id: str | None,
        branch_id: str | None, customer_id: str | None = None, now: dt.datetime | None = None) -> StrategyThread:
    """Open a thread with its first post (the question); audited."""
    _refuse(check_text(text, subject, asking=True))
    now = as_utc(now or utcnow())
    thread = StrategyThread(strategy_id=strategy_id, subject=subject.strip(), asked_by=asked_by, rm_id=rm_id,
                            branch_id=branch_id, customer_id=customer_id, status="open", created_at=now,
                            updated_at=now)
    thread.posts.append(StrategyThreadPost(author=asked_by, body=text.strip(), created_at=now))
    session.add(thread)
    session.flush()
    audit.record(session, actor=asked_by, action="thread.ask", target_type="strategy", target_id=strategy_id, at=now,
                 details={"thread": thread.id, "customer_id": customer_id, "rm_id": rm_id, "branch_id": branch_id})
    return thread


def post(session: Session, *, thread: StrategyThread, author: str, text: str, reply: bool,
         now: dt.datetime | None = None) -> StrategyThreadPost:
    """Add a post: a reply from head office (the thread is then ``answered``) or the asker's follow-up (``open``
    again); audited."""
    _refuse(check_text(text))
    now = as_utc(now or utcnow())
    item = StrategyThreadPost(author=author, body=text.strip(), created_at=now)
    thread.posts.append(item)
    thread.status = "answered" if reply else "open"
    thread.updated_at = now
    session.flush()
    audit.record(session, actor=author, action="thread.reply" if reply else "thread.follow_up",
                 target_type="strategy", target_id=thread.strategy_id, at=now,
                 details={"thread": thread.id, "post": item.id})
    return item


def visible(session: Session, *, all_: bool, rm_ids: Iterable[str] = (), branch_ids: Iterable[str] = (),
            strategy_id: str | None = None, limit: int = 200) -> list[StrategyThread]:
    """Threads a reader may see — every one (head office), or those asked from their books or branches — newest
    activity first (of one strategy)."""
    rm_ids, branch_ids = sorted(rm_ids), sorted(branch_ids)
    query = sa.select(StrategyThread)
    if not all_:
        if not rm_ids and not branch_ids:
            return []
        query = query.where(sa.or_(StrategyThread.rm_id.in_(rm_ids), StrategyThread.branch_id.in_(branch_ids)))
    if strategy_id is not None:
        query = query.where(StrategyThread.strategy_id == strategy_id)
    return list(session.scalars(query.order_by(StrategyThread.updated_at.desc(), StrategyThread.id.desc())
                                .limit(limit)))
