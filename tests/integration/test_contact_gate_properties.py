"""Property: whatever is planned, re-planned and planned ahead, whenever the dispatcher runs, and whatever customers
say in between, the gateway never receives a contact beyond a cap, in quiet hours or on a quiet day, after a
withdrawal, within a refusal's memory, during do-not-disturb, after its validity, or without consent.

Hypothesis draws a few days of life for three customers: plans (list rows enqueued as dispatch does, for
that day or up to five days ahead, on any channel, any send time, marketing or service, so re-plans of a day
with another channel come up), dispatches at any hour with different batch sizes, consent withdrawn and
granted (one channel or all), refusals of a delivered contact and do-not-disturb entries. The clock only
moves forward and customers act between dispatches, so the bound on a withdrawal is 0 here (the real-time
bound is measured in test_contact_gate.py). The oracle is written out by hand from the template's
contact_policy.yaml (quiet hours, caps, refusal memory) and checks the recording gateway's log only.
"""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import dataclass, field

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from lifeloop.config.contact_policy import QuietDay
from lifeloop.execution.dispatch import drain
from lifeloop.store.ops import consent, feedback
from lifeloop.store.ops.database import session_factory, unit_of_work
from lifeloop.store.ops.models import ConsentChange, ContactReservation, Dispatch, DoNotDisturb, Feedback, Task
from tests.gate_world import POLICY, TZ, Clock, D, RecordingGateway, enqueue, in_local, local, row
from tests.ops_fixtures import with_keys

PEOPLE = ("C1", "C2", "C3")
CHANNELS = ("sms", "push", "call", "rm")
HOLIDAY = D + dt.timedelta(days=2)
WORLD_POLICY = POLICY.model_copy(update={"quiet_days": [QuietDay(date=HOLIDAY, name="holiday")]})

# the template's contact_policy.yaml, written out by hand
QUIET = {"sms": ("21:00", "08:00"), "push": ("22:00", "08:00"), "call": ("20:00", "09:00"), "rm": ("20:00", "09:00")}
CAPS = {"*": {1: 1, 7: 3, 30: 6}, "sms": {1: 1, 7: 2, 30: 4}, "push": {1: 1, 7: 3, 30: 8},
        "call": {1: 1, 7: 1, 30: 2}, "rm": {7: 1, 30: 3}}
MEMORY_MONTHS = {"call": 6, "rm": 3, "sms": 3, "push": 1}


# ---------------------------------------------------------------------------------------------- the world
plan = st.tuples(st.just("plan"), st.sampled_from([0, 0, 0, 1, 2, 5]), st.lists(st.tuples(
    st.sampled_from(PEOPLE), st.sampled_from(["s0", "s1", "s2", "s3"]), st.sampled_from(["w0", "w1"]),
    st.sampled_from(CHANNELS), st.sampled_from(["08:00", "10:00", "14:00", "20:30", "23:00", None, None]),
    st.sampled_from(["marketing", "marketing", "service"])), min_size=1, max_size=6))
dispatch = st.tuples(st.just("dispatch"), st.sampled_from([1, 3, 50]))  # batch size
change = st.tuples(st.just("consent"), st.sampled_from(PEOPLE), st.sampled_from([*CHANNELS, "*"]), st.booleans())
refuse = st.tuples(st.just("refuse"), st.sampled_from(PEOPLE))
dnd = st.tuples(st.just("dnd"), st.sampled_from(PEOPLE), st.sampled_from([*CHANNELS, None]), st.integers(1, 48))
# a day: events at local times (hour, minute); a program: a few days in a row
event = st.one_of(st.tuples(st.integers(0, 12), st.sampled_from([0, 30]), plan),   # plans and re-plans: mornings
                  st.tuples(st.integers(0, 23), st.sampled_from([0, 30]), st.one_of(dispatch, change, refuse, dnd)))
dispatches = st.lists(st.tuples(st.integers(0, 23), st.sampled_from([0, 30]), dispatch), min_size=1, max_size=3)
steps = st.lists(st.tuples(st.lists(event, min_size=1, max_size=8), dispatches).map(lambda d: d[0] + d[1]),
                 min_size=1, max_size=4)
baselines = st.fixed_dictionaries({(c, ch): st.sampled_from([True, True, False]) for c in PEOPLE for ch in CHANNELS})


@dataclass
class Log:
    """What the test did, to check the gateway's log against."""

    changes: list = field(default_factory=list)    # (customer, channel or *, granted, at)
    refusals: list = field(default_factory=list)   # (customer, channel, at)
    dnd: list = field(default_factory=list)        # (customer, channel or None, start, end)


def live(sessions, baseline, program) -> tuple[RecordingGateway, Log]:
    """Run the program on the operations database; return the gateway (its log) and what the test did."""
    clock = Clock(local(D, 0))
    gateway, log = RecordingGateway(clock), Log()
    consents = {(c, "marketing", ch): ok for (c, ch), ok in baseline.items()}
    for k, day in enumerate(program):
        for hour, minute, step in sorted(day, key=lambda e: e[:2]):
            clock.now = max(clock.now, local(D + dt.timedelta(days=k), hour, minute))
            act(sessions, gateway, log, clock, consents, step)
    return gateway, log


def act(sessions, gateway: RecordingGateway, log: Log, clock: Clock, consents: dict, step: tuple) -> None:
    """One thing happens now: a plan, a dispatch, a consent change, a refusal or a do-not-disturb entry."""
    kind = step[0]
    if kind == "plan":
        day = in_local(clock.now).date() + dt.timedelta(days=step[1])
        rows = {(c, s, w, day): row(c, s, w, ch, as_of=day, send_at=t, purpose=p) for c, s, w, ch, t, p in step[2]}
        enqueue(sessions, list(rows.values()), now=clock.now, policy=WORLD_POLICY)
    elif kind == "dispatch":
        drain(sessions, gateway.adapters(), baseline=consents, policy=WORLD_POLICY, timezone=TZ, clock=clock,
              batch_size=step[1])
    elif kind == "consent":
        with unit_of_work(sessions) as s:
            consent.record_change(s, customer_id=step[1], purpose="marketing", channel=step[2], granted=step[3],
                                  effective_at=clock.now, source="customer", recorded_by="test")
        log.changes.append((step[1], step[2], step[3], clock.now))
    elif kind == "refuse":
        with unit_of_work(sessions) as s:
            sent = s.scalars(sa.select(Dispatch).where(Dispatch.customer_id == step[1], Dispatch.status == "sent")
                             .order_by(Dispatch.id.desc()).limit(1)).first()
            if sent is not None:
                feedback.record(s, dispatch_id=sent.id, outcome="refused", occurred_at=clock.now, recorded_by="t")
                log.refusals.append((step[1], sent.channel, clock.now))
    else:
        end = clock.now + dt.timedelta(hours=step[3])
        with unit_of_work(sessions) as s:
            consent.add_do_not_disturb(s, customer_id=step[1], channel=step[2], reason="complaint",
                                       created_by="test", starts_at=clock.now, expires_at=end)
        log.dnd.append((step[1], step[2], clock.now, end))


# ---------------------------------------------------------------------------------------------- the oracle
def quiet(channel: str, t: dt.time) -> bool:
    start, end = (dt.time.fromisoformat(x) for x in QUIET[channel])
    return t >= start or t < end   # every template window wraps midnight


def months_before(t: dt.datetime, months: int) -> dt.datetime:
    import calendar

    y, m = divmod(t.year * 12 + t.month - 1 - months, 12)
    return t.replace(year=y, month=m + 1, day=min(t.day, calendar.monthrange(y, m + 1)[1]))


def violations(delivered, baseline, log: Log) -> list[str]:
    """Every promise the gateway's log breaks, in words."""
    bad = []
    for d in delivered:
        here = in_local(d.at)
        what = f"{d.customer_id} {d.channel} {d.strategy}/{d.wave} ({d.purpose}) at {here:%m-%d %H:%M}"
        if quiet(d.channel, here.time()):
            bad.append(f"quiet hours: {what}")
        if d.purpose == "marketing" and here.date() == HOLIDAY:
            bad.append(f"quiet day: {what}")
        if here.date() > d.as_of + dt.timedelta(days=1):
            bad.append(f"after its validity (list of {d.as_of}): {what}")
        if d.purpose == "marketing":
            said = [(at, i, ok) for i, (c, ch, ok, at) in enumerate(log.changes)
                    if c == d.customer_id and ch in (d.channel, "*") and at <= d.at]
            allowed = max(said)[2] if said else baseline[(d.customer_id, d.channel)]
            if not allowed:
                bad.append(f"without consent: {what}")
            for c, ch, at in log.refusals:
                if c == d.customer_id and ch == d.channel and months_before(d.at, MEMORY_MONTHS[ch]) < at <= d.at:
                    bad.append(f"within a refusal's memory ({at:%m-%d %H:%M}): {what}")
        for c, ch, start, end in log.dnd:
            if c == d.customer_id and ch in (None, d.channel) and start <= d.at < end:
                bad.append(f"during do-not-disturb: {what}")
    days: dict[str, list] = {}
    for d in delivered:
        days.setdefault(d.customer_id, []).append((in_local(d.at).date(), d.channel, d.strategy))
    for customer, got in days.items():
        for day in {g[0] for g in got}:
            for scope, caps in CAPS.items():
                for n, cap in caps.items():
                    inside = [g for g in got if day - dt.timedelta(days=n - 1) <= g[0] <= day
                              and scope in ("*", g[1])]
                    if len(inside) > cap:
                        bad.append(f"cap {scope}/{n}d: {customer} has {len(inside)} > {cap} in the {n} days to {day}")
            strategies = [g[2] for g in got if g[0] == day]
            if len(strategies) != len(set(strategies)):
                bad.append(f"one strategy twice on {day}: {customer}")
    return bad


# ---------------------------------------------------------------------------------------------- the tests
@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """A migrated empty SQLite operations database to copy for each example."""
    from lifeloop.store.ops import open_ops

    folder = tmp_path_factory.mktemp("gateworld")
    open_ops(f"sqlite:///{folder / 'template.db'}").kw["bind"].dispose()
    return folder / "template.db"


@settings(max_examples=50, deadline=None, phases=(Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink),
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(baselines, steps)
def test_the_gateway_never_receives_a_contact_the_policy_forbids_whatever_happens_sqlite(
        template, tmp_path_factory, baseline, program):
    db = tmp_path_factory.mktemp("ex") / "ops.db"
    shutil.copy(template, db)
    sessions = with_keys(session_factory(f"sqlite:///{db}"))
    try:
        gateway, log = live(sessions, baseline, program)
    finally:
        sessions.kw["bind"].dispose()
    assert violations(gateway.delivered, baseline, log) == []


@pytest.fixture(scope="module")
def postgres():
    """One migrated PostgreSQL database for the module (emptied before each example)."""
    from lifeloop.store.ops.migrations import upgrade
    from tests.ops_fixtures import postgres_server

    url = postgres_server().create_database()
    upgrade(url)
    factory = with_keys(session_factory(url))
    yield factory
    factory.kw["bind"].dispose()


@settings(max_examples=10, deadline=None, phases=(Phase.explicit, Phase.generate),
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(baselines, steps)
def test_the_gateway_never_receives_a_contact_the_policy_forbids_whatever_happens_postgresql(
        postgres, baseline, program):
    with unit_of_work(postgres) as s:
        for table in (ContactReservation, Feedback, Task, ConsentChange, DoNotDisturb, Dispatch):
            s.execute(sa.delete(table))
    gateway, log = live(postgres, baseline, program)
    assert violations(gateway.delivered, baseline, log) == []


def test_the_oracle_finds_a_contact_in_quiet_hours_beyond_a_cap_and_after_a_withdrawal():
    """The oracle itself can see a violation (each rule once, by hand)."""
    from tests.gate_world import Delivery

    def at(day, h, m=0, channel="sms", strategy="s0"):
        return Delivery("C1", channel, strategy, "w0", "marketing", D, local(day, h, m), 0.0)

    yes = {(c, ch): True for c in PEOPLE for ch in CHANNELS}
    assert violations([at(D, 10)], yes, Log()) == []
    assert violations([at(D, 21, 30)], yes, Log())[0].startswith("quiet hours")
    assert any(v.startswith("cap sms/1d") for v in violations([at(D, 10), at(D, 11, strategy="s1")], yes, Log()))
    log = Log(changes=[("C1", "*", False, local(D, 9))])
    assert violations([at(D, 10)], yes, log) == ["without consent: C1 sms s0/w0 (marketing) at 03-02 10:00"]
    log = Log(refusals=[("C1", "sms", local(D - dt.timedelta(days=40), 9))])
    assert violations([at(D, 10)], yes, log)[0].startswith("within a refusal's memory")
