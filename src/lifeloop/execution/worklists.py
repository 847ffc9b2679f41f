"""Relationship-manager worklists (客户经理工作台): an RM's own customers to contact, with the script.

An RM only ever gets their own book: tasks are read for that RM alone (``tasks.worklist``), and when
the lake is at hand each task's customer is checked against the bank's current customers extract —
a customer who has moved to another RM since the task was made drops out of this RM's list (and is
counted, so nothing disappears silently). Personal fields are masked for the viewer ``Context.worklist``
chooses: the RM (and their branch manager) as the ``rm`` role may see them, the RM's own customers unmasked
except the ID number; head office masked.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from lifeloop.data.masking import Policy, Role, mask_row
from lifeloop.data.masking import role as get_role
from lifeloop.errors import NotFoundError, did_you_mean
from lifeloop.execution.channels.files import write_table
from lifeloop.store import customer_index
from lifeloop.store.lake import BANK
from lifeloop.store.ops.database import unit_of_work
from lifeloop.store.ops.tasks import rm_ids
from lifeloop.store.ops.tasks import worklist as open_tasks
from lifeloop.store.paths import inside, safe_part

COLUMNS = ("task_id", "customer_id", "name", "mobile", "strategy", "wave", "title", "priority", "due_on", "status",
           "script")

def current_owners(lake: Any, as_of: dt.date | None = None, rm_id: str | None = None) -> dict[str, dict[str, Any]]:
    """customer_id -> {rm_id, name, mobile} from the bank's customers extract as of a date (default: latest).

    With ``rm_id``: at least that RM's customers (from the customer index when there is a usable one: a few row
    groups instead of every customer's name and mobile decrypted), so a lookup of anyone else may miss."""
    import pyarrow.parquet as pq


    if as_of is None:
        dates = lake.dates(BANK)
        if not dates:
            return {}
        as_of = dates[-1]
    files = lake.bank_files(as_of).get("customers")
    if not files:
        return {}
    names = customer_index.of_file("columns", files[0], lambda: pq.read_schema(files[0]).names)
    cols = [c for c in ("customer_id", "rm_id", "name", "mobile") if c in names]
    if rm_id is not None:
        book = customer_index.book_rows(lake, as_of, rm_id, cols)
        if book is not None:
            return {r["customer_id"]: r for r in book.to_pylist()}
    # name and mobile are C2: the lake decrypts them (lifeloop.store.lake_crypto)
    return {r["customer_id"]: r for r in lake.read_table(files[0], columns=cols).to_pylist()}


def known_rms(lake: Any, as_of: dt.date | None = None) -> list[str]:
    """Relationship-manager ids of the bank's extract as of a date (default: latest); empty without one."""
    import pyarrow.parquet as pq

    dates = lake.dates(BANK) if lake is not None else []
    as_of = as_of or (dates[-1] if dates else None)
    files = lake.bank_files(as_of).get("relationship_managers") if as_of else None
    if not files:
        return []
    ids = customer_index.of_file("rm_ids", files[0],
                                 lambda: pq.read_table(files[0], columns=["rm_id"])["rm_id"].to_pylist())
    return list(ids)


def worklist(sessions: Any, rm_id: str, *, lake: Any = None, as_of: dt.date | None = None,
             on: dt.date | None = None, viewer: Role | None = None,
             known: list[str] | None = None, policy: Policy | None = None,
             customer_id: str | None = None) -> list[dict[str, Any]]:
    """The RM's open tasks (due by ``on``), most important first, only customers still in their book.

    An RM id neither in the bank's relationship-manager table nor in any task is refused with a "did you
    mean" (a lower-case ``rm00002`` included), rather than shown as an empty worklist; ``known`` (the RMs a
    scoped reader may see, decided by ``Context.worklist``) narrows both. Personal fields are masked for
    ``viewer`` (default: the ``rm`` role).
    """

    with unit_of_work(sessions) as session:
        every = set(known_rms(lake, as_of)) | set(rm_ids(session))
        known = every if known is None else every & set(known)
        if rm_id not in known:
            raise NotFoundError(f"no relationship manager {rm_id!r}{did_you_mean(rm_id, sorted(known))}",
                                hint="RM ids are case-sensitive, as in the bank's relationship_managers extract"
                                     if known else "ingest the bank's extracts first: `lifeloop ingest FOLDER`")
        tasks = open_tasks(session, rm_id=rm_id, on=on, customer_id=customer_id)
        items = [dict(task_id=t.id, rm_id=t.rm_id, customer_id=t.customer_id, strategy=t.strategy_id or "",
                      wave=t.wave or "", title=t.title, priority=t.priority, due_on=t.due_on, status=t.status,
                      script=t.script or "") for t in tasks]
    owners = current_owners(lake, as_of, rm_id) if lake is not None else None
    viewer = viewer or get_role("rm", policy)  # the masking policy in force (config/masking.yaml)
    rows = []
    for item in items:
        if item.pop("rm_id") != rm_id:
            continue  # never: the query is by RM; kept so a future query change cannot leak another book
        if owners is not None:
            owner = owners.get(item["customer_id"])
            if owner is None or owner.get("rm_id") != rm_id:
                continue  # moved to another RM (or left the bank) since the task was made
            personal, _ = mask_row("customers", {"name": owner.get("name"), "mobile": owner.get("mobile")}, viewer)
        else:
            personal = {"name": None, "mobile": None}
        rows.append({**item, "name": personal.get("name"), "mobile": personal.get("mobile")})
    return rows


def export_worklist(rows: list[dict[str, Any]], path: str | Path, *, rm_id: str | None = None,
                    on: dt.date | None = None) -> Path:
    """Write a worklist as CSV or Excel (by the file's extension), atomically.

    ``path`` is the file the operator named, or an existing folder: the file is then
    ``worklist-<rm_id>-<date>.csv`` inside it, named from sanitised parts (an RM id never becomes a path).
    """

    path = Path(path)
    if path.is_dir():
        stamp = (on or dt.date.today()).isoformat()
        path = inside(path, f"worklist-{safe_part(rm_id or 'rm')}-{stamp}.csv")
    fmt = "xlsx" if path.suffix.lower() == ".xlsx" else "csv"
    return write_table([{c: r.get(c) for c in COLUMNS} for r in rows], COLUMNS, path, fmt)
