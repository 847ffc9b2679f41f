"""The simulated bank as a channel: contacts are queued for the bank's next day (``advance``).

``send`` appends the batch to ``<bank>/_inbox/contacts.csv`` with each contact's idempotency key;
control-group customers are queued too (``treated`` false: recorded by the bank, never contacted),
because the simulated bank decides the control group's outcome as well; with ``worklist_due_in_days`` each
contact is also a task in the customer's RM's worklist (the demo's ``rm`` channel: the call happens in the
simulated bank, and the RM sees it in the worklist). :func:`contacts_table` builds
the table ``SimulatedBank.advance`` takes (a resend after a crash is dropped by its key), and
:func:`lifeloop.execution.closed_loop.deliver` advances the bank one day with it and files the inbox away.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lifeloop.execution.channels.base import Capabilities, Message, Result

INBOX = Path("_inbox") / "contacts.csv"
FIELDS = ("key", "as_of", "customer_id", "offer", "channel", "treated")


class SimulatorChannel:
    """Queue contacts (and controls) for the simulated bank in ``bank``."""

    capabilities = Capabilities(dedupes_by_key=True, wants_controls=True)

    def __init__(self, name: str, bank: str | Path, tasks: Any = None):
        self.name = name
        self.bank = Path(bank)
        self.tasks = tasks    # a WorklistChannel: each contact also becomes a task for the customer's RM

    def _append(self, rows: list[dict[str, Any]]) -> None:
        path = self.bank / INBOX
        path.parent.mkdir(parents=True, exist_ok=True)
        new = not path.exists()
        with path.open("a", encoding="utf-8", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=FIELDS)
            if new:
                writer.writeheader()
            writer.writerows(rows)
            fh.flush()

    def send(self, batch: Sequence[Message]) -> list[Result]:
        """Queue treated contacts; each is delivered once the file is written."""
        self._append([_row(m, True) for m in batch])
        if self.tasks is not None:   # the RM's record of the call (a contact without an RM gets none)
            self.tasks.send(batch)
        return [Result.sent(m, provider_ref="simulator") for m in batch]

    def record_controls(self, controls: Sequence[Message]) -> None:
        """Queue control-group customers (not contacted; the bank still decides their outcome)."""
        self._append([_row(m, False) for m in controls])

    def close(self) -> None:
        """Nothing to release."""


def _row(m: Message, treated: bool) -> dict[str, Any]:
    return {"key": m.key, "as_of": m.as_of.isoformat(), "customer_id": m.customer_id, "offer": m.offer or "",
            "channel": m.channel, "treated": "true" if treated else "false"}


def contacts_table(bank: str | Path):
    """The queued contacts as the table ``SimulatedBank.advance`` takes (one row per idempotency key)."""
    import pyarrow as pa

    path = Path(bank) / INBOX
    rows: dict[str, dict[str, Any]] = {}
    if path.exists():
        with path.open(encoding="utf-8", newline="") as fh:
            for row in csv.DictReader(fh):
                rows.setdefault(row["key"], row)  # a resend after a crash has the same key
    ordered = list(rows.values())
    return pa.table({"customer_id": pa.array([r["customer_id"] for r in ordered], pa.string()),
                     "offer": pa.array([r["offer"] for r in ordered], pa.string()),
                     "channel": pa.array([r["channel"] for r in ordered], pa.string()),
                     "treated": pa.array([r["treated"] == "true" for r in ordered], pa.bool_())})
