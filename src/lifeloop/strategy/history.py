"""What the plan needs to know about the past: contacts, consent, do-not-disturb, refusals.

The ops database (``lifeloop.store.ops``) is the system of record for these. The plan receives them
as plain Arrow tables through a :class:`HistorySource`, so the decision logic never touches a
database:

* ``contacts``  — customer_id, strategy, wave, channel, contact_date, treated, outcome
  (outcome: responded / interested / purchased / referral count as a response; refused stops the
  journey; anything else, or empty, is no response);
* ``consent``   — customer_id, purpose, channel, granted (the latest value);
* ``dnd``       — customer_id, channel (empty: every channel), start_date, end_date (empty: open);
* ``refusals``  — customer_id, channel, refused_on;
* ``rights``    — customer_id, flag: ``no_personalisation`` (opted out of personalised marketing, PIPL Art. 24)
  or ``suppressed`` (a purged person who came back in a later batch: no marketing), in force on D.

:class:`LakeHistory` is the adapter used until the ops database is wired: consent from the bank's
consent table, contacts from the plan's own earlier lists (lake/lists), no DND and no refusals.
:class:`InMemoryHistory` is the fake for tests.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import pyarrow as pa

    from lifeloop.store.lake import Lake

RESPONDED = ("responded", "interested", "purchased", "referral")
REFUSED = "refused"


def schemas() -> dict[str, pa.Schema]:
    """The Arrow schema of each history table."""
    import pyarrow as pa

    s, d = pa.string(), pa.date32()
    return {
        "contacts": pa.schema([("customer_id", s), ("strategy", s), ("wave", s), ("channel", s),
                               ("contact_date", d), ("treated", pa.bool_()), ("outcome", s)]),
        "consent": pa.schema([("customer_id", s), ("purpose", s), ("channel", s), ("granted", pa.bool_())]),
        "dnd": pa.schema([("customer_id", s), ("channel", s), ("start_date", d), ("end_date", d)]),
        "refusals": pa.schema([("customer_id", s), ("channel", s), ("refused_on", d)]),
        "rights": pa.schema([("customer_id", s), ("flag", s)]),
    }


@dataclass
class History:
    """The history tables (Arrow), already limited to what the plan may look at (``rights``: none by default)."""

    contacts: pa.Table
    consent: pa.Table
    dnd: pa.Table
    refusals: pa.Table
    rights: pa.Table | None = None

    def flagged(self, flag: str) -> set[str]:
        """Customers with a rights flag in force on D."""
        if self.rights is None or not self.rights.num_rows:
            return set()
        return {c for c, f in zip(self.rights["customer_id"].to_pylist(), self.rights["flag"].to_pylist(),
                                  strict=True) if f == flag}

    @classmethod
    def empty(cls) -> History:
        """No contacts, no consent rows, no DND, no refusals."""
        return cls(**{k: v.empty_table() for k, v in schemas().items()})

    @classmethod
    def from_rows(cls, contacts=(), consent=(), dnd=(), refusals=(), rights=()) -> History:
        """Build from lists of dicts (tests, small imports)."""
        import pyarrow as pa

        s = schemas()
        return cls(pa.Table.from_pylist(list(contacts), s["contacts"]),
                   pa.Table.from_pylist(list(consent), s["consent"]),
                   pa.Table.from_pylist(list(dnd), s["dnd"]), pa.Table.from_pylist(list(refusals), s["refusals"]),
                   pa.Table.from_pylist(list(rights), s["rights"]))


class HistorySource(Protocol):
    """Anything that can hand the plan its history as of a date (ops database, lake, a fake)."""

    def load(self, as_of: dt.date, lookback_days: int) -> History:
        """History strictly before ``as_of`` (contacts) and valid on it (consent, DND), as Arrow."""
        ...


class InMemoryHistory:
    """A fake source over fixed tables (tests): filters contacts to the look-back window."""

    def __init__(self, history: History):
        self.history = history

    def load(self, as_of: dt.date, lookback_days: int) -> History:
        """The fixed history, contacts limited to [as_of - lookback, as_of)."""
        return History(_window(self.history.contacts, as_of, lookback_days), self.history.consent,
                       self.history.dnd, self.history.refusals, self.history.rights)


def _window(contacts: pa.Table, as_of: dt.date, lookback_days: int) -> pa.Table:
    import pyarrow.compute as pc

    start = as_of - dt.timedelta(days=lookback_days)
    col = contacts["contact_date"]
    return contacts.filter(pc.and_(pc.greater_equal(col, start), pc.less(col, as_of)))


class LakeHistory:
    """History from the lake until the ops database is connected (see docs/strategies.md)."""

    def __init__(self, lake: Lake):
        self.lake = lake

    def load(self, as_of: dt.date, lookback_days: int) -> History:
        """Earlier lists as contacts (treated = status contact), the bank's consent table, no DND/refusals."""
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        s = schemas()
        start = as_of - dt.timedelta(days=lookback_days)
        parts = []
        for day in self.lake.dates("lists"):
            if start <= day < as_of:
                path = self.lake.snapshot_dir("lists", day) / "lists.parquet"
                t = pq.read_table(path, columns=["customer_id", "strategy", "wave", "channel", "status"])
                t = t.filter(pc.is_in(t["status"], pa.array(["contact", "control"])))
                parts.append(pa.table({
                    "customer_id": t["customer_id"], "strategy": t["strategy"], "wave": t["wave"],
                    "channel": t["channel"], "contact_date": pa.array([day] * t.num_rows, pa.date32()),
                    "treated": pc.equal(t["status"], "contact"),
                    "outcome": pa.nulls(t.num_rows, pa.string())}, schema=s["contacts"]))
        contacts = pa.concat_tables(parts) if parts else s["contacts"].empty_table()
        consent = s["consent"].empty_table()
        files = self.lake.bank_files(as_of).get("consent")
        if files:
            # consent is a state table: the newest batch on or before D holds the truth
            consent = pq.read_table(files[-1],
                                    columns=["customer_id", "purpose", "channel", "granted"]).cast(s["consent"])
        return History(contacts, consent, s["dnd"].empty_table(), s["refusals"].empty_table())
