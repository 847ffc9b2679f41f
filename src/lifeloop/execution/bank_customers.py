"""The bank's customers as the consent commands need them: who exists, whose mobile this is, what they consented to.

Read from the lake's newest bank batch (the customers and consent extracts, state tables). A workspace
with no batch yet knows no customers: then nothing is checked against it, and a mobile maps to no one.
"""

from __future__ import annotations

import datetime as dt
import re
from functools import cached_property
from typing import Any

from lifeloop.store.lake import BANK

NOT_DIGITS = re.compile(r"\D")


def normalise_mobile(text: str) -> str:
    """Digits only, without a leading +86 / 0086 / 86 country code (a mainland mobile has 11 digits)."""
    digits = NOT_DIGITS.sub("", text or "")
    for prefix in ("0086", "86"):
        if digits.startswith(prefix) and len(digits) == len(prefix) + 11:
            return digits[len(prefix):]
    return digits


class BankCustomers:
    """The newest customers and consent extracts of a lake, read once and only the columns needed."""

    def __init__(self, lake: Any, as_of: dt.date | None = None):
        dates = lake.dates(BANK)
        self._lake = lake
        self.as_of = as_of or (dates[-1] if dates else None)
        self._files = lake.bank_files(self.as_of) if self.as_of else {}

    @property
    def available(self) -> bool:
        """Whether the lake has a customers extract to check against."""
        return "customers" in self._files

    @cached_property
    def _customers(self) -> dict[str, str]:
        import pyarrow.parquet as pq

        if not self.available:
            return {}
        path = self._files["customers"][0]
        cols = [c for c in ("customer_id", "mobile") if c in pq.read_schema(path).names]
        table = self._lake.read_table(path, columns=cols).to_pylist()   # the mobile is C2: decrypted here
        return {r["customer_id"]: normalise_mobile(r.get("mobile") or "") for r in table}

    def known(self, customer_id: str) -> bool:
        """Whether the customer is in the bank's extract (always True when there is no extract to ask)."""
        return not self.available or customer_id in self._customers

    @cached_property
    def _by_mobile(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for customer_id, mobile in self._customers.items():
            if mobile:
                out.setdefault(mobile, []).append(customer_id)
        return {m: sorted(ids) for m, ids in out.items()}

    def by_mobile(self, mobile: str) -> list[str]:
        """The customers whose mobile this is (none, one, or several sharing a phone)."""
        return self._by_mobile.get(normalise_mobile(mobile), [])

    def baseline(self, customer_id: str) -> dict[tuple[str, str], bool]:
        """The customer's consent in the bank's extract: (purpose, channel) -> granted."""
        import pyarrow.compute as pc

        if "consent" not in self._files:
            return {}
        table = self._lake.read_table(self._files["consent"][0], columns=["customer_id", "purpose", "channel",
                                                                           "granted"])
        table = table.filter(pc.equal(table["customer_id"], customer_id))
        return {(r["purpose"], r["channel"]): bool(r["granted"]) for r in table.to_pylist()}

    @cached_property
    def owners(self) -> dict[str, tuple[str | None, str | None]]:
        """customer_id -> (rm_id, branch_id): whose book and which branch each customer is in now (access scopes)."""
        import pyarrow.parquet as pq

        if not self.available:
            return {}
        path = self._files["customers"][0]
        names = pq.read_schema(path).names
        cols = ["customer_id"] + [c for c in ("rm_id", "branch_id") if c in names]
        return {r["customer_id"]: (r.get("rm_id"), r.get("branch_id")) for r in pq.read_table(path, columns=cols)
                .to_pylist()}

    @cached_property
    def rm_branches(self) -> dict[str, str | None]:
        """rm_id -> branch_id from the relationship-managers extract (which branch manager an RM answers to)."""
        import pyarrow.parquet as pq

        if "relationship_managers" not in self._files:
            return {}
        table = pq.read_table(self._files["relationship_managers"][0], columns=["rm_id", "branch_id"])
        return {r["rm_id"]: r["branch_id"] for r in table.to_pylist()}
