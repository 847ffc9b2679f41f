"""Property tests of the dispatch gate (投资者适当性 at dispatch): whatever the lists say, nothing unsuitable goes out.

Random customers (risk level C1-C5 or none, assessment and expiry dates around the day, ages around
65), random products (R1-R5 funds and wealth, an unrated deposit, an unrated wealth product) and
random list rows: what the plan produces (treated contacts, controls, dropped rows) and what only a
hand-edited list holds (a control row set to contact, a dropped row set back to contact, a group
wiped out, a wrong ``suitability`` claim, products the catalogue does not have). The lists go
through the real gate (``execution.suitability_gate.suitable_only``); the last property takes them on
through the outbox in the order ``execution.dispatch.dispatch`` does (``suitable_only``,
``enqueue_lists``, ``record_unsuitable``, ``drain``) on a SQLite operations database in a temporary
folder, with channels that record what they were asked to send.

The oracle is written independently of suitability.py: an assessment counts when it has a level and
its expiry (else assessment date + 1 year) is after D; then Cn covers R1..Rn, otherwise R1 only; an
unrated investment product or an unknown product the row claims is a product covers nobody; the
bank's extra rule (``over_70_no_r4``) refuses R4+ to customers aged 70 or more.
"""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import SimpleNamespace

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

import lifeloop
from lifeloop.execution.channels.base import Capabilities, Result
from lifeloop.execution.dispatch import drain, enqueue_lists
from lifeloop.execution.suitability_gate import record_unsuitable, suitable_only
from lifeloop.strategy.plan import output_schema
from tests.ops_fixtures import with_keys

D = dt.date(2024, 6, 30)
CUSTOMERS = ("C1", "C2", "C3", "C4", "C5")
GHOST = "C404"                                   # on the list, not in the bank's customer table
# product -> (type, risk level)
PRODUCTS = {"F1": ("fund", "R1"), "F2": ("fund", "R2"), "W3": ("wealth", "R3"), "W4": ("wealth", "R4"),
            "F5": ("fund", "R5"), "TD": ("time_deposit", None), "WX": ("wealth", None)}
OFFERS = (*PRODUCTS, "BIRTHDAY_CARE", "GONE", None)  # GONE: a product id the catalogue does not have
CHANNELS = ("sms", "push", "rm", "call")
EXTRA_RULES = """
suitability:
  extra_rules:
    - {name: elderly_high_risk, min_age: 65, min_product_level: R4}
    - {name: over_70_no_r4, min_age: 70, min_product_level: R4, action: drop}
"""
# (group, status, dropped_by): what the plan writes, then what only a hand edit gives
PLANNED = [("treated", "contact", None), ("control", "control", None), ("treated", "dropped", "consent"),
           ("treated", "dropped", "suitability"), ("control", "dropped", "dnd")]
EDITED = [("control", "contact", None), ("treated", "contact", "suitability"),
          ("treated", "contact", "cap_overall_day"),
          (None, "contact", None), ("treated", "control", None), ("control", "contact", "consent")]
near = st.integers(-400, 400).map(lambda k: D + dt.timedelta(days=k))
edge = st.integers(-3, 3).map(lambda k: D + dt.timedelta(days=k))   # expiries on and around the day


# ---------------------------------------------------------------------------------------------- oracle
def covers(c: dict | None) -> int:
    """The highest product level the customer may be offered on D."""
    if c is None or c["risk_level"] is None:
        return 1
    ends, made = c["risk_expires_on"], c["risk_assessed_on"]
    if ends is None and made is not None:
        ends = dt.date(made.year + 1, 2, 28) if (made.month, made.day) == (2, 29) else made.replace(year=made.year + 1)
    if ends is None or ends <= D:
        return 1
    return int(c["risk_level"][1])


def age(c: dict | None) -> int | None:
    born = None if c is None else c["birth_date"]
    if born is None:
        return None
    return D.year - born.year - ((D.month, D.day) < (born.month, born.day))


def may_receive(customers: dict[str, dict], customer_id: str, offer: str | None, claimed: bool) -> bool:
    """Whether the offer may go to the customer on D (claimed: the row says it is a product offer)."""
    if offer not in PRODUCTS:
        return not (claimed and offer is not None)   # a code is no product; an unknown product id is refused
    kind, risk = PRODUCTS[offer]
    if risk is None:
        return kind == "time_deposit"
    c = customers.get(customer_id)
    years = age(c)
    if years is not None and years >= 70 and int(risk[1]) >= 4:
        return False
    return int(risk[1]) <= covers(c)


# ---------------------------------------------------------------------------------------------- worlds
born = st.tuples(st.integers(63, 73), st.integers(-2, 2)).map(   # ages around 65 and 70, birthdays around D
    lambda yd: dt.date(D.year - yd[0], D.month, D.day) + dt.timedelta(days=yd[1]))


@st.composite
def customers(draw):
    out = []
    for c in CUSTOMERS:
        out.append(dict(customer_id=c, risk_level=draw(st.sampled_from([None, "C1", "C2", "C3", "C4", "C5", "C5"])),
                        risk_assessed_on=draw(st.one_of(st.none(), near)),
                        risk_expires_on=draw(st.one_of(edge, near, st.none())),
                        birth_date=draw(born) if draw(st.integers(0, 4)) else None))
    return out


def customer(cid: str, level: str | None, expires: dt.date | None, born: dt.date | None = None) -> dict:
    return dict(customer_id=cid, risk_level=level, risk_assessed_on=None, risk_expires_on=expires, birth_date=born)


def row(customer_id: str, offer: str, wave: str, *, group: str | None = "treated", status: str = "contact",
        dropped_by: str | None = None, suitability: str | None = "suitable") -> dict:
    """One list row with the plan's columns (a contact by SMS unless told otherwise)."""
    return dict(as_of=D, customer_id=customer_id, strategy="s0", wave=wave, group=group, cell=None, status=status,
                channel="sms", send_at=None, purpose="marketing", script_id=None, script_key=None, offer=offer,
                priority=50, expected_value=None, cost=None, holdout_draw=0.5, dropped_by=dropped_by, detail=None,
                reason="edited", rm_id="RM1", suitability=suitability)


# the boundaries, always tried: an assessment expiring on D itself, and a C5 customer turning 70 on D
BOUNDARIES = ([customer("C1", "C3", D), customer("C2", "C5", D + dt.timedelta(days=90), D.replace(year=D.year - 70)),
               customer("C3", "C5", D + dt.timedelta(days=1), D.replace(year=D.year - 70) + dt.timedelta(days=1))],
              [row("C1", "W3", "w0"), row("C1", "F1", "w1"), row("C2", "W4", "w2"), row("C2", "W3", "w3"),
               row("C3", "F5", "w4")])


@st.composite
def list_rows(draw):
    rows = []
    for i in range(draw(st.integers(1, 14))):
        group, status, dropped_by = draw(st.sampled_from(PLANNED + EDITED))
        offer = draw(st.sampled_from(OFFERS))
        r = row(draw(st.sampled_from(CUSTOMERS + (GHOST,))), offer, f"w{i}", group=group, status=status,
                dropped_by=dropped_by,
                suitability=draw(st.sampled_from([None, "suitable", "not_subject", "enhanced_sales"]))
                if offer in PRODUCTS or offer == "GONE" else None)
        r.update(strategy=f"s{draw(st.integers(0, 2))}", purpose=draw(st.sampled_from(["marketing", "service"])),
                 channel=draw(st.sampled_from(CHANNELS)) if status != "dropped" or draw(st.booleans()) else None)
        rows.append(r)
    return rows


# ---------------------------------------------------------------------------------------------- harness
@dataclass
class Recorder:
    """A channel that records what it was given to send (and says every message was delivered)."""

    name: str
    sent: list = field(default_factory=list)
    capabilities: Capabilities = field(default_factory=Capabilities)

    def send(self, batch):
        self.sent.extend(batch)
        return [Result.sent(m) for m in batch]

    def record_controls(self, messages):
        pass

    def close(self):
        pass


POLICY = (Path(lifeloop.__file__).parent / "templates" / "bank" / "config" / "contact_policy.yaml").read_text(
    encoding="utf-8")


@pytest.fixture(scope="module")
def bank(tmp_path_factory):
    """The bank's contact policy with a stricter extra rule, and a migrated empty operations database."""
    from lifeloop.store.ops import open_ops

    folder = tmp_path_factory.mktemp("gate")
    (folder / "contact_policy.yaml").write_text(POLICY + EXTRA_RULES, encoding="utf-8")
    open_ops(f"sqlite:///{folder / 'template.db'}").kw["bind"].dispose()
    return folder


def _parquet(table: pa.Table) -> pa.Buffer:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return sink.getvalue()


PRODUCT_FILE = _parquet(pa.table({"product_id": list(PRODUCTS), "name": list(PRODUCTS),
                                  "product_type": [t for t, _ in PRODUCTS.values()],
                                  "risk_level": pa.array([r for _, r in PRODUCTS.values()], pa.string())}))


@cache
def _load_config(folder: Path):
    """``ctx.load_config`` over a folder, each file read once (the policy is the same for every example)."""
    from lifeloop.config.loader import load_model

    return cache(lambda name, model: load_model(model, folder / f"{name}.yaml"))


def gate(folder: Path, custs: list[dict], rows: list[dict]) -> tuple[list[dict], list[dict]]:
    """The day's lists through the real dispatch gate: (rows kept, rows held back)."""
    kept, held = suitable_only(_ctx(folder, custs), pa.Table.from_pylist(rows, schema=output_schema()), D)
    return kept.to_pylist(), held


def _ctx(folder: Path, custs: list[dict]) -> SimpleNamespace:
    """What the gate reads of a Context: the bank's customers and products as of D, and the contact policy."""
    customers = _parquet(pa.Table.from_pylist(custs))
    files = lambda as_of: {"customers": [pa.BufferReader(customers)],  # noqa: E731
                           "products": [pa.BufferReader(PRODUCT_FILE)]}
    # the lake's reader of bank files (it decrypts C2 columns; these in-memory files are plaintext)
    read = lambda source, columns=None: pq.read_table(source, columns=columns)  # noqa: E731
    return SimpleNamespace(lake=SimpleNamespace(bank_files=files, read_table=read), config_dir=folder,
                           load_config=_load_config(folder))


def dispatch_day(folder: Path, work: Path, custs: list[dict], rows: list[dict]):
    """The lists through the gate, the outbox and the channels: (summary, held, outbox rows, audit, sent)."""
    from lifeloop.store.ops.database import session_factory, unit_of_work
    from lifeloop.store.ops.models import AuditEntry, Dispatch

    db = work / "ops.db"
    shutil.copy(folder / "template.db", db)   # a fresh copy each time: the audit log is append-only
    sessions = with_keys(session_factory(f"sqlite:///{db}"))
    adapters = {ch: Recorder(ch) for ch in CHANNELS}
    try:
        kept, held = suitable_only(_ctx(folder, custs), pa.Table.from_pylist(rows, schema=output_schema()), D)
        summary = enqueue_lists(sessions, kept)
        record_unsuitable(sessions, held, summary)
        consent = {(c, p, ch): True for c in (*CUSTOMERS, GHOST) for p in ("marketing", "service") for ch in CHANNELS}
        drain(sessions, adapters, baseline=consent, summary=summary)
        with unit_of_work(sessions) as s:
            outbox = [(d.customer_id, (d.payload or {}).get("offer"), d.status, d.strategy_id, d.wave)
                      for d in s.scalars(sa.select(Dispatch))]
            audit = [(a.target_id, a.reason, a.details) for a in
                     s.scalars(sa.select(AuditEntry).where(AuditEntry.action == "dispatch.blocked.suitability"))]
    finally:
        sessions.kw["bind"].dispose()
    sent = [(m.customer_id, m.offer, m.strategy_id, m.wave) for a in adapters.values() for m in a.sent]
    return summary, held, outbox, audit, sent


def _claims_product(row: dict) -> bool:
    """The row says its offer is a product (the plan writes a suitability outcome only for product offers)."""
    return row["suitability"] is not None


def _goes_out(row: dict) -> bool:
    """What the outbox takes as a contact to send: a contact row with a channel."""
    return row["status"] == "contact" and row["channel"] is not None


def _may(custs: list[dict], row: dict) -> bool:
    return may_receive({c["customer_id"]: c for c in custs}, row["customer_id"], row["offer"], _claims_product(row))


def _key(row: dict) -> tuple:
    return row["customer_id"], row["strategy"], row["wave"]


def _expired(custs: list[dict], ago: int) -> list[dict]:
    """Every customer's top level expired ``ago`` days before D (0: it expires on D itself)."""
    return [dict(c, risk_level="C5", risk_assessed_on=D - dt.timedelta(days=ago + 365),
                 risk_expires_on=D - dt.timedelta(days=ago)) for c in custs]


RISKY = {p for p, (_, r) in PRODUCTS.items() if r in ("R3", "R4", "R5")}
FAST = settings(max_examples=150, deadline=None)


# ---------------------------------------------------------------------------------------------- the gate
@FAST
@given(customers(), list_rows())
@example(*BOUNDARIES)
def test_no_row_the_outbox_would_send_gets_past_the_gate_with_an_unsuitable_offer(bank, custs, rows):
    kept, held = gate(bank, custs, rows)
    for r in kept:
        if _goes_out(r):
            assert _may(custs, r), (r, custs)


@FAST
@given(customers(), list_rows(), st.one_of(st.integers(0, 2), st.integers(0, 500)))
@example(*BOUNDARIES, 0)
def test_an_expired_assessment_never_lets_an_r3_or_riskier_offer_past_the_gate(bank, custs, rows, ago):
    kept, held = gate(bank, _expired(custs, ago), rows)
    assert not [r for r in kept if _goes_out(r) and r["offer"] in RISKY]
    # held back with the expiry named (a customer the bank does not know has no assessment at all)
    for h in held:
        if h["offer"] in RISKY:
            assert ("no risk assessment" if h["customer_id"] == GHOST else "expired") in h["detail"], h


@FAST
@given(customers(), list_rows())
@example(*BOUNDARIES)
def test_the_gate_holds_back_exactly_the_unsuitable_rows_it_would_send_and_loses_no_other_row(bank, custs, rows):
    kept, held = gate(bank, custs, rows)
    assert sorted(map(_key, kept + held)) == sorted(map(_key, rows))   # nothing vanishes
    assert sorted(map(_key, held)) == sorted(_key(r) for r in rows if _goes_out(r) and not _may(custs, r))
    assert all(h["detail"] for h in held)


def test_hand_edited_contact_rows_are_checked_whatever_group_or_dropped_by_say(bank):
    # an unassessed customer, offered an R3 product on rows edited to "contact" by hand
    custs = [customer("C1", None, None)]
    rows = [row("C1", "W3", "as_control", group="control"), row("C1", "W3", "was_dropped", dropped_by="consent"),
            row("C1", "W3", "no_group", group=None)]
    kept, held = gate(bank, custs, rows)
    assert [r["wave"] for r in kept] == []
    assert sorted(h["wave"] for h in held) == ["as_control", "no_group", "was_dropped"]
    assert {h["detail"] for h in held} == {"no risk assessment; product W3 is R3"}


def test_the_boundaries_are_held_back_with_the_rule_that_holds_them(bank):
    kept, held = gate(bank, *BOUNDARIES)
    assert sorted(r["wave"] for r in kept) == ["w1", "w3", "w4"]   # R1 for anyone; R3 at 70; 69 and R5
    assert {h["wave"]: h["detail"] for h in held} == {
        "w0": f"assessment C3 expired {D}; product W3 is R3",
        "w2": "over_70_no_r4: age 70 >= 70, product W4 is R4"}


# ---------------------------------------------------------------------------------------------- the outbox
# a SQLite round trip per example: fewer examples, and no shrinking (the gate tests above shrink the
# same failures in milliseconds)
@settings(max_examples=40, deadline=None, phases=(Phase.explicit, Phase.reuse, Phase.generate),
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(customers(), list_rows(), st.one_of(st.none(), st.integers(0, 30)))
def test_nothing_unsuitable_is_enqueued_or_sent_and_every_held_row_is_counted_and_audited(
        bank, tmp_path, custs, rows, ago):
    custs = custs if ago is None else _expired(custs, ago)
    summary, held, outbox, audit, sent = dispatch_day(bank, tmp_path, custs, rows)
    row_of = {_key(r): r for r in rows}
    for customer, offer, strategy, wave in sent:
        assert _may(custs, row_of[(customer, strategy, wave)]) and offer == row_of[(customer, strategy, wave)]["offer"]
    for customer, _offer, status, strategy, wave in outbox:
        if status != "cancelled":   # control rows are recorded as cancelled history, never sent
            assert _may(custs, row_of[(customer, strategy, wave)]), (row_of[(customer, strategy, wave)], status)
    # every held-back row: counted as blocked, and one audit entry naming it, with the levels as the reason
    assert summary.blocked == len(held) == len(audit)
    assert sorted((a[0], a[2]["offer"], a[2]["strategy"], a[2]["wave"]) for a in audit) == sorted(
        (h["customer_id"], h["offer"], h["strategy"], h["wave"]) for h in held)
    assert all(reason and reason != "unsuitable offer" for _, reason, _ in audit)
    # and nothing suitable is lost: every contact row with a suitable offer reaches its channel
    assert sorted(s[2:] for s in sent) == sorted((r["strategy"], r["wave"]) for r in rows
                                                 if _goes_out(r) and _may(custs, r))


@dataclass
class Flaky(Recorder):
    """A channel that is down (a retryable failure) until told otherwise, and delivers after that."""

    down: bool = True

    def send(self, batch):
        if self.down:
            return [Result.failed(m, "gateway timeout", retryable=True) for m in batch]
        return super().send(batch)


def test_a_retry_after_the_assessment_expired_overnight_is_held_back_at_send_time(bank, tmp_path):
    """Suitable when queued on D, the gateway fails, the C3 assessment expires, the retry on D+2 is blocked."""
    from lifeloop.execution.dispatch import DispatchSummary
    from lifeloop.execution.suitability_gate import send_time_screen
    from lifeloop.store.ops.database import session_factory, unit_of_work
    from lifeloop.store.ops.models import AuditEntry, Dispatch

    custs = [customer("C1", "C3", D + dt.timedelta(days=1)), customer("C2", "C5", D + dt.timedelta(days=400))]
    rows = [row("C1", "W3", "w0"), row("C2", "W3", "w0")]
    db = tmp_path / "ops.db"
    shutil.copy(bank / "template.db", db)
    sessions = with_keys(session_factory(f"sqlite:///{db}"))
    sms = Flaky("sms")
    consent = {(c, "marketing", "sms"): True for c in ("C1", "C2")}
    kept, held = suitable_only(_ctx(bank, custs), pa.Table.from_pylist(rows, schema=output_schema()), D)
    assert held == [] and kept.num_rows == 2          # both suitable on D
    day = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)  # the outbox is due from enqueue time on
    summary = enqueue_lists(sessions, kept)
    drain(sessions, {"sms": sms}, baseline=consent, summary=summary, clock=lambda: day,
          screen=send_time_screen(_ctx(bank, custs), D))
    assert sms.sent == []                              # the gateway was down: both wait for a retry
    sms.down = False
    later = DispatchSummary()
    drain(sessions, {"sms": sms}, baseline=consent, summary=later, clock=lambda: day + dt.timedelta(days=2),
          screen=send_time_screen(_ctx(bank, custs), D + dt.timedelta(days=2)))
    assert [m.customer_id for m in sms.sent] == ["C2"]  # C1's assessment expired on D+1: W3 (R3) may not go
    assert later.blocked == 1
    with unit_of_work(sessions) as s:
        status = {d.customer_id: (d.status, d.blocked_reason) for d in s.scalars(sa.select(Dispatch))}
        audit = [(a.target_id, a.details) for a in s.scalars(sa.select(AuditEntry).where(
            AuditEntry.action == "dispatch.blocked.suitability"))]
    assert status["C2"][0] == "sent"
    assert status["C1"][0] == "blocked" and "suitability" in status["C1"][1] and "expired" in status["C1"][1]
    assert audit == [("C1", audit[0][1])] and audit[0][1]["at_send"] is True and audit[0][1]["offer"] == "W3"
