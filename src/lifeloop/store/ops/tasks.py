"""Relationship-manager tasks (客户经理任务): the RM's own customers to call or meet, with a script.

An RM sees and acts on their own tasks only: every function that reads or changes tasks for an RM
takes ``rm_id`` and treats another RM's task as not found (it must not even confirm it exists).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.orm import Session

from lifeloop.errors import DataError, NotFoundError
from lifeloop.store.ops.models import Task
from lifeloop.store.ops.types import as_utc, utcnow

OPEN = ("open", "in_progress")
# which status may follow which (done, cancelled and expired are final)
NEXT = {"open": ("in_progress", "done", "cancelled", "expired"), "in_progress": ("done", "cancelled", "expired")}


def create_task(session: Session, *, rm_id: str, customer_id: str, title: str, due_on: dt.date,
                priority: int = 0, script: str | None = None, strategy_id: str | None = None,
                wave: str | None = None, dispatch_id: int | None = None) -> Task:
    """Give an RM a task for one of their customers (from an ``rm`` dispatch, or by hand)."""
    task = Task(rm_id=rm_id, customer_id=customer_id, title=title, due_on=due_on, priority=priority, script=script,
                strategy_id=strategy_id, wave=wave, dispatch_id=dispatch_id)
    session.add(task)
    session.flush()
    return task


# what a worklist shows of a task: read as columns, not as Task objects (500 rows a page; the note and the
# timestamps are not decrypted or converted for a list that does not show them)
LISTED = (Task.id, Task.rm_id, Task.customer_id, Task.strategy_id, Task.wave, Task.title, Task.priority, Task.due_on,
          Task.status, Task.script)


def worklist(session: Session, *, rm_id: str, on: dt.date | None = None, customer_id: str | None = None
             ) -> list[sa.Row]:
    """An RM's open tasks due on or before ``on`` (default: all), most important first, then oldest due; only those
    for ``customer_id`` when given (the customer page's marketing forms). Rows of the ``LISTED`` columns (``id``,
    ``rm_id``, ``customer_id`` ... ``script``), read in one query."""
    query = sa.select(*LISTED).where(Task.rm_id == rm_id, Task.status.in_(OPEN))
    if customer_id is not None:
        query = query.where(Task.customer_id == customer_id)
    if on is not None:
        query = query.where(Task.due_on <= on)
    return list(session.execute(query.order_by(Task.priority.desc(), Task.due_on, Task.id)))


def rm_ids(session: Session) -> list[str]:
    """Every relationship manager who has ever had a task (to tell an unknown RM id from an empty worklist)."""
    return list(session.scalars(sa.select(Task.rm_id).distinct().order_by(Task.rm_id)))


def own_task(session: Session, *, rm_ids: Sequence[str], task_id: int) -> Task | None:
    """The task if it is in one of these RMs' books, else None (another RM's task is as unknown as a missing one)."""
    task = session.get(Task, task_id)
    return task if task is not None and task.rm_id in set(rm_ids) else None


def _own(session: Session, rm_id: str, task_id: int) -> Task:
    task = session.get(Task, task_id)
    if task is None or task.rm_id != rm_id:
        raise NotFoundError(f"task {task_id} is not in {rm_id}'s worklist")
    return task


def _move(task: Task, status: str) -> None:
    if status not in NEXT.get(task.status, ()):
        raise DataError(f"task {task.id} is {task.status}; it cannot become {status}")
    task.status = status


def start_task(session: Session, *, rm_id: str, task_id: int, at: dt.datetime | None = None) -> Task:
    """The RM has started working on the task."""
    task = _own(session, rm_id, task_id)
    _move(task, "in_progress")
    task.started_at = as_utc(at or utcnow())
    session.flush()
    return task


def complete_task(session: Session, *, rm_id: str, task_id: int, note: str | None = None,
                  at: dt.datetime | None = None) -> Task:
    """The RM has done the task (the outcome itself is recorded as feedback on the contact)."""
    task = _own(session, rm_id, task_id)
    _move(task, "done")
    task.completed_at = as_utc(at or utcnow())
    task.note = note
    session.flush()
    return task


def cancel_task(session: Session, *, rm_id: str, task_id: int, note: str) -> Task:
    """Drop a task that no longer makes sense (the customer left, the offer ended); the note says why."""
    task = _own(session, rm_id, task_id)
    _move(task, "cancelled")
    task.note = note
    session.flush()
    return task


def expire_overdue(session: Session, *, today: dt.date, grace_days: int = 0) -> int:
    """Close open tasks whose due date passed more than ``grace_days`` ago; returns how many."""
    done = session.execute(
        sa.update(Task).where(Task.status.in_(OPEN), Task.due_on < today - dt.timedelta(days=grace_days))
        .values(status="expired", updated_at=utcnow()).execution_options(synchronize_session="fetch"))
    return done.rowcount


def open_by_rm(session: Session) -> dict[str, int]:
    """Open tasks (open or in progress) per relationship manager."""
    query = sa.select(Task.rm_id, sa.func.count()).where(Task.status.in_(OPEN)).group_by(Task.rm_id)
    return {rm: int(n) for rm, n in session.execute(query)}
