"""The bank's books: accounts (growable NumPy columns) and the day's postings, snapshots and events.

Money is held in integer cents so that balances, ``balance_after`` and the extracts agree exactly.
"""

from __future__ import annotations

import numpy as np

from lifeloop.data.simulator import products as P

NEVER = np.iinfo(np.int32).max
# codes of the canonical transaction columns (index into these tuples)
TXN_TYPES = ("salary", "pension", "transfer", "cash", "card_payment", "interest", "fee", "loan_payment",
             "loan_disbursement", "purchase", "redemption", "insurance_premium", "household_payment",
             "maturity", "other")
CHANNELS = ("branch", "atm", "mobile", "online", "pos", "counter", "phone", "system", "other")
COUNTERPARTIES = ("employer", "individual", "merchant", "bank", "government", "internal", "other")
T = {n: i for i, n in enumerate(TXN_TYPES)}
CH = {n: i for i, n in enumerate(CHANNELS)}
CP = {n: i for i, n in enumerate(COUNTERPARTIES)}
ACCOUNT_FIELDS = {"cust": np.int32, "prod": np.int16, "bal": np.int64, "open_day": np.int32,
                  "maturity": np.int32, "is_open": bool, "close_day": np.int32, "installment": np.int64,
                  "changed": bool}
TXN_FIELDS = {"day": np.int32, "acc": np.int64, "cust": np.int32, "amount": np.int64, "credit": bool,
              "type": np.int8, "channel": np.int8, "cp": np.int8, "initiated": bool, "after": np.int64}
EVENT_FIELDS = {"day": np.int32, "cust": np.int32, "second": np.int32, "type": np.int8, "detail": np.int16}
SNAP_FIELDS = {"day": np.int32, "acc": np.int64, "bal": np.int64, "is_open": bool}
EVENT_TYPES = ("app_login", "page_view", "complaint", "lead")
EVENT_CHANNELS = ("mobile", "mobile", "call_centre", "online")   # per event type


class Accounts:
    """Every account ever opened; index = account number (stable per seed)."""

    def __init__(self, capacity: int = 1024, columns: dict[str, np.ndarray] | None = None):
        if columns is not None:
            self.n = len(columns["cust"])
            self.cols = {k: np.asarray(columns[k]).astype(t) for k, t in ACCOUNT_FIELDS.items()}
            return
        self.n = 0
        self.cols = {k: np.zeros(capacity, t) for k, t in ACCOUNT_FIELDS.items()}

    def __getattr__(self, name: str) -> np.ndarray:
        cols = self.__dict__.get("cols")
        if cols is None or name not in cols:
            raise AttributeError(name)
        return cols[name][: self.n]

    def open(self, cust: np.ndarray, prod: np.ndarray, day: np.ndarray | int, bal: np.ndarray | int = 0,
             maturity: np.ndarray | int = NEVER, installment: np.ndarray | int = 0) -> np.ndarray:
        """Open accounts; return their numbers."""
        k = len(cust)
        need = self.n + k
        if need > len(self.cols["cust"]):
            cap = max(need, 2 * len(self.cols["cust"]))
            for name, arr in self.cols.items():
                grown = np.zeros(cap, arr.dtype)
                grown[: self.n] = arr[: self.n]
                self.cols[name] = grown
        s = slice(self.n, need)
        c = self.cols
        c["cust"][s], c["prod"][s], c["open_day"][s], c["bal"][s] = cust, prod, day, bal
        c["maturity"][s], c["installment"][s], c["is_open"][s], c["close_day"][s] = maturity, installment, True, NEVER
        c["changed"][s] = True
        self.n = need
        return np.arange(s.start, s.stop, dtype=np.int64)

    def close(self, acc: np.ndarray, day: int) -> None:
        """Close accounts (balance must already be zero)."""
        self.cols["is_open"][acc] = False
        self.cols["close_day"][acc] = day
        self.cols["changed"][acc] = True

    def columns(self) -> dict[str, np.ndarray]:
        """The used part of every column (for saving)."""
        return {k: v[: self.n] for k, v in self.cols.items()}


class Buffer:
    """Chunks of rows of one kind (transactions, events, snapshots), concatenated on demand."""

    def __init__(self, fields: dict[str, type]):
        self.fields = fields
        self.chunks: list[dict[str, np.ndarray]] = []

    def add(self, **cols: np.ndarray | int | bool) -> None:
        """Append rows (scalars are broadcast to the length of the array columns)."""
        n = max((len(v) for v in cols.values() if isinstance(v, np.ndarray)), default=0)
        if n == 0:
            return
        self.chunks.append({k: np.broadcast_to(np.asarray(cols[k]), (n,)).astype(t) for k, t in self.fields.items()})

    def __len__(self) -> int:
        return sum(len(c["day"]) for c in self.chunks)

    def concat(self) -> dict[str, np.ndarray]:
        """All rows so far, one array per field."""
        if not self.chunks:
            return {k: np.zeros(0, t) for k, t in self.fields.items()}
        return {k: np.concatenate([c[k] for c in self.chunks]) for k in self.fields}


class Books:
    """Accounts plus the buffers of what happened; ``post`` books transactions with running balances."""

    def __init__(self, accounts: Accounts):
        self.acc = accounts
        self.txns = Buffer(TXN_FIELDS)
        self.events = Buffer(EVENT_FIELDS)
        self.snaps = Buffer(SNAP_FIELDS)

    def post(self, day: int, acc: np.ndarray, amount: np.ndarray, credit: np.ndarray | bool, ttype: int | np.ndarray,
             channel: int | np.ndarray, cp: int | np.ndarray, initiated: bool | np.ndarray,
             record: bool = True) -> None:
        """Book transactions (amounts in cents, > 0) on accounts, in order; record balance after each."""
        acc = np.asarray(acc, np.int64)
        amount = np.asarray(amount, np.int64)
        keep = amount > 0
        if not keep.all():
            acc, amount = acc[keep], amount[keep]
            credit, ttype, channel, cp, initiated = (v[keep] if isinstance(v, np.ndarray) else v
                                                      for v in (credit, ttype, channel, cp, initiated))
        if not len(acc):
            return
        liability = P.IS_LIABILITY[self.acc.prod[acc]]
        # credits raise an asset balance and lower an outstanding debt
        signed = np.where(np.asarray(credit) != liability, amount, -amount)
        bal = self.acc.cols["bal"]
        order = np.argsort(acc, kind="stable")
        a, s = acc[order], signed[order]
        cs = np.cumsum(s)
        first = np.r_[True, a[1:] != a[:-1]]
        start = np.maximum.accumulate(np.where(first, np.arange(len(a)), 0))
        after_sorted = bal[a] + cs - (cs[start] - s[start])
        after = np.empty_like(after_sorted)
        after[order] = after_sorted
        np.add.at(bal, acc, signed)
        self.acc.cols["changed"][acc] = True
        if record:
            self.txns.add(day=day, acc=acc, cust=self.acc.cust[acc], amount=amount, credit=credit, type=ttype,
                          channel=channel, cp=cp, initiated=initiated, after=after)

    def snapshot(self, day: int, acc: np.ndarray) -> None:
        """Record the balance and status of accounts on ``day`` (holdings snapshot)."""
        acc = np.asarray(acc, np.int64)
        self.snaps.add(day=day, acc=acc, bal=self.acc.bal[acc], is_open=self.acc.is_open[acc])
