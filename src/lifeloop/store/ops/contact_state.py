"""The state the send-time gate reads for a few customers at once: consent changes, do-not-disturb, refusals.

Read right before their contacts go out (lifeloop.execution.gate), in one short transaction per chunk.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from lifeloop.store.ops.consent import active_do_not_disturb
from lifeloop.store.ops.models import ConsentChange, Dispatch, Feedback
from lifeloop.store.ops.types import as_utc


def read(session: Session, *, customer_ids: Sequence[str], at: dt.datetime, refusals_since: dt.datetime | None
         ) -> tuple[dict[str, list[Any]], dict[str, list[Any]], dict[str, list[tuple[str, dt.datetime]]]]:
    """Per customer: consent changes effective by ``at``, do-not-disturb entries in force at ``at``, and refusals
    (channel, when) recorded as feedback after ``refusals_since`` up to ``at`` (none read when it is None)."""
    at = as_utc(at)
    ids = sorted(set(customer_ids))
    changes: dict[str, list[Any]] = {}
    dnd: dict[str, list[Any]] = {}
    refusals: dict[str, list[tuple[str, dt.datetime]]] = {}
    for start in range(0, len(ids), 1000):
        part = ids[start:start + 1000]
        for change in session.scalars(sa.select(ConsentChange).where(ConsentChange.customer_id.in_(part),
                                                                     ConsentChange.effective_at <= at)):
            changes.setdefault(change.customer_id, []).append(change)
        for entry in active_do_not_disturb(session, at=at, customer_ids=part):
            dnd.setdefault(entry.customer_id, []).append(entry)
        if refusals_since is not None:
            for who, channel, when in session.execute(
                    sa.select(Feedback.customer_id, Feedback.channel, Feedback.occurred_at)
                    .where(Feedback.customer_id.in_(part), Feedback.outcome == "refused",
                           Feedback.occurred_at > as_utc(refusals_since), Feedback.occurred_at <= at)):
                refusals.setdefault(who, []).append((channel, when))
    return changes, dnd, refusals


def still_held(session: Session, *, claims: dict[int, str]) -> set[int]:
    """The outbox items among ``claims`` (id -> claim token) that are still claimed under that token.

    A claim whose lease ran out may have been taken by another worker: its contact must not be sent from here.
    """
    held: set[int] = set()
    ids = sorted(claims)
    for start in range(0, len(ids), 1000):
        for item_id, token in session.execute(
                sa.select(Dispatch.id, Dispatch.claim_token)
                .where(Dispatch.id.in_(ids[start:start + 1000]), Dispatch.status == "claimed")):
            if token == claims[item_id]:
                held.add(item_id)
    return held
