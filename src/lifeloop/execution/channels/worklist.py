"""Relationship-manager worklists as a channel: each ``rm`` contact becomes a task for the customer's RM.

A task is created once per contact (the tasks table allows one task per dispatch), so a batch
re-sent after a crash adds nothing. A contact without an RM cannot become a task: it fails for good,
with that reason, rather than landing in somebody else's worklist.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from lifeloop.execution.channels.base import Capabilities, Message, Result
from lifeloop.store.ops.database import unit_of_work
from lifeloop.store.ops.models import Task
from lifeloop.store.ops.tasks import create_task


class WorklistChannel:
    """Create RM tasks (with the rendered script and the list's priority) in the operations database."""

    capabilities = Capabilities(dedupes_by_key=True)

    def __init__(self, name: str, sessions: Any, *, due_in_days: int = 3):
        self.name = name
        self.sessions = sessions
        self.due_in_days = due_in_days

    def send(self, batch: Sequence[Message]) -> list[Result]:
        """One task per message for its RM (an existing task for the same contact is kept)."""
        import sqlalchemy as sa


        results: list[Result] = []
        with unit_of_work(self.sessions) as session:
            ids = [m.dispatch_id for m in batch]
            existing = dict(session.execute(sa.select(Task.dispatch_id, Task.id)
                                            .where(Task.dispatch_id.in_(ids))).all())
            for m in batch:
                if not m.rm_id:
                    results.append(Result.failed(m, "the customer has no relationship manager", retryable=False))
                    continue
                if m.dispatch_id not in existing:
                    task = create_task(session, rm_id=m.rm_id, customer_id=m.customer_id,
                                       title=f"{m.strategy_id} / {m.wave}" + (f": {m.offer}" if m.offer else ""),
                                       due_on=m.as_of + dt.timedelta(days=self.due_in_days), priority=m.priority,
                                       script=m.script, strategy_id=m.strategy_id, wave=m.wave,
                                       dispatch_id=m.dispatch_id)
                    existing[m.dispatch_id] = task.id
                results.append(Result.sent(m, provider_ref=f"task:{existing[m.dispatch_id]}"))
        return results

    def close(self) -> None:
        """Nothing to release."""
