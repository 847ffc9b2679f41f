"""The simulated bank as a running system: hidden customer state, the books, and one day's step.

``BankEngine.create`` draws a population; ``step(d)`` advances one day (with contacts, if any);
``save``/``open`` keep the whole state in ``out/_sim`` so that the bank can be stepped forward later.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np

from lifeloop.data.simulator import behaviour as B
from lifeloop.data.simulator import lifecycle as L
from lifeloop.data.simulator import products as P
from lifeloop.data.simulator.ledger import Accounts, Books, Buffer
from lifeloop.data.simulator.population import Population, generate, tier_of
from lifeloop.data.simulator.response import CompiledTruth, Truth
from lifeloop.data.simulator.seasons import Calendar

PENDING = {"day": np.int32, "cust": np.int32, "offer": np.int16, "amount": np.int64, "source": np.int8}
HISTORY = {"day": np.int32, "cust": np.int32, "channel": np.int8}
CONVERSIONS = {"day": np.int32, "cust": np.int32, "offer": np.int16, "amount": np.int64, "source": np.int8}
CHANGES = {"day": np.int32, "cust": np.int32, "before": np.int8, "after": np.int8}
STATES = {"day": np.int32, "cust": np.int32, "stage": np.int8, "tier": np.int8, "payroll": bool}
SOURCES = ("organic", "treated", "control")


class BankEngine:
    """A retail bank whose customers live through hidden lifecycle states and answer contacts."""

    def __init__(self, c: dict[str, np.ndarray], books: Books, rng: np.random.Generator, cal: Calendar,
                 truth: Truth, start: dt.date, day: int):
        self.c = c
        self.books = books
        self.rng = rng
        self.cal = cal
        self.truth_model = truth
        self.truth = CompiledTruth(truth)
        self.start = start
        self.day = day                 # the next day to simulate
        self.pending = {k: np.zeros(0, t) for k, t in PENDING.items()}
        self.history = {k: np.zeros(0, t) for k, t in HISTORY.items()}
        self.suppress = np.full((len(self.truth.offers), len(c["stage"])), -1, np.int32)
        self.conversions = Buffer(CONVERSIONS)
        self.changes = Buffer(CHANGES)
        self.states = Buffer(STATES)
        self.out: Path | None = None

    # ------------------------------------------------------------------ creation
    @classmethod
    def create(cls, *, customers: int, days: int, seed: int, start: dt.date, truth: Truth,
               arrival_share: float | None = None) -> tuple[BankEngine, Population]:
        """Draw a bank of ``customers`` people (some arriving during the ``days`` simulated)."""
        rng = np.random.default_rng(seed)
        share = arrival_share if arrival_share is not None else min(0.3, 0.1 * days / 365)
        pop = generate(rng, customers, start, days, share)
        n = customers
        prospect = rng.random(n) < 0.03
        stage, in_stage = L.initial_stage(rng, -pop.open_day, prospect)
        age0 = (start.toordinal() - pop.birth) / 365.25
        payroll = pop.payroll & (stage != L.S["dormant"]) & ~((stage == L.S["declining"]) & (rng.random(n) < 0.5))
        c: dict[str, np.ndarray] = {
            "stage": stage, "stage_day": -in_stage, "open_day": pop.open_day, "wealth": pop.wealth,
            "income": pop.income, "activity": pop.activity, "digital": pop.digital, "payroll": payroll,
            "salary_code": pop.salary_code, "employer": pop.employer, "pension": (age0 >= 60) & ~payroll,
            "primary": np.full(n, -1, np.int64), "card": np.full(n, -1, np.int64),
            "last_salary": np.full(n, -999, np.int32), "prospect": prospect.copy(),
            "demand_target": np.zeros(n),
        }
        bank = cls(c, Books(Accounts(capacity=max(1024, 4 * n))), rng, Calendar(start, days + 400), truth, start, 0)
        B.drift(bank)
        here = np.flatnonzero((stage >= 0) & (stage != L.S["prospect"]))
        B.initial_holdings(bank, here)
        return bank, pop

    # ------------------------------------------------------------------ one day
    def step(self, contacts: dict[str, np.ndarray] | None = None, *, snapshot_all: bool = False) -> int:
        """Simulate the next day (with the day's contacts); return the day number simulated."""
        d = self.day
        c, books = self.c, self.books
        if d + 45 >= len(self.cal.dates):   # stepping far beyond the first simulation: extend the calendar
            self.cal = Calendar(self.start, d + 400)
        books.acc.cols["changed"][: books.acc.n] = False
        self._arrivals(d)
        self._transitions(d)
        if contacts is not None and len(contacts["cust"]):
            self._contacts(d, contacts)
        self._conversions(d)
        B.income(self, d)
        B.spending(self, d)
        B.repayments(self, d)
        B.maturities(self, d)
        B.outflows(self, d)
        B.interest_and_markets(self, d)
        B.digital(self, d)
        B.drift(self)
        acc = books.acc
        if snapshot_all or self.cal.month_end[d]:
            snap = np.flatnonzero(acc.is_open | (acc.close_day == d))
            here = np.flatnonzero(c["stage"] >= 0)
            self.states.add(day=d, cust=here, stage=c["stage"][here], tier=tier_of(c["wealth"][here]),
                            payroll=c["payroll"][here])
        else:
            snap = np.flatnonzero(acc.changed & ((acc.open_day == d) | (acc.close_day == d)))
        books.snapshot(d, snap)
        self.day = d + 1
        return d

    def _arrivals(self, d: int) -> None:
        c = self.c
        new = np.flatnonzero(c["open_day"] == d)
        if not len(new):
            return
        lead = c["prospect"][new]
        c["stage"][new] = np.where(lead, L.S["prospect"], L.S["onboarding"])
        c["stage_day"][new] = d
        self._open_primary(d, new[~lead])
        # a prospect is known as a lead (registered online, no product yet)
        leads = new[lead]
        self.books.events.add(day=d, cust=leads, second=self.rng.integers(8 * 3600, 22 * 3600, len(leads)), type=3,
                              detail=-1)

    def _open_primary(self, d: int, who: np.ndarray) -> None:
        """Open the debit-card account of new customers with a first deposit moved in."""
        c = self.c
        c["primary"][who] = self.books.acc.open(who, np.full(len(who), P.DEMAND), d, 0)
        first = c["demand_target"][who] * self.rng.uniform(0.4, 1.0, len(who))
        self.books.post(d, c["primary"][who], B.cents(first), True, B.T["transfer"], B.CH["counter"], B.CP["bank"],
                        True)

    def _transitions(self, d: int) -> None:
        c = self.c
        frozen = np.zeros(len(c["stage"]), bool)
        frozen[self.pending["cust"]] = True
        new = L.step(self.rng, c["stage"], c["stage_day"], c["open_day"], d, frozen)
        moved = np.flatnonzero(new != c["stage"])
        if not len(moved):
            return
        before, after = c["stage"][moved], new[moved]
        self.changes.add(day=d, cust=moved, before=before, after=after)
        c["stage"][moved] = after
        c["stage_day"][moved] = d
        # salary stops when a customer starts to leave (their employer pays elsewhere)
        dec = moved[(after == L.S["declining"]) & (self.rng.random(len(moved)) < 0.35)]
        c["payroll"][dec] = False
        c["payroll"][moved[after == L.S["dormant"]]] = False
        # a customer who comes back often brings their salary back (代发 with their old employer)
        back = moved[(after == L.S["won_back"]) & (self.rng.random(len(moved)) < 0.5)]
        c["payroll"][back] = c["employer"][back] >= 0
        joined = moved[(before == L.S["prospect"]) & (after == L.S["onboarding"])]
        c["prospect"][joined] = False
        self._open_primary(d, joined[c["primary"][joined] < 0])
        B.close_customers(self, d, moved[after == L.S["churned"]])

    # ------------------------------------------------------------------ contacts and conversions
    def contact_probabilities(self, cust: np.ndarray, offer: np.ndarray, channel: np.ndarray, treated: np.ndarray,
                              d: int) -> dict[str, np.ndarray]:
        """For contact rows on day ``d``: base and treated probabilities, whether already decided."""
        c, t = self.c, self.truth
        key = cust.astype(np.int64) * 8 + channel
        h = self.history
        recent = h["day"] > d - t.fatigue_window
        hkeys = np.sort(h["cust"][recent].astype(np.int64) * 8 + h["channel"][recent])
        prior = np.searchsorted(hkeys, key, side="right") - np.searchsorted(hkeys, key, side="left")
        # earlier treated rows of the same customer and channel in this batch count too
        tkey = np.where(treated, key, -1)
        order = np.argsort(tkey, kind="stable")
        sk = tkey[order]
        first = np.r_[True, sk[1:] != sk[:-1]]
        rank = np.arange(len(sk)) - np.maximum.accumulate(np.where(first, np.arange(len(sk)), 0))
        within = np.empty_like(rank)
        within[order] = rank
        n_recent = prior + np.where(treated, within + 1, 0)
        stage = c["stage"][cust]
        tier = tier_of(c["wealth"][cust])
        base, p_treated = t.probabilities(offer, channel, stage, tier, n_recent)
        decided = self.suppress[offer, cust] >= d
        # only the first row for a (customer, offer) in a batch decides
        pair = cust.astype(np.int64) * 1024 + offer
        _, first_idx = np.unique(pair, return_index=True)
        dup = np.ones(len(pair), bool)
        dup[first_idx] = False
        decided |= dup
        amount = t.amount(offer, c["wealth"][cust])
        return {"base": base, "treated": p_treated, "decided": decided, "amount": amount}

    def _contacts(self, d: int, k: dict[str, np.ndarray]) -> None:
        cust, offer, channel, treated = k["cust"], k["offer"], k["channel"], k["treated"]
        p = self.contact_probabilities(cust, offer, channel, treated, d)
        prob = np.where(treated, p["treated"], p["base"])
        u = self.rng.random(len(cust))
        win = self.truth.window
        delay = self.rng.integers(0, win, len(cust))
        convert = (u < prob) & ~p["decided"]
        fresh = ~p["decided"]
        self.suppress[offer[fresh], cust[fresh]] = d + win - 1
        src = np.where(treated, 1, 2)[convert]
        add = {"day": d + delay[convert], "cust": cust[convert], "offer": offer[convert],
               "amount": B.cents(p["amount"][convert]), "source": src}
        self.pending = {f: np.concatenate([self.pending[f], add[f].astype(tp)]) for f, tp in PENDING.items()}
        h = self.history
        keep = h["day"] > d - self.truth.fatigue_window
        new = {"day": np.full(treated.sum(), d), "cust": cust[treated], "channel": channel[treated]}
        self.history = {f: np.concatenate([h[f][keep], new[f].astype(tp)]) for f, tp in HISTORY.items()}

    def _conversions(self, d: int) -> None:
        """Apply today's decided conversions and the organic ones (what customers do anyway)."""
        c, t = self.c, self.truth
        due = self.pending["day"] == d
        cust = self.pending["cust"][due]
        offer = self.pending["offer"][due].astype(np.int64)
        amount = self.pending["amount"][due]
        source = self.pending["source"][due]
        self.pending = {f: v[~due] for f, v in self.pending.items()}
        # organic: one draw per customer against the sum of the offers' daily hazards
        stage = c["stage"]
        h = t.organic_hazard(stage, tier_of(c["wealth"]))
        h[(self.suppress >= d).T] = 0
        h[c["primary"] < 0] = 0
        cum = np.cumsum(h, axis=1)
        u = self.rng.random(len(stage))
        who = np.flatnonzero(u < cum[:, -1])
        pick = (u[who][:, None] >= cum[who]).sum(1)
        cust = np.concatenate([cust, who.astype(np.int32)])
        offer = np.concatenate([offer, pick])
        amount = np.concatenate([amount, B.cents(t.amount(pick, c["wealth"][who]))])
        source = np.concatenate([source, np.zeros(len(who), np.int8)])
        if not len(cust):
            return
        self.conversions.add(day=d, cust=cust, offer=offer, amount=amount, source=source)
        # a prospect who buys becomes a customer; a dormant one is won back
        new = cust[c["primary"][cust] < 0]
        new = np.unique(new)
        if len(new):
            c["stage"][new], c["stage_day"][new], c["prospect"][new] = L.S["onboarding"], d, False
            self._open_primary(d, new)
        back = np.unique(cust[c["stage"][cust] == L.S["dormant"]])
        if len(back):
            self.changes.add(day=d, cust=back, before=L.S["dormant"], after=L.S["won_back"])
            c["stage"][back], c["stage_day"][back] = L.S["won_back"], d
        for k in np.unique(offer):
            m = offer == k
            self._convert(d, cust[m], int(k), amount[m])

    def _convert(self, d: int, cust: np.ndarray, k: int, amount: np.ndarray) -> None:
        """What converting to offer ``k`` leaves in the bank's data."""
        c, books, t = self.c, self.books, self.truth
        prim = c["primary"][cust]
        if not t.kind_product[k]:
            books.post(d, prim, amount, True, B.T["transfer"], B.CH["mobile"], B.CP["bank"], True)
            c["wealth"][cust] += amount / 100
            return
        prod = int(t.product[k])
        kind = P.TYPES[prod]
        if kind == "credit_card":
            acc = books.acc.open(cust, np.full(len(cust), prod), d, 0)
            c["card"][cust] = np.where(c["card"][cust] < 0, acc, c["card"][cust])
            return
        if kind == "loan":
            books.acc.open(cust, np.full(len(cust), prod), d, amount, d + P.TERM[prod], amount // 12)
            books.post(d, prim, amount, True, B.T["loan_disbursement"], B.CH["mobile"], B.CP["internal"], True)
            return
        short = np.maximum(amount - books.acc.bal[prim], 0)
        books.post(d, prim, short, True, B.T["transfer"], B.CH["mobile"], B.CP["bank"], True)
        c["wealth"][cust] += short / 100
        channel = np.where(self.rng.random(len(cust)) < 0.7, B.CH["mobile"], B.CH["branch"])
        ttype = B.T["insurance_premium"] if kind == "insurance" else B.T["purchase"]
        books.post(d, prim, amount, False, ttype, channel, B.CP["internal"], True)
        mat = d + P.TERM[prod] if P.TERM[prod] > 0 else np.iinfo(np.int32).max
        books.acc.open(cust, np.full(len(cust), prod), d, amount, mat)

    # ------------------------------------------------------------------ persistence
    def state_arrays(self) -> dict[str, np.ndarray]:
        """Everything needed to continue the simulation, as named arrays."""
        out = {f"c_{k}": v for k, v in self.c.items()}
        out.update({f"a_{k}": v for k, v in self.books.acc.columns().items()})
        out.update({f"p_{k}": v for k, v in self.pending.items()})
        out.update({f"h_{k}": v for k, v in self.history.items()})
        out["suppress"] = self.suppress
        return out

    def meta(self) -> dict[str, Any]:
        """Scalars of the state (JSON): dates, counters and the random generator."""
        return {"start": self.start.isoformat(), "day": self.day, "rng": self.rng.bit_generator.state,
                "calendar_days": self.cal.days}

    @classmethod
    def from_state(cls, arrays: dict[str, np.ndarray], meta: dict[str, Any], truth: Truth) -> BankEngine:
        """Rebuild a bank saved with :meth:`state_arrays` and :meth:`meta`."""
        c = {k[2:]: arrays[k].copy() for k in arrays if k.startswith("c_")}
        acc = Accounts(columns={k[2:]: arrays[k] for k in arrays if k.startswith("a_")})
        rng = np.random.default_rng()
        rng.bit_generator.state = meta["rng"]
        start = dt.date.fromisoformat(meta["start"])
        days = max(meta["calendar_days"], meta["day"] + 400)
        bank = cls(c, Books(acc), rng, Calendar(start, days), truth, start, meta["day"])
        bank.pending = {k: arrays[f"p_{k}"].copy() for k in PENDING}
        bank.history = {k: arrays[f"h_{k}"].copy() for k in HISTORY}
        if arrays["suppress"].shape == bank.suppress.shape:
            bank.suppress = arrays["suppress"].copy()
        return bank

