"""File exports for people who contact customers: CSV or Excel, personal data masked for the recipient.

A call centre or a branch receives one file per claimed batch, in ``<folder>/<channel>/<as_of>/``.
Folder and file names are built from sanitised parts and resolved inside ``<folder>``
(:mod:`lifeloop.store.paths`): an RM id such as ``../../x`` names a folder, it never leaves the folder.
Every personal field goes through :mod:`lifeloop.data.masking` for the recipient's role; a role that
sees personal data only on request (admin, compliance) is refused: an export is never unmasked by
configuration. With the ``rm`` role the batch is split into one file per relationship manager, so an
RM's file holds only their own customers. Files are written to a temporary name and renamed, so a
reader never sees half a file. A batch re-sent after a crash can appear in a second file: each row
carries the contact's idempotency key for the recipient to drop the repeat.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lifeloop.data.masking import AccessError, Policy, mask_row
from lifeloop.data.masking import role as get_role
from lifeloop.execution.channels.base import Capabilities, Message, Result
from lifeloop.store.paths import inside, safe_part

COLUMNS = ("contact_key", "as_of", "customer_id", "name", "mobile", "rm_id", "strategy", "wave", "offer",
           "priority", "script")
PERSONAL = ("name", "mobile")


def export_rows(batch: Sequence[Message], role_name: str, policy: Policy | None = None) -> list[dict[str, Any]]:
    """The file's rows for a batch, personal fields masked for ``role_name``, most important first."""
    viewer = get_role(role_name, policy)
    rows = []
    for m in sorted(batch, key=lambda m: (-m.priority, m.customer_id, m.dispatch_id)):
        personal = {c: m.customer.get(c) for c in PERSONAL}
        masked, _ = mask_row("customers", personal, viewer)
        rows.append({"contact_key": m.key, "as_of": m.as_of.isoformat(), "customer_id": m.customer_id,
                     "name": masked.get("name"), "mobile": masked.get("mobile"), "rm_id": m.rm_id or "",
                     "strategy": m.strategy_id, "wave": m.wave, "offer": m.offer or "", "priority": m.priority,
                     "script": m.script})
    return rows


def write_rows(rows: list[dict[str, Any]], path: Path, fmt: str) -> Path:
    """Write export rows as CSV or Excel, atomically."""
    return write_table(rows, COLUMNS, path, fmt)


def write_table(rows: list[dict[str, Any]], columns: Sequence[str], path: Path, fmt: str,
                sheet: str = "contacts") -> Path:
    """Write rows as CSV (UTF-8 with BOM, so Excel shows Chinese) or Excel, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    if fmt == "csv":
        with tmp.open("w", encoding="utf-8-sig", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(columns))
            writer.writeheader()
            writer.writerows(rows)
    else:
        from openpyxl import Workbook

        book = Workbook()
        page = book.active
        page.title = sheet
        page.append(list(columns))
        for row in rows:
            page.append([_cell(row[c]) for c in columns])
        book.save(tmp)
    os.replace(tmp, path)
    return path


class FileChannel:
    """Write each batch to a CSV or Excel file for a call centre or branches."""

    capabilities = Capabilities(whole_batch=True, masks_personal_data=True)

    def __init__(self, name: str, folder: str | Path, *, format: str = "csv", recipient_role: str = "analyst",
                 policy: Policy | None = None):
        self.name = name
        self.folder = Path(folder)
        self.format = format
        self.policy = policy
        viewer = get_role(recipient_role, policy)
        if viewer.needs_reason:
            raise AccessError(f"file channel {name}: recipient role {viewer.name} sees personal data unmasked only "
                              "on request, with a reason; an export is never unmasked by configuration",
                              hint="set recipient_role to analyst (masked) or rm (each RM their own customers) in "
                                   "config/channels.yaml")
        if viewer.scope == "branch":
            raise AccessError(f"file channel {name}: recipient role {viewer.name} reads one branch's customers, but "
                              "an export is not split by branch",
                              hint="set recipient_role to rm (one file per relationship manager) or analyst (masked)")
        self.role = viewer.name
        self.written: list[Path] = []

    def send(self, batch: Sequence[Message]) -> list[Result]:
        """Write the batch (one file, or one per RM for the ``rm`` role); every message is then delivered."""
        if not batch:
            return []
        groups: dict[str | None, list[Message]] = {}
        for m in batch:
            # an RM may only receive their own customers: one file each; no RM, no file for an RM
            groups.setdefault(m.rm_id if self.role == "rm" else None, []).append(m)
        results: list[Result] = []
        for owner, messages in sorted(groups.items(), key=lambda kv: kv[0] or ""):
            if self.role == "rm" and owner is None:
                results.extend(Result.failed(m, "no relationship manager to send an RM file to", retryable=False)
                               for m in messages)
                continue
            ids = sorted(m.dispatch_id for m in messages)
            day = messages[0].as_of.isoformat()
            # the RM id comes from bank data: a folder named after it, never a path (docs/security.md)
            name = safe_part(self.name)
            folders = [name, day] + ([safe_part(owner)] if owner else [])
            path = inside(self.folder, *folders, f"{name}-{day}-{ids[0]}-{ids[-1]}.{safe_part(self.format)}")
            self.written.append(write_rows(export_rows(messages, self.role, self.policy), path, self.format))
            results.extend(Result.sent(m, provider_ref=path.name) for m in messages)
        return results

    def close(self) -> None:
        """Nothing to release."""


def _cell(value: Any) -> Any:
    # openpyxl writes dates and numbers natively; anything else as text
    return value if value is None or isinstance(value, (str, int, float, dt.date)) else str(value)
